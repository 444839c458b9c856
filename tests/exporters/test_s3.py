"""S3 sink against a moto server: formats, partitioning, deterministic object names."""

from __future__ import annotations

import csv
import gzip
import io
import json
import uuid

import boto3
import pyarrow.parquet as pq
import pytest

from fmf_spark.errors import ExportError
from fmf_spark.exporters import export_table
from fmf_spark.schemas import OUTPUTS_SCHEMA
from tests.exporters.conftest import N_FILES, N_ROWS, output_row


@pytest.fixture
def bucket(moto_endpoint):
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    name = f"fmf-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=name)
    return client, name


def _as_dicts(rows):
    names = OUTPUTS_SCHEMA.fieldNames()
    out = []
    for row in rows:
        rec = dict(zip(names, row, strict=True))
        if rec["error"] is not None:
            rec["error"] = dict(zip(["code", "message", "retryable"], rec["error"], strict=True))
        out.append(rec)
    return out


def _objects(client, bucket, prefix=""):
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"]: o for page in pages for o in page.get("Contents", [])}


def _read_jsonl(client, bucket, keys):
    rows = []
    for key in keys:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        if key.endswith(".gz"):
            body = gzip.decompress(body)
        rows.extend(json.loads(line) for line in body.decode().splitlines())
    return rows


def _sorted(rows):
    return sorted(rows, key=lambda r: r["request_id"])


def test_kill_after_batch_2_then_rerun_writes_each_row_once(
    spark, make_outputs, make_config, moto_endpoint, bucket, kill_process_after_batch, expected_rows
):
    """The export process is killed after batch 2's objects were uploaded.

    The rerun replays batch 2 with the same batch id, so it overwrites the same object
    names; the sink ends with each row exactly once.
    """
    client, name = bucket
    inp = make_outputs()
    cfg = make_config(
        {"type": "s3", "bucket": name, "endpoint_url": moto_endpoint, "compression": "gzip"}
    )
    kill_process_after_batch(cfg, inp, 2)
    rerun = export_table(spark, cfg, "sink", inp, run_id="run1")
    assert rerun.batches == 3

    objects = _objects(client, name, "fmf/run1/")
    assert all(k.endswith(".jsonl.gz") for k in objects)
    assert {k.split("/")[-1][:10] for k in objects} == {f"part-{b:05d}" for b in range(N_FILES)}
    got = _read_jsonl(client, name, objects)
    assert _sorted(got) == _sorted(_as_dicts(expected_rows))

    # exporting the same run again with a fresh checkpoint rewrites each batch's objects
    # (how many per batch may differ: a resumed query keeps the shuffle partitions of
    # the killed process's session, which Spark 3.5 does not coalesce)
    again = export_table(spark, cfg, "sink", inp, run_id="run1", checkpoint_root=str(inp) + "_ck2")
    assert again.rows_written == N_ROWS
    objects_after = _objects(client, name, "fmf/run1/")
    assert {k.split("/")[-1][:10] for k in objects_after} == {
        f"part-{b:05d}" for b in range(N_FILES)
    }
    assert _sorted(_read_jsonl(client, name, objects_after)) == _sorted(_as_dicts(expected_rows))


def test_replayed_batch_removes_objects_the_first_attempt_wrote_in_excess(
    spark, make_outputs, make_config, moto_endpoint, bucket
):
    client, name = bucket
    inp = make_outputs(files=1)
    # a first attempt of batch 0 that had more task partitions than the replay
    client.put_object(Bucket=name, Key="out/run1/part-00000-00042.jsonl", Body=b'{"x": 1}\n')
    client.put_object(Bucket=name, Key="out/run1/part-00001-00000.jsonl", Body=b'{"y": 1}\n')
    cfg = make_config(
        {"type": "s3", "bucket": name, "prefix": "out/${run_id}", "endpoint_url": moto_endpoint}
    )
    export_table(spark, cfg, "sink", inp, run_id="run1")
    keys = set(_objects(client, name, "out/run1/"))
    assert "out/run1/part-00000-00042.jsonl" not in keys
    assert "out/run1/part-00001-00000.jsonl" in keys  # another batch's object is left alone
    batch0 = [k for k in keys if "part-00000-" in k]
    assert len(_read_jsonl(client, name, batch0)) == N_ROWS


def test_parquet_partitioned_by_step_and_status(
    spark, make_outputs, make_config, moto_endpoint, bucket, expected_rows
):
    client, name = bucket
    inp = make_outputs()
    cfg = make_config(
        {
            "type": "s3",
            "bucket": name,
            "endpoint_url": moto_endpoint,
            "format": "parquet",
            "compression": "zstd",
            "partition_by": ["status"],
        }
    )
    result = export_table(spark, cfg, "sink", inp, run_id="r2")
    assert result.rows_written == N_ROWS
    objects = _objects(client, name, "fmf/r2/")
    dirs = {k.split("/")[2] for k in objects}
    assert dirs == {"status=ok", "status=error"}
    got = []
    for key in objects:
        body = client.get_object(Bucket=name, Key=key)["Body"].read()
        table = pq.read_table(io.BytesIO(body))
        assert (
            pq.ParquetFile(io.BytesIO(body)).metadata.row_group(0).column(0).compression == "ZSTD"
        )
        status = key.split("/")[2].split("=")[1]
        got.extend({**rec, "status": status} for rec in table.to_pylist())
    assert _sorted(got) == _sorted(_as_dicts(expected_rows))


def test_csv_flattens_the_error_struct_and_dedups_keys(
    spark, make_outputs, make_config, moto_endpoint, bucket
):
    client, name = bucket
    rows = [output_row(i) for i in range(4)] + [output_row(3, latency=999)]
    inp = make_outputs(rows=rows, files=1)
    cfg = make_config(
        {
            "type": "s3",
            "bucket": name,
            "endpoint_url": moto_endpoint,
            "format": "csv",
            "order_column": "latency_ms",
        }
    )
    assert export_table(spark, cfg, "sink", inp, run_id="r3").rows_written == 4
    objects = _objects(client, name, "fmf/r3/")
    records = []
    for key in objects:
        text = client.get_object(Bucket=name, Key=key)["Body"].read().decode()
        records.extend(csv.DictReader(io.StringIO(text)))
    assert len(records) == 4
    assert "error_code" in records[0] and "error" not in records[0]
    by_id = {r["request_id"]: r for r in records}
    assert by_id[output_row(3)[0]]["latency_ms"] == "999"
    assert by_id[output_row(3)[0]]["error_code"] == "inference.rate_limited"


def test_precheck_fails_fast_on_a_missing_bucket(spark, make_outputs, make_config, moto_endpoint):
    inp = make_outputs(files=1)
    cfg = make_config({"type": "s3", "bucket": "no-such-bucket-fmf", "endpoint_url": moto_endpoint})
    with pytest.raises(ExportError, match="no-such-bucket-fmf"):
        export_table(spark, cfg, "sink", inp, run_id="r4")
