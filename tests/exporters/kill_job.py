"""Run one export in its own process and die hard (``os._exit(137)``) right after the
sink wrote batch ``kill_batch``: no exception handling, no ``finally``, no Spark
shutdown, the way an OOM kill or a lost driver ends a job.

Usage: python -m tests.exporters.kill_job <config.json> <outputs path> <kill_batch>
(the config holds one sink named ``sink``; secrets resolve from this process's environment).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from fmf_spark.config.models import FmfConfig
from fmf_spark.config.secrets import SecretResolver
from fmf_spark.exporters import export_table
from fmf_spark.exporters.base import set_failpoint
from fmf_spark.spark import get_spark


def main(config_path: str, outputs: str, kill_batch: int) -> None:
    def die(info: dict[str, Any]) -> None:
        if info["batch_id"] == kill_batch:
            sys.stdout.flush()
            os._exit(137)

    cfg = FmfConfig.model_validate(json.loads(Path(config_path).read_text()))
    spark = get_spark(
        cfg, extra_conf={"spark.master": "local[1]", "spark.sql.shuffle.partitions": "1"}
    )
    set_failpoint("export.after_batch_written", die)
    export_table(spark, cfg, "sink", outputs, run_id="run1", resolver=SecretResolver(cfg.secrets))
    print("export finished without being killed", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
