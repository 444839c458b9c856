"""The Lambda handler, invoked locally on a file system shaped like Lambda's.

The wheel is installed into a task root the way the image installs it
(``deploy/install.sh ... target``) and the jars fetched by the image's script. A
bubblewrap sandbox then gives the handler Lambda's view: everything read-only, the task
root at ``/var/task``, the jars at ``/opt/fmf/jars``, and one writable ``/tmp`` (a temp
dir of the test); ``HOME`` points at a read-only folder. A write anywhere else fails,
so a passing run proves the ``aws_lambda`` profile keeps every scratch file under
``/tmp``. Two S3 events are handled in one process (cold, then warm); each run reads
only its event's object, and the outputs land in the S3 and DynamoDB sinks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import venv
from pathlib import Path

import boto3
import pytest
import yaml

from tests.deploy.conftest import (
    DOCS,
    Bucket,
    doc_ids,
    install,
    job_settings,
    make_bucket,
    s3a_env,
)
from tests.deploy.helpers import ROOT, clean_env, ended_pid

pytestmark = pytest.mark.slow

LAMBDA_EXTRAS = "spark,processing,aws,openai"
TABLE = "fmf-lambda-outputs"


@pytest.fixture(scope="session")
def task_root(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the image has in /var/task: the installed packages, conf, prompts, chains."""
    root = install(wheel, LAMBDA_EXTRAS, "target", tmp_path_factory.mktemp("lambda") / "task")
    for folder in ("conf", "prompts", "chains"):
        shutil.copytree(ROOT / folder, root / folder)
    return root


@pytest.fixture(scope="session")
def runtime_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare interpreter (an empty venv), mounted at /var/lang like Lambda's runtime:
    only what /var/task holds is importable."""
    home = tmp_path_factory.mktemp("runtime") / "python"
    venv.create(home, with_pip=False, symlinks=True)
    return home


def _event(bucket: str, key: str) -> dict:
    # what S3 sends: the key URL-encoded, a space as '+'
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": key.replace(" ", "+")}},
            }
        ]
    }


def _sandbox(scratch: Path, task: Path, jars: Path, python: Path) -> list[str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        pytest.fail("bubblewrap is missing: scripts/setup.sh test installs it (apt: bubblewrap)")
    return [
        bwrap,
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--bind", str(scratch), "/tmp",
        # /var/task and /opt/fmf do not exist here: read-only mounts over empty tmpfs
        "--tmpfs", "/var",
        "--ro-bind", str(task), "/var/task",
        "--ro-bind", str(python), "/var/lang",
        "--remount-ro", "/var",
        "--tmpfs", "/opt",
        "--ro-bind", str(jars), "/opt/fmf/jars",
        # the invoker, mounted apart: the checkout itself may sit under /tmp, which the
        # sandbox replaces with the scratch folder
        "--ro-bind", str(ROOT / "tests" / "deploy" / "lambda_invoke.py"), "/opt/fmf/invoke.py",
        "--remount-ro", "/opt",
        "--chdir", "/var/task",
        "/var/lang/bin/python", "-B", "/opt/fmf/invoke.py",
    ]  # fmt: skip


@pytest.mark.timeout(2400)
def test_s3_events_run_the_chain_in_a_read_only_lambda(
    task_root: Path, jars_dir: Path, runtime_python: Path, moto_endpoint: str, tmp_path: Path
) -> None:
    bucket: Bucket = make_bucket(moto_endpoint, "fmf-lambda")
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "request_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "request_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    # what an invocation killed at its timeout leaves in the /tmp Lambda keeps: its
    # runtime process's Spark local dir, with the executor's copies of the jars
    left = scratch / "fmf_spark" / f"local-{ended_pid()}" / "spark-0" / "userFiles-0"
    left.mkdir(parents=True)
    (left / "delta-spark.jar").write_bytes(b"0" * 1024)
    readonly_home = tmp_path / "home"
    readonly_home.mkdir(mode=0o555)

    env = clean_env(
        {
            "FMF_CHAIN": bucket.uri("chains/aws_lambda.yaml"),
            "PYTHONPATH": "/var/task",
            "HOME": str(readonly_home),
            "TMPDIR": "/tmp",
            "LAMBDA_TASK_ROOT": "/var/task",
            # the function's configuration: the sinks and the documents' connector
            "FMF__EXPORTERS__OUTPUTS_S3__BUCKET": bucket.name,
            "FMF__EXPORTERS__OUTPUTS_DYNAMODB__TABLE": TABLE,
            **{
                "FMF__" + key.split("=", 1)[0].upper().replace(".", "__"): key.split("=", 1)[1]
                for key in job_settings(bucket)
                if not key.startswith("exporters.")
            },
            **s3a_env(moto_endpoint),
        }
    )
    env.pop("SPARK_HOME")
    first_key, second_key = (f"incoming/{k}" for k in DOCS)
    events = [json.dumps(_event(bucket.name, k)) for k in (first_key, second_key)]
    log = tmp_path / "lambda.log"  # the function's log, readable while it runs
    with log.open("w") as stderr:
        done = subprocess.run(
            [*_sandbox(scratch, task_root, jars_dir, runtime_python), *events],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=2000,
        )
    assert done.returncode == 0, log.read_text()[-4000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("INVOKED ")]
    report = json.loads(line.removeprefix("INVOKED "))
    assert report["results"] == [
        {"status": "succeeded", "objects": [bucket.uri(first_key)], "ignored": []},
        {"status": "succeeded", "objects": [bucket.uri(second_key)], "ignored": []},
    ]
    # the measured cold start, for docs/deploy/lambda.md (reported, never asserted)
    print(f"lambda timings: {report}")
    (tmp_path / "timings.json").write_text(json.dumps(report))

    # each run read only its event's object, though both were under the prefix
    records = [
        yaml.safe_load(bucket.client.get_object(Bucket=bucket.name, Key=k)["Body"].read())
        for k in bucket.keys("artefacts/")
        if k.endswith("/run.yaml")
    ]
    assert [(r["status"], r["metrics"]["documents"]) for r in records] == [("succeeded", 1)] * 2

    items = dynamodb.scan(TableName=TABLE)["Items"]
    assert {i["doc_id"]["S"] for i in items if i["step"]["S"] != "digest"} == doc_ids()
    assert {i["status"]["S"] for i in items} == {"ok"}
    s3_rows = [
        json.loads(row)
        for key in bucket.keys("exports/")
        for row in bucket.client.get_object(Bucket=bucket.name, Key=key)["Body"].read().splitlines()
    ]
    assert sorted(r["request_id"] for r in s3_rows) == sorted(i["request_id"]["S"] for i in items)

    # the writes went to /tmp: Spark's local dir (this process's: the cold start removed
    # the ended one's) and the moved HOME's files are there
    assert not left.parents[1].exists()
    assert len(list((scratch / "fmf_spark").glob("local-*"))) == 1
    assert os.listdir(readonly_home) == []
