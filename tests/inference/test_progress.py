"""Durable progress: answers committed while a step runs serve a rerun and a retried task."""

from __future__ import annotations

import os
import time
from pathlib import Path

import boto3
import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from fmf_spark.inference import request_id
from fmf_spark.inference.cache import read_cache
from fmf_spark.inference.progress_store import (
    LOG_SUFFIX,
    ProgressSpec,
    TaskProgress,
    _delete_batch,
    can_append,
    fold_progress,
    progress_location,
)
from fmf_spark.inference.runner import request_prefix
from fmf_spark.schemas import INFERENCE_RESULT_COLUMNS, TIMED_INFERENCE_RESULT_SCHEMA
from fmf_spark.simulator import FaultRule, SimulatorServer
from tests.inference.conftest import progress_row, run_job
from tests.inference.test_runner import msgs, run, step_for

ROOT = Path(__file__).resolve().parents[2]
RESULT = list(INFERENCE_RESULT_COLUMNS)


def _parquet_files(folder: str, ending: str = ".parquet") -> list[str]:
    if not os.path.isdir(folder):
        return []
    return sorted(p for p in os.listdir(folder) if p.endswith(ending))


def _logs(folder: str) -> list[str]:
    return _parquet_files(folder, LOG_SUFFIX)


def test_answers_committed_while_running_serve_the_rerun_then_fold_into_the_cache(
    spark: SparkSession, sim: SimulatorServer, tmp_path: Path
) -> None:
    sim.set_faults([FaultRule(kind="bad_request", match="number 3")])
    cache = str(tmp_path / "_cache" / "outputs")
    rows = [(f"d{i}", f"c{i}", msgs(f"text number {i}")) for i in range(12)]
    step = step_for("openai")
    inference = {"tasks": 2, "progress_rows": 2, "progress_seconds": 60}
    first = run(spark, sim, rows, step, cache_path=cache, inference=inference)

    # the step's outputs were never saved (as when the driver is killed): the progress
    # logs (a local folder: one per task attempt, an answer a line) hold every
    # successful answer, and no failure
    location = progress_location(cache, request_prefix(step, "gpt-4o-mini"))
    files = _logs(location)
    assert files and all(f.startswith("part-") and "-p0000" in f for f in files)
    assert _parquet_files(location) == []
    committed = spark.read.schema(TIMED_INFERENCE_RESULT_SCHEMA).json(location)
    answered = first.where("status = 'ok'").select(*RESULT)
    assert_df_equality(
        committed.select(*RESULT), answered, ignore_row_order=True, ignore_nullable=True
    )
    assert first.where("status = 'error'").count() == 1

    # the rerun calls only the request without an answer; the rest come as cached
    sim.reset()
    second = run(spark, sim, rows, step, cache_path=cache, inference=inference)
    assert sim.stats()["requests"] == 1
    ok = F.col("status") == "ok"
    expected = first.withColumn("attempts", F.when(ok, F.lit(0)).otherwise(F.col("attempts")))
    # the failed request was called again: its own latency
    second, expected = (
        df.withColumn("latency_ms", F.when(ok, F.col("latency_ms"))) for df in (second, expected)
    )
    assert_df_equality(second, expected, ignore_row_order=True, ignore_nullable=True)

    # the fold moves them into the Delta cache and deletes the files, once
    constants = {
        "step": "summary",
        "prompt_id": "summarise",
        "prompt_version": "3",
        "prompt_hash": "hash-abc",
        "model": "gpt-4o-mini",
    }
    prefix = request_prefix(step, "gpt-4o-mini")
    assert fold_progress(spark, cache, {prefix: constants}) == len(files)
    assert _logs(location) == []
    cached = read_cache(spark, cache)
    assert cached is not None
    assert_df_equality(cached, answered, ignore_row_order=True, ignore_nullable=True)
    assert fold_progress(spark, cache, {prefix: constants}) == 0
    assert read_cache(spark, cache).count() == 11  # type: ignore[union-attr]


def test_progress_off_writes_nothing(
    spark: SparkSession, sim: SimulatorServer, tmp_path: Path
) -> None:
    cache = str(tmp_path / "_cache" / "outputs")
    rows = [("d1", "c1", msgs("alpha")), ("d2", "c2", msgs("beta"))]
    step = step_for("openai")
    run(spark, sim, rows, step, cache_path=cache, inference={"tasks": 2, "progress_rows": 0})
    assert not (tmp_path / "_cache").exists()


def test_task_progress_on_s3_recalls_its_partition_and_deletes(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket="progress")
    location = "s3a://progress/artefacts/_cache/_progress/k1"
    spec = ProgressSpec(location, "w1", rows=2, seconds=60)

    first = TaskProgress(spec, partition=3, attempt=0, task_attempt_id=7)
    rows = [progress_row("r1"), progress_row("r2", "error"), progress_row("r3"), progress_row("r4")]
    for row in rows:
        first.record(row)
    first.close()
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="progress")["Contents"])
    assert keys == [
        "artefacts/_cache/_progress/k1/part-w1-p00003-a0-t7-000000.parquet",
        "artefacts/_cache/_progress/k1/part-w1-p00003-a0-t7-000001.parquet",
    ]

    # a retry of the same partition gets the answers back as they were; another
    # partition, or another infer() call (writer), gets nothing
    retry = TaskProgress(spec, partition=3, attempt=1, task_attempt_id=9)
    assert retry.recall() == {r["request_id"]: r for r in rows if r["status"] == "ok"}
    retry.close()
    other = TaskProgress(spec, partition=1, attempt=0, task_attempt_id=8)
    assert other.recall() == {}
    other.close()
    assert TaskProgress(ProgressSpec(location, "w2", 2, 60), 3, 1, 10).recall() == {}

    uris = [f"s3a://progress/{k}" for k in keys]
    (deleted,) = list(_delete_batch(iter([pd.DataFrame({"path": uris})])))
    assert deleted["error"].tolist() == [None, None]
    # (pyarrow may leave an empty folder marker behind: no file)
    left = [o["Key"] for o in s3.list_objects_v2(Bucket="progress").get("Contents", [])]
    assert [k for k in left if not k.endswith("/")] == []


@pytest.mark.slow
def test_a_retried_task_never_calls_again_what_it_had_answered() -> None:
    """Acceptance 2: attempt 0 of each task fails after some answers; Spark retries it
    (``local[2,3]``, its own session in a subprocess: the shared one never retries)."""
    result = run_job("tests.inference.retry_job", "40")
    # each of the two tasks failed once, after answering some of its rows
    assert result["failed_attempts"] == 2 and result["answered_before_failure"] > 0
    stats = result["stats"]
    # every request reached the simulator once: the retries called only the rest
    assert (stats["requests"], stats["ok"], stats["repeat_success"]) == (40, 40, 0)
    # one output per input row, each answered once (recalled rows keep their attempts)
    from tests.inference.retry_job import STEP, messages

    expected = sorted(
        [request_id(STEP, "gpt-4o-mini", m), f"d{i}", "ok", 1] for i, m in enumerate(messages(40))
    )
    assert result["outputs"] == expected


def test_a_waiting_answer_is_committed_by_the_timer(tmp_path: Path) -> None:
    spec = ProgressSpec(str(tmp_path / "k1"), "w1", rows=1000, seconds=0.05)
    progress = TaskProgress(spec, partition=0, attempt=0, task_attempt_id=1)
    progress.record(progress_row("r1"))
    # far fewer than `rows` answers: the timer commits it while the task goes on
    deadline = time.monotonic() + 30
    while not _parquet_files(str(tmp_path / "k1")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _parquet_files(str(tmp_path / "k1")) == ["part-w1-p00000-a0-t1-000000.parquet"]
    assert progress.committed == 1
    progress.close()
    # nothing more waited: closing writes no empty file; no temp file is left
    assert sorted(os.listdir(tmp_path / "k1")) == ["part-w1-p00000-a0-t1-000000.parquet"]
    again = TaskProgress(spec, partition=0, attempt=1, task_attempt_id=2)
    assert again.recall() == {"r1": progress_row("r1")}
    again.close()


def test_a_local_task_appends_every_answer_to_its_log_as_it_arrives(tmp_path: Path) -> None:
    location = str(tmp_path / "k1")
    assert can_append(location) and can_append(f"file://{location}")
    assert not can_append("s3a://bucket/k1")  # no append: Parquet files in batches
    assert not can_append("/dbfs/artefacts/k1") and not can_append("dbfs:/Volumes/c/s/v/k1")
    spec = ProgressSpec(location, "w1", rows=1000, seconds=3600, append=True)
    first = TaskProgress(spec, partition=2, attempt=0, task_attempt_id=4)
    first.record(progress_row("r1"))
    first.record(progress_row("r2", "error"))  # failures are called again: not logged
    # committed the moment it was recorded: no batch, no timer (rows and seconds are far)
    assert first.committed == 1
    log = tmp_path / "k1" / "part-w1-p00002-a0-t4.jsonl"
    assert _logs(location) == [log.name] and len(log.read_bytes().splitlines()) == 1
    first.record(progress_row("r3"))
    # a kill in the middle of a write leaves a cut last line: never read as an answer
    with log.open("ab") as out:
        out.write(b'{"request_id":"r4","output_text":"answer r4","status":"o')

    # a retry (its own log) gets back the whole answers as they were
    retry = TaskProgress(spec, partition=2, attempt=1, task_attempt_id=9)
    assert retry.recall() == {"r1": progress_row("r1"), "r3": progress_row("r3")}
    retry.record(progress_row("r5"))
    retry.close()
    first.close()
    assert _logs(location) == [log.name, "part-w1-p00002-a1-t9.jsonl"]
    assert TaskProgress(spec, partition=1, attempt=0, task_attempt_id=5).recall() == {}
