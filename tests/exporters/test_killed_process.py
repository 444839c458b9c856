"""A really killed export: the process dies after batch 2 is in the sink, the rerun
(here, from the test's own Spark session) completes it with every row exactly once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

from fmf_spark.exporters import export_table
from fmf_spark.schemas import OUTPUTS_SCHEMA
from tests.exporters.conftest import N_FILES, N_ROWS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_killed_process_then_rerun(
    spark, tmp_path, make_outputs, make_config, expected_rows
) -> None:
    inp = make_outputs()
    target = str(tmp_path / "target")
    proc = subprocess.run(
        [sys.executable, "-m", "tests.exporters.kill_job", inp, target, "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 137, proc.stdout + proc.stderr[-2000:]
    assert "finished without being killed" not in proc.stdout
    landed = spark.read.format("delta").load(target)
    assert landed.count() == 3 * N_ROWS // N_FILES  # batches 0, 1 and 2 reached the sink

    cfg = make_config({"type": "delta", "path": target, "mode": "append"})
    rerun = export_table(spark, cfg, "sink", inp, run_id="run1")
    assert rerun.batches_skipped == 1  # batch 2 replayed and skipped by Delta's txn
    expected = spark.createDataFrame(expected_rows, OUTPUTS_SCHEMA)
    assertDataFrameEqual(spark.read.format("delta").load(target), expected)
