"""The EMR recipe run here: ``make emr-package``, then the step's own spark-submit line.

The step (``deploy/emr/step.json``) is run as EMR would run it, with what differs on a
laptop and nothing else:

- ``--deploy-mode cluster`` on YARN becomes client mode on ``local[2]``: locally the
  driver runs ``./environment/bin/python`` from a copy of the archive unpacked in its
  working directory, as a YARN container has it;
- EMRFS (``s3://``) is S3A on a moto server (``fs.s3.impl``), with the Delta and S3A jars
  on the driver class path, where EMR has its own;
- pyspark and py4j come from the platform: the archive has neither, and a folder with
  only those two is the ``PYTHONPATH``, as EMR's Spark puts its own there.

Every ``s3://`` path of the step (archive, job file, config, chain, prompts) is read from
the bucket; the artefacts and the Delta export go to it.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import Bucket, doc_ids, job_settings, make_bucket, uv_env
from tests.deploy.helpers import LOCK_SET, ROOT, SPARK_HOME, clean_env, spark_submit

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="session")
def emr_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``scripts/emr_package.sh`` (``make emr-package``) run on a copy of the repository."""
    import sys

    copy = tmp_path_factory.mktemp("emr-repo")
    files = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "-z"],
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / name.decode()
        if source.is_file():
            target = copy / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            target.chmod(source.stat().st_mode)
    done = subprocess.run(
        ["bash", "scripts/emr_package.sh"],
        cwd=copy,
        # EMR 7 runs Spark 3.5, a release with Spark 4 runs 4: the package is built from
        # the lock of the Spark line this run tests (the 3.5 pass builds EMR 7's)
        env={
            **clean_env(),
            "PYTHON": sys.executable,
            "LOCK": str(copy / "requirements" / LOCK_SET / "local.lock"),
            **uv_env(),
        },
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return copy / "dist" / "emr"


def _platform_pythonpath(folder: Path) -> Path:
    """A folder holding only pyspark and py4j: what EMR's Spark puts on the PYTHONPATH."""
    import py4j

    folder.mkdir()
    (folder / "pyspark").symlink_to(SPARK_HOME)
    (folder / "py4j").symlink_to(Path(py4j.__file__).parent)
    return folder


@pytest.mark.timeout(2400)
def test_the_package_holds_the_app_and_not_pyspark(emr_package: Path) -> None:
    assert sorted(p.name for p in emr_package.iterdir()) == [
        "fmf_job.py",
        "fmf_spark_emr.tar.gz",
        "step.json",
    ]
    with tarfile.open(emr_package / "fmf_spark_emr.tar.gz") as archive:
        names = archive.getnames()
    site = [n for n in names if "/site-packages/" in n]
    tops = {n.split("/site-packages/", 1)[1].split("/", 1)[0] for n in site}
    assert {"fmf_spark", "boto3", "pyarrow", "pandas", "delta", "yaml"} <= tops
    assert not {"pyspark", "py4j"} & tops
    assert "bin/python" in names and "bin/venv_activate" not in names


@pytest.mark.timeout(2400)
def test_the_step_runs_locally_against_moto(
    emr_package: Path, jars_dir: Path, moto_endpoint: str, spark, tmp_path: Path
) -> None:
    bucket: Bucket = make_bucket(moto_endpoint, "fmf-emr-step")
    s3 = bucket.client
    for name in ("fmf_spark_emr.tar.gz", "fmf_job.py"):
        s3.upload_file(str(emr_package / name), bucket.name, f"fmf/{name}")
    for key in bucket.keys("conf/") + bucket.keys("prompts/") + bucket.keys("chains/"):
        s3.copy_object(Bucket=bucket.name, Key=f"fmf/{key}", CopySource=f"{bucket.name}/{key}")

    (step,) = json.loads((emr_package / "step.json").read_text())
    assert step["Jar"] == "command-runner.jar" and step["Args"][0] == "spark-submit"
    args = [a.replace("s3://my-fmf-bucket/", f"s3://{bucket.name}/") for a in step["Args"][1:]]
    mode = args.index("--deploy-mode")
    assert args[mode + 1] == "cluster"
    del args[mode : mode + 2]
    job = next(i for i, a in enumerate(args) if a.endswith("fmf_job.py"))
    laptop = [
        "--master",
        "local[2]",
        "--driver-class-path",
        f"{jars_dir}/*",
        "--conf",
        "spark.hadoop.fs.s3.impl=org.apache.hadoop.fs.s3a.S3AFileSystem",
        "--conf",
        f"spark.hadoop.fs.s3a.endpoint={moto_endpoint}",
        "--conf",
        "spark.hadoop.fs.s3a.endpoint.region=us-east-1",
        "--conf",
        "spark.hadoop.fs.s3a.path.style.access=true",
        "--conf",
        "spark.ui.enabled=false",
        # Delta's 50 snapshot partitions suit EMR's nodes, not two local cores
        "--conf",
        "spark.databricks.delta.snapshotPartitions=2",
    ]
    # the step's job arguments, plus where this bucket's documents and outputs are
    settings = [
        s.replace("s3a://", "s3://") for s in job_settings(bucket, exports="exports/outputs")
    ]
    job_args = [a for s in settings for a in ("--set", s)]
    command = laptop + args[:job] + [args[job]] + args[job + 1 :] + job_args

    work = tmp_path / "container"
    work.mkdir()
    with tarfile.open(emr_package / "fmf_spark_emr.tar.gz") as archive:
        archive.extractall(work / "environment", filter="tar")
    env = clean_env(
        {
            "PYTHONPATH": str(_platform_pythonpath(tmp_path / "platform")),
            "PYSPARK_DRIVER_PYTHON": str(work / "environment" / "bin" / "python"),
            "AWS_ENDPOINT_URL": moto_endpoint,
        }
    )
    done = spark_submit(command, env=env, cwd=work, timeout=1500)
    # spark-submit merges the Python driver's stderr (our log) into the JVM's stdout
    log = done.stdout + done.stderr
    (tmp_path / "spark-submit.log").write_text(log)
    assert done.returncode == 0, log[-4000:]
    assert (
        "using the Spark session of the platform (started by spark-submit), master local[2]" in log
    )

    (record_key,) = [k for k in bucket.keys("artefacts/") if k.endswith("/run.yaml")]
    record = yaml.safe_load(s3.get_object(Bucket=bucket.name, Key=record_key)["Body"].read())
    assert record["status"] == "succeeded" and record["profile"] == "emr"
    exported = spark.read.format("delta").load(
        str(bucket.download("exports/outputs/", tmp_path / "outputs"))
    )
    rows = exported.select("doc_id", "step", "status").collect()
    assert {r.doc_id for r in rows if r.step != "digest"} == doc_ids()
    assert {r.status for r in rows} == {"ok"}
    assert len(rows) == record["metrics"]["rows"]
