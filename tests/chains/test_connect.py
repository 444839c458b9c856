"""Acceptance (issue #12): the sample chain on a Spark Connect session, exported to Delta
and to S3, through the real CLI.

``fmf run`` with ``spark.remote`` pointing at a Connect server in another process
(:mod:`tests.servers.spark_connect`): the CLI process only builds plans, so nothing may
lean on a ``sparkContext``, on a socket in the client (the quota broker: the limiter
goes static under Connect) or on driver state a ``foreachBatch`` callback updates (the
export counts come back through the batch ledger). The Delta sink writes with SQL only.
A second run answers every request from the cache and exports idempotently: the Delta
table and the S3 objects hold each request once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from tests.chains.helpers import ROOT
from tests.servers.moto import aws_test_env
from tests.servers.spark_connect import spark_connect_server

# two CLI runs and a server start: minutes on a busy 2-core machine (a safety net, not a check)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

BUCKET = "fmf-connect"


@pytest.fixture(scope="module")
def connect_url() -> Iterator[str]:
    """One Spark Connect server for this module."""
    with spark_connect_server(env=aws_test_env()) as url:
        yield url


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> Path:
    """A copy of the project with two small documents and a chain exporting to both sinks."""
    root = tmp_path_factory.mktemp("connect")
    for folder in ("conf", "chains", "prompts"):
        shutil.copytree(ROOT / folder, root / folder)
    docs = root / "docs"
    docs.mkdir()
    (docs / "memo.md").write_text("# Memo\n\nThe office moves on Monday.\n", encoding="utf-8")
    (docs / "notes.txt").write_text("Supplier list to be reviewed in March.\n", encoding="utf-8")
    chain = yaml.safe_load((ROOT / "chains" / "sample.yaml").read_text(encoding="utf-8"))
    chain["outputs"] = [{"export": "outputs_delta"}, {"export": "outputs_s3"}]
    (root / "chains" / "connect.yaml").write_text(yaml.safe_dump(chain), encoding="utf-8")
    conf = yaml.safe_load((root / "conf" / "fmf.yaml").read_text(encoding="utf-8"))
    conf["exporters"]["outputs_s3"] = {
        "type": "s3",
        "bucket": BUCKET,
        "prefix": "outputs",  # no ${run_id}: a rerun writes the same object names
        "endpoint_url": moto_endpoint,
        "region": "us-east-1",
        "key_fields": ["request_id"],
    }
    (root / "conf" / "fmf.yaml").write_text(yaml.safe_dump(conf), encoding="utf-8")
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(
        Bucket=BUCKET
    )
    return root


def _run(project: Path, url: str) -> str:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FMF_", "MLFLOW_"))},
        **aws_test_env(),
    }
    fmf = Path(sys.executable).with_name("fmf")
    done = subprocess.run(
        [
            str(fmf),
            "--config",
            str(project / "conf" / "fmf.yaml"),
            "--set",
            f"spark.remote={url}",
            "--set",
            f"connectors.samples.root={project / 'docs'}",
            "--set",
            "observability.mlflow.enabled=false",
            "--set",
            "inference.providers.simulator.server.latency_ms=1",
            "run",
            "--chain",
            "connect.yaml",
            "--quiet",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _runs(project: Path) -> list[Path]:
    return sorted(p for p in (project / "artefacts").iterdir() if (p / "run.yaml").is_file())


def _s3_rows(endpoint: str) -> tuple[list[str], list[dict[str, Any]]]:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))
    rows = [
        json.loads(line)
        for key in keys
        for line in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()
        if line.strip()
    ]
    return keys, rows


@pytest.fixture(scope="module")
def two_runs(project: Path, connect_url: str, moto_endpoint: str) -> dict[str, Any]:
    first = _run(project, connect_url)
    s3_first = _s3_rows(moto_endpoint)
    second = _run(project, connect_url)
    return {"stdout": [first, second], "s3": [s3_first, _s3_rows(moto_endpoint)]}


def _read_delta(path: Path) -> list[dict[str, Any]]:
    """A Delta table's rows, read with pyarrow from the files its log says are live."""
    import pyarrow.parquet as pq

    live: set[str] = set()
    for commit in sorted((path / "_delta_log").glob("*.json")):
        for line in commit.read_text(encoding="utf-8").splitlines():
            action = json.loads(line)
            if "add" in action:
                live.add(action["add"]["path"])
            elif "remove" in action:
                live.discard(action["remove"]["path"])
    return [row for name in sorted(live) for row in pq.read_table(path / name).to_pylist()]


def test_the_chain_runs_and_exports_on_spark_connect(two_runs, project: Path) -> None:
    first_run, second_run = _runs(project)
    record = yaml.safe_load((first_run / "run.yaml").read_text(encoding="utf-8"))
    outputs = _read_delta(first_run / "outputs")
    # one call per chunk, one per document, one digest; every row answered
    steps = {row["step"] for row in outputs}
    assert steps == {"summarize", "brief", "digest"}
    assert {row["status"] for row in outputs} == {"ok"}
    request_ids = [row["request_id"] for row in outputs]
    assert len(request_ids) == len(set(request_ids))
    assert sum(row["step"] == "brief" for row in outputs) == 2
    assert sum(row["step"] == "digest" for row in outputs) == 1

    exported = _read_delta(project / "artefacts" / "exports" / "outputs")
    assert sorted(r["request_id"] for r in exported) == sorted(request_ids)
    by_id = {r["request_id"]: r for r in outputs}
    assert all(r["output_text"] == by_id[r["request_id"]]["output_text"] for r in exported)

    exports = {e["sink"]: e for e in record["exports"]}
    assert exports["outputs_delta"]["rows_written"] == len(request_ids)
    assert exports["outputs_s3"]["rows_written"] == len(request_ids)
    assert second_run.name != first_run.name


def test_s3_holds_each_request_once(two_runs, project: Path) -> None:
    (keys, rows), _ = two_runs["s3"]
    outputs = _read_delta(_runs(project)[0] / "outputs")
    assert keys and all(k.startswith("outputs/part-") for k in keys)
    assert sorted(r["request_id"] for r in rows) == sorted(r["request_id"] for r in outputs)


def test_a_rerun_calls_nothing_and_exports_idempotently(two_runs, project: Path) -> None:
    _, second_run = _runs(project)
    again = _read_delta(second_run / "outputs")
    assert {row["attempts"] for row in again} == {0}  # all from the cache
    exported = _read_delta(project / "artefacts" / "exports" / "outputs")
    assert len(exported) == len({r["request_id"] for r in exported}) == len(again)
    # the same object names, overwritten with the same rows
    (keys_first, rows_first), (keys_second, rows_second) = two_runs["s3"]
    assert keys_second == keys_first
    assert sorted(r["request_id"] for r in rows_second) == sorted(
        r["request_id"] for r in rows_first
    )
