"""Run one Delta export in its own process and die hard (``os._exit``) right after the
sink committed batch ``kill_batch``: no exception handling, no ``finally``, no Spark
shutdown, the way an OOM kill or a lost driver ends a job.

Usage: python -m tests.exporters.kill_job <outputs path> <target path> <kill_batch>
"""

from __future__ import annotations

import os
import sys
from typing import Any

from fmf_spark.config.models import FmfConfig
from fmf_spark.exporters import export_table
from fmf_spark.exporters.base import set_failpoint
from fmf_spark.spark import get_spark


def main(outputs: str, target: str, kill_batch: int) -> None:
    def die(info: dict[str, Any]) -> None:
        if info["batch_id"] == kill_batch:
            sys.stdout.flush()
            os._exit(137)

    cfg = FmfConfig.model_validate(
        {
            "exporters": {
                "sink": {
                    "type": "delta",
                    "path": target,
                    "mode": "append",
                    "max_files_per_trigger": 1,
                }
            }
        }
    )
    spark = get_spark(
        cfg, extra_conf={"spark.master": "local[1]", "spark.sql.shuffle.partitions": "1"}
    )
    set_failpoint("export.after_batch_written", die)
    export_table(spark, cfg, "sink", outputs, run_id="run1")
    print("export finished without being killed", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
