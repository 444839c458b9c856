"""Run by test_progress.py in its own process: Spark retries inference tasks that had
already answered part of their rows (``local[2,3]``: up to 3 attempts per task).

Attempt 0 of every task stops with an error once it has answered ``FAIL_AFTER`` rows
(the shared test session is ``local[2]``, which never retries, hence this process).
Prints one JSON line: the simulator's stats, the outputs and what attempt 0 committed.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from fmf_spark.inference import InferenceStep
from fmf_spark.inference.runner import _Task

FAIL_AFTER = 6
STEP = InferenceStep("s", "sim", "p", "1", "h", max_tokens=16)


class FailingTask(_Task):
    """The product's task, but attempt 0 fails after ``FAIL_AFTER`` answers."""

    marker_dir: str = ""

    def call(self, client: Any, rid: str, messages_json: str | None) -> dict[str, Any]:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        if ctx is not None and ctx.attemptNumber() == 0:
            counter = self.__dict__.setdefault("_calls", itertools.count(1))
            if next(counter) > FAIL_AFTER:
                Path(self.marker_dir, f"failed-p{ctx.partitionId()}").touch()
                raise RuntimeError("injected: the task dies after answering part of its rows")
        return super().call(client, rid, messages_json)


def messages(rows: int) -> list[str]:
    return [json.dumps([{"role": "user", "content": f"retry row {i}"}]) for i in range(rows)]


def main() -> None:
    import pyspark

    os.environ.setdefault("SPARK_HOME", os.path.dirname(pyspark.__file__))
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    with tempfile.TemporaryDirectory(prefix="fmf-retry-") as tmp:
        result = run(Path(tmp), rows)
    print("RESULT " + json.dumps(result))


def run(work: Path, rows: int) -> dict[str, Any]:
    """Run infer() with the failing task in ``work``; return the figures."""
    import pyarrow.parquet as pq

    from fmf_spark.config.models import FmfConfig
    from fmf_spark.inference import infer, runner
    from fmf_spark.inference.progress_store import progress_location
    from fmf_spark.simulator import SimulatorServer, SimulatorSettings
    from fmf_spark.spark import get_spark

    FailingTask.marker_dir = str(work)
    # the runner builds FailingTask instead of its own task (pickled by value from here)
    runner._Task = FailingTask  # type: ignore[misc]
    settings = SimulatorSettings(requests_per_minute=None, tokens_per_minute=None, latency_ms=30)
    with SimulatorServer(settings) as sim:
        cfg = FmfConfig.model_validate(
            {
                "spark": {"master": "local[2,3]", "shuffle_partitions": 2},
                "inference": {
                    "tasks": 2,
                    "progress_rows": 2,
                    "providers": {
                        "sim": {
                            "type": "openai",
                            "base_url": sim.openai_base_url,
                            "model": "gpt-4o-mini",
                            "concurrency": 2,
                        }
                    },
                },
            }
        )
        spark = get_spark(cfg)
        spark.sparkContext.setLogLevel("ERROR")
        data = [(f"d{i}", f"c{i}", m) for i, m in enumerate(messages(rows))]
        df = spark.createDataFrame(data, "doc_id string, chunk_id string, messages string")
        cache = str(work / "_cache" / "outputs")
        out = infer(df, STEP, cfg, cache_path=cache).collect()
        location = progress_location(cache, runner.request_prefix(STEP, "gpt-4o-mini"))
        # a local folder: each attempt's answer log, one line an answer (Parquet files
        # where the store cannot append)
        first_attempts = list(Path(location).glob("part-*-a0-*"))
        result = {
            "stats": sim.stats(),
            "outputs": sorted([r.request_id, r.doc_id, r.status, r.attempts] for r in out),
            "failed_attempts": len(list(work.glob("failed-p*"))),
            "answered_before_failure": sum(
                len(p.read_bytes().splitlines())
                if p.suffix == ".jsonl"
                else pq.read_table(p).num_rows
                for p in first_attempts
            ),
        }
        spark.stop()
    return result


if __name__ == "__main__":
    main()
