"""Delta and Fabric sinks through export_table: idempotent micro-batches."""

from __future__ import annotations

import pytest
from pyspark.testing import assertDataFrameEqual

from fmf_spark.errors import ExportError
from fmf_spark.exporters import export_table
from fmf_spark.schemas import OUTPUTS_SCHEMA
from tests.exporters.conftest import N_FILES, N_ROWS, output_row


def _read(spark, path):
    return spark.read.format("delta").load(path)


def test_kill_after_batch_2_then_rerun_holds_each_row_once(
    spark, tmp_path, make_outputs, make_config, expected_rows, kill_process_after_batch
):
    """The export process is killed right after the sink committed batch 2.

    Batch 2 is in the sink but not in the checkpoint's commit log, so the rerun replays
    it with the same batch id. Append mode, where only Delta's txnAppId/txnVersion
    prevents duplicates (MERGE is idempotent by key anyway, and honours the same txn:
    see the next test).
    """
    mode = "append"
    inp = make_outputs()
    target = str(tmp_path / "target")
    cfg = make_config({"type": "delta", "path": target, "mode": mode})
    kill_process_after_batch(cfg, inp, 2)
    assert _read(spark, target).count() == 3 * N_ROWS // N_FILES  # batches 0..2 landed

    rerun = export_table(spark, cfg, "sink", inp, run_id="run1")
    assert rerun.batches == 3  # batch 2 replayed, then 3 and 4
    assert rerun.batches_skipped == 1  # Delta skipped the replayed batch 2 by its txn
    expected = spark.createDataFrame(expected_rows, OUTPUTS_SCHEMA)
    assertDataFrameEqual(_read(spark, target), expected)

    # exporting the same run again: nothing new, sink unchanged
    again = export_table(spark, cfg, "sink", inp, run_id="run1")
    assert (again.batches, again.rows_written) == (0, 0)
    assertDataFrameEqual(_read(spark, target), expected)


def test_a_replayed_merge_batch_is_skipped_by_its_txn(
    spark, tmp_path, make_outputs, make_config, expected_rows, kill_after_batch
):
    """Injected crash after the MERGE of batch 1 committed; the replay is a no-op."""
    inp = make_outputs(files=2)
    target = str(tmp_path / "target")
    cfg = make_config({"type": "delta", "path": target, "mode": "merge"})
    kill_after_batch(1)
    with pytest.raises(ExportError):
        export_table(spark, cfg, "sink", inp, run_id="run1")
    versions = spark.sql(f"DESCRIBE HISTORY delta.`{target}`").count()
    rerun = export_table(spark, cfg, "sink", inp, run_id="run1")
    assert (rerun.batches, rerun.batches_skipped, rerun.rows_written) == (1, 1, 0)
    assert spark.sql(f"DESCRIBE HISTORY delta.`{target}`").count() == versions
    assertDataFrameEqual(_read(spark, target), spark.createDataFrame(expected_rows, OUTPUTS_SCHEMA))


def test_merge_with_a_new_checkpoint_upserts_and_leaves_the_sink_unchanged(
    spark, tmp_path, make_outputs, make_config, expected_rows
):
    inp = make_outputs(files=1)
    target = str(tmp_path / "target")
    cfg = make_config({"type": "delta", "path": target, "mode": "merge"})
    first = export_table(spark, cfg, "sink", inp, run_id="run1")
    assert (first.batches, first.rows_written, first.rows_updated) == (1, N_ROWS, 0)

    second = export_table(
        spark, cfg, "sink", inp, run_id="run1", checkpoint_root=str(tmp_path / "ck2")
    )
    assert (second.batches, second.rows_written, second.rows_updated) == (1, N_ROWS, N_ROWS)
    assertDataFrameEqual(_read(spark, target), spark.createDataFrame(expected_rows, OUTPUTS_SCHEMA))


def test_a_new_checkpoint_never_silently_skips_writes(spark, tmp_path, make_outputs, make_config):
    """Batch ids restart at 0 with a new checkpoint; the txn app id must change with it."""
    inp = make_outputs(files=1)
    target = str(tmp_path / "target")
    cfg = make_config({"type": "delta", "path": target, "mode": "append"})
    export_table(spark, cfg, "sink", inp, run_id="run1")
    again = export_table(
        spark, cfg, "sink", inp, run_id="run1", checkpoint_root=str(tmp_path / "ck2")
    )
    assert (again.batches_skipped, again.rows_written) == (0, N_ROWS)
    assert _read(spark, target).count() == 2 * N_ROWS  # append duplicates by design


def test_duplicate_keys_in_one_batch_keep_the_latest_by_order_column(
    spark, tmp_path, make_outputs, make_config
):
    rows = [output_row(i) for i in range(6)]
    newer = [output_row(i, text=f"newer {i}", latency=10_000 + i) for i in range(3)]
    inp = make_outputs(rows=rows + newer, files=1)
    target = str(tmp_path / "target")
    cfg = make_config(
        {"type": "delta", "path": target, "mode": "merge", "order_column": "latency_ms"}
    )
    result = export_table(spark, cfg, "sink", inp, run_id="run1")
    assert (result.batches, result.rows_written, result.rows_failed) == (1, 6, 0)
    expected = spark.createDataFrame(newer + rows[3:], OUTPUTS_SCHEMA)
    assertDataFrameEqual(_read(spark, target), expected)


def test_schema_mismatch_is_reported_unless_evolution_is_on(
    spark, tmp_path, make_outputs, make_config
):
    from pyspark.sql import functions as F

    inp = make_outputs(files=1)
    target = str(tmp_path / "target")
    # the target has an extra column the outputs lack
    spark.read.format("delta").load(inp).limit(1).withColumn("extra", F.lit("x")).write.format(
        "delta"
    ).save(target)
    cfg = make_config({"type": "delta", "path": target, "mode": "merge"})
    with pytest.raises(ExportError) as err:
        export_table(spark, cfg, "sink", inp, run_id="run1")
    assert err.value.code == "export.schema_mismatch"
    assert "extra" in err.value.message

    cfg = make_config({"type": "delta", "path": target, "mode": "merge", "schema_evolution": True})
    result = export_table(spark, cfg, "sink", inp, run_id="run1")
    assert result.rows_written == N_ROWS
    assert _read(spark, target).count() == N_ROWS


def test_fabric_sink_writes_delta_locally_and_rejects_non_onelake_paths(
    spark, tmp_path, make_outputs, make_config, expected_rows
):
    inp = make_outputs(files=1)
    target = str(tmp_path / "lakehouse" / "Tables" / "outputs")
    cfg = make_config({"type": "fabric", "path": target})
    result = export_table(spark, cfg, "sink", inp, run_id="run1")
    assert result.rows_written == N_ROWS
    assertDataFrameEqual(_read(spark, target), spark.createDataFrame(expected_rows, OUTPUTS_SCHEMA))

    bad = make_config({"type": "fabric", "path": "abfss://ws@example.dfs.core.windows.net/x"})
    with pytest.raises(ExportError, match="not a OneLake path"):
        export_table(spark, bad, "sink", inp, run_id="run1")
