"""Run by test_cluster.py in its own process: infer() on ``local-cluster[2,1,1024]``.

Two executor JVMs, each with its own Python workers, call one simulator through the
driver's quota broker. Prints one JSON line: the simulator's stats, the row statuses and
the executor processes that made calls.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    import pyspark

    os.environ.setdefault("SPARK_HOME", os.path.dirname(pyspark.__file__))
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from fmf_spark.config.models import FmfConfig
    from fmf_spark.inference import InferenceStep, infer
    from fmf_spark.simulator import SimulatorServer, SimulatorSettings
    from fmf_spark.spark import get_spark

    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    # 300 RPM over 2 s windows: 10 requests per window
    settings = SimulatorSettings(
        requests_per_minute=300, tokens_per_minute=None, window_s=2, latency_ms=20
    )
    with SimulatorServer(settings) as sim:
        cfg = FmfConfig.model_validate(
            {
                "spark": {"master": "local-cluster[2,1,1024]", "shuffle_partitions": 2},
                "inference": {
                    "tasks": 2,
                    "providers": {
                        "sim": {
                            "type": "openai",
                            "base_url": sim.openai_base_url,
                            "model": "gpt-4o-mini",
                            "concurrency": 4,
                            "rate_limit": {
                                "requests_per_minute": 300,
                                "window_s": 2,
                                "headroom": 0.2,
                            },
                        }
                    },
                },
            }
        )
        spark = get_spark(cfg, extra_conf={"spark.executor.cores": "1"})
        spark.sparkContext.setLogLevel("ERROR")
        # wait until both executors have registered, so the two tasks run side by side
        deadline = time.monotonic() + 120
        while spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() < 3:
            if time.monotonic() > deadline:
                raise RuntimeError("the two executors did not register")
            time.sleep(0.5)
        messages = [
            (f"d{i}", f"c{i}", json.dumps([{"role": "user", "content": f"cluster row {i}"}]))
            for i in range(rows)
        ]
        df = spark.createDataFrame(messages, "doc_id string, chunk_id string, messages string")
        step = InferenceStep("s", "sim", "p", "1", "h", max_tokens=16)
        out = infer(df, step, cfg).collect()

        tasks_by_executor = {}
        summaries = spark.sparkContext._jsc.sc().statusStore().executorList(True)
        for i in range(summaries.size()):
            summary = summaries.apply(i)
            if summary.id() != "driver":
                tasks_by_executor[summary.id()] = summary.totalTasks()
        result = {
            "stats": sim.stats(),
            "statuses": sorted({r.status for r in out}),
            "rows": len(out),
            "attempts": sum(r.attempts for r in out),
            "tasks_by_executor": tasks_by_executor,
        }
        spark.stop()
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
