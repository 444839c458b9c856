"""What the AWS Batch image runs, run here (no container engine on this machine).

The image's three build steps are the test's: ``deploy/install.sh`` installs the wheel
(from the lock when there is one) into a fresh virtualenv, ``scripts/fetch_jars.py``
fetches the Delta and S3A jars, and the entry point ``fmf --profile aws_batch run`` runs
a chain whose config, prompts, chain and documents are on (moto) S3 and whose artefacts
and Delta export go to ``s3a://``. The Dockerfile itself is linted by hadolint
(tests/deploy/test_static.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import Bucket, doc_ids, install, job_settings, s3a_env
from tests.deploy.helpers import clean_env

pytestmark = pytest.mark.slow

#: the extras the Dockerfile installs
BATCH_EXTRAS = "spark,processing,ocr,aws,openai"


@pytest.fixture(scope="session")
def batch_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install(wheel, BATCH_EXTRAS, "venv", tmp_path_factory.mktemp("batch") / "venv")


@pytest.mark.timeout(2400)
def test_the_entry_point_runs_a_chain_from_s3_to_s3(
    batch_venv: Path, jars_dir: Path, job_bucket: Bucket, spark, tmp_path: Path
) -> None:
    bucket = job_bucket
    settings = [
        f"prompts.dir={bucket.uri('prompts')}",
        *job_settings(bucket),
    ]
    command = [str(batch_venv / "bin" / "fmf"), "--profile", "aws_batch", "run"]
    command += ["--chain", bucket.uri("chains/aws_sample.yaml"), "--quiet"]
    for item in settings:
        command += ["--set", item]
    env = clean_env(
        {
            "FMF_CONFIG": bucket.uri("conf/fmf.yaml"),
            # the image's jars are at /opt/fmf/jars; here, where the same script put them
            "FMF__SPARK__CONF__SPARK.JARS": f"{jars_dir}/*.jar",
            **s3a_env(bucket.endpoint),
        }
    )
    env.pop("SPARK_HOME")  # the image sets none: pyspark finds its own
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200
    )
    (tmp_path / "fmf.log").write_text(done.stderr)
    assert done.returncode == 0, done.stderr[-4000:]
    # nothing came from Maven at run time: the conf's own jars, no Ivy resolution
    assert ":: resolving dependencies ::" not in done.stderr

    (record_key,) = [k for k in bucket.keys("artefacts/") if k.endswith("/run.yaml")]
    record = yaml.safe_load(
        bucket.client.get_object(Bucket=bucket.name, Key=record_key)["Body"].read()
    )
    assert record["status"] == "succeeded" and record["profile"] == "aws_batch"
    assert record["metrics"]["documents"] == 2
    run_prefix = record_key.removesuffix("run.yaml")
    # the run's own tables are Delta on S3 too
    for table in ("documents", "chunks", "outputs"):
        assert f"{run_prefix}{table}/_delta_log/00000000000000000000.json" in bucket.keys(
            run_prefix
        )

    exported = spark.read.format("delta").load(
        str(bucket.download("exports/outputs/", tmp_path / "outputs"))
    )
    rows = exported.select("doc_id", "step", "status").collect()
    assert {r.doc_id for r in rows if r.step != "digest"} == doc_ids()
    assert {r.status for r in rows} == {"ok"}
    assert {r.step for r in rows} == {"summarize"}  # the chain's first step (first_step)
    assert len(rows) == record["metrics"]["rows"]
