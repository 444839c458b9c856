"""Registry, config, results, the Redshift staging path and the ``fmf export`` command."""

from __future__ import annotations

import io
import uuid

import boto3
import pyarrow.parquet as pq
import pytest
import yaml
from pydantic import SecretStr, ValidationError

from fmf_spark.cli.export import run_id_from_input
from fmf_spark.errors import ConfigError
from fmf_spark.exporters import (
    ExportResult,
    build_exporter,
    register_exporter,
    registered_exporters,
)
from fmf_spark.exporters.base import BatchContext, BatchResult
from fmf_spark.exporters.delta import DeltaExporterConfig
from fmf_spark.exporters.frames import flatten_structs
from fmf_spark.exporters.redshift import RedshiftExporterConfig, SqlMergeExporter
from fmf_spark.schemas import OUTPUTS_SCHEMA
from tests.exporters.conftest import N_ROWS, output_row


def test_every_sink_type_is_registered_and_names_are_unique():
    assert registered_exporters() == [
        "delta",
        "dynamodb",
        "fabric",
        "postgres",
        "redshift",
        "s3",
        "sharepoint_excel",
    ]
    with pytest.raises(ValueError, match="already registered"):
        register_exporter("delta", DeltaExporterConfig, lambda name, cfg, resolver: None)  # type: ignore[arg-type,return-value]


def test_config_rejects_ambiguous_delta_targets_and_redshift_without_staging():
    with pytest.raises(ValidationError, match="exactly one of path or table"):
        DeltaExporterConfig(path="/a", table="t")
    cfg = RedshiftExporterConfig(host="h", database="d", user="u", table="t")
    with pytest.raises(ConfigError, match="staging_bucket and iam_role"):
        build_exporter("rs", cfg)


def test_export_result_sums_batches_for_run_yaml():
    result = ExportResult(sink="s")
    result.add(BatchResult(written=3, updated=1, retries=2))
    result.add(BatchResult(skipped=True))
    assert result.as_dict() == {
        "sink": "s",
        "rows_written": 3,
        "rows_updated": 1,
        "rows_failed": 0,
        "batches": 2,
        "batches_skipped": 1,
        "retries": 2,
        "errors_path": None,
    }


def test_redshift_stages_parquet_on_s3_and_builds_copy_and_merge(spark, moto_endpoint):
    """The Redshift half that can run here: the Parquet stage on S3 (moto) and the SQL.

    The COPY ... FORMAT AS PARQUET and the transaction itself need a real Redshift; the
    same transaction code runs against PostgreSQL in test_postgres.py.
    """
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    bucket = f"stage-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    cfg = RedshiftExporterConfig(
        host="cluster.example.redshift.amazonaws.com",
        database="dev",
        user="fmf",
        table="outputs",
        staging_bucket=bucket,
        staging_endpoint_url=moto_endpoint,
        iam_role="arn:aws:iam::123456789012:role/redshift-copy",
        key_fields=["request_id"],
    )
    exporter = SqlMergeExporter("rs", cfg, SecretStr("pw-not-used-here"))
    rows = [output_row(i) for i in range(6)]
    flat = flatten_structs(spark.createDataFrame(rows, OUTPUTS_SCHEMA).repartition(2))
    ctx = BatchContext(run_id="r1", batch_id=3, stream_id="q1")

    uri = exporter._stage_to_s3(flat, ctx)
    assert uri == f"s3://{bucket}/fmf-stage/r1/rs/q1/batch-00003/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    staged = []
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        table = pq.read_table(io.BytesIO(body))
        assert table.column_names == flat.columns  # COPY maps Parquet columns by position
        staged.extend(table.to_pylist())
    assert sorted(r["request_id"] for r in staged) == sorted(r[0] for r in rows)

    copy = exporter.copy_from_s3_sql("fmf_stage_3", uri).as_string(None)
    assert copy == (
        f"COPY \"fmf_stage_3\" FROM '{uri}' "
        "IAM_ROLE 'arn:aws:iam::123456789012:role/redshift-copy' FORMAT AS PARQUET"
    )
    merge = exporter.merge_sql("fmf_stage_3", ["request_id", "model"]).as_string(None)
    assert merge == (
        'MERGE INTO "public"."outputs" AS t USING "fmf_stage_3" AS s '
        'ON t."request_id" = s."request_id" '
        'WHEN MATCHED THEN UPDATE SET "model" = s."model" '
        'WHEN NOT MATCHED THEN INSERT ("request_id", "model") VALUES (s."request_id", s."model")'
    )
    exporter._drop_staged(uri)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_fmf_export_command_exports_a_run_and_records_it_in_run_yaml(
    spark, tmp_path, make_outputs, expected_rows, monkeypatch
):
    from pyspark.testing import assertDataFrameEqual

    from fmf_spark.cli import main

    inp = make_outputs(run_id="run9", files=1)
    run_dir = tmp_path / "artefacts" / "run9"
    (run_dir / "run.yaml").write_text(yaml.safe_dump({"run_id": "run9", "exports": []}))
    target = tmp_path / "exported"
    conf = tmp_path / "fmf.yaml"
    conf.write_text(
        yaml.safe_dump(
            {
                "observability": {"mlflow": {"enabled": False}},
                "exporters": {"lake": {"type": "delta", "path": str(target)}},
            }
        )
    )
    monkeypatch.chdir(tmp_path)
    assert run_id_from_input("artefacts/run9/outputs/") == "run9"
    code = main(["export", "--config", str(conf), "--sink", "lake", "--input", inp])
    assert code == 0
    assertDataFrameEqual(
        spark.read.format("delta").load(str(target)),
        spark.createDataFrame(expected_rows, OUTPUTS_SCHEMA),
    )
    record = yaml.safe_load((run_dir / "run.yaml").read_text())
    assert [(e["sink"], e["rows_written"], e["batches"]) for e in record["exports"]] == [
        ("lake", N_ROWS, 1)
    ]
    # a second export of the same run: nothing new; its entry is replaced, not added
    assert main(["export", "--config", str(conf), "--sink", "lake", "--input", inp]) == 0
    record = yaml.safe_load((run_dir / "run.yaml").read_text())
    assert [(e["sink"], e["rows_written"]) for e in record["exports"]] == [("lake", 0)]


def test_fmf_export_unknown_sink_is_a_one_line_error(spark, tmp_path, capsys):
    # `spark`: the command takes the session before it looks the sink up; without the
    # fixture it would build a session of its own that later tests would inherit
    from fmf_spark.cli import main

    conf = tmp_path / "fmf.yaml"
    conf.write_text(yaml.safe_dump({"exporters": {}}))
    code = main(["export", "--config", str(conf), "--sink", "nope", "--input", "x/outputs"])
    assert code == 2
    assert "no exporter named 'nope'" in capsys.readouterr().err


@pytest.mark.slow  # an MLflow sqlite store: its schema migrations take seconds
def test_record_export_logs_counts_on_the_runs_mlflow_run(tmp_path):
    from mlflow import MlflowClient

    from fmf_spark.config.models import FmfConfig
    from fmf_spark.exporters.report import record_export

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("fmf_test", artifact_location=(tmp_path / "art").as_uri())
    run_id = client.create_run(exp).info.run_id
    run_dir = tmp_path / "artefacts" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "run.yaml").write_text(
        yaml.safe_dump({"run_id": "r1", "mlflow": {"run_id": run_id}, "exports": []})
    )
    cfg = FmfConfig.model_validate({"observability": {"mlflow": {"tracking_uri": uri}}})
    result = ExportResult(sink="lake", rows_written=7, rows_updated=2, batches=1)
    record_export(str(run_dir / "outputs"), result, cfg)

    metrics = client.get_run(run_id).data.metrics
    assert metrics["exports.lake.rows_written"] == 7
    assert metrics["exports.lake.rows_updated"] == 2
    record = yaml.safe_load((run_dir / "run.yaml").read_text())
    assert record["exports"] == [result.as_dict()]


def test_a_missing_outputs_table_is_a_clear_error(spark, tmp_path, make_config):
    from fmf_spark.errors import ExportError
    from fmf_spark.exporters import export_table

    cfg = make_config({"type": "delta", "path": str(tmp_path / "t")})
    with pytest.raises(ExportError, match="cannot read the outputs table"):
        export_table(spark, cfg, "sink", str(tmp_path / "nope" / "outputs"), run_id="x")
