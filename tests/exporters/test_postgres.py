"""The Redshift SQL path on a real PostgreSQL server: stage with COPY FROM STDIN, MERGE."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from fmf_spark.config.secrets import SecretResolver
from fmf_spark.errors import ExportConflict, ExportError
from fmf_spark.exporters import export_table
from fmf_spark.exporters.base import set_failpoint
from fmf_spark.schemas import OUTPUTS_SCHEMA
from tests.exporters.conftest import N_FILES, N_ROWS, output_row

COLUMNS = [f.name for f in OUTPUTS_SCHEMA.fields if f.name != "error"] + [
    "error_code",
    "error_message",
    "error_retryable",
]


def _flat(row):
    rec = dict(zip(OUTPUTS_SCHEMA.fieldNames(), row, strict=True))
    err = rec.pop("error") or (None, None, None)
    return tuple(rec[c] for c in COLUMNS[:-3]) + tuple(err)


@pytest.fixture
def pg_sink(postgres, make_config):
    table = f"out_{uuid.uuid4().hex[:8]}"

    def make(**extra):
        cfg = make_config(
            {
                "type": "postgres",
                "host": postgres.host,
                "port": postgres.port,
                "database": postgres.dbname,
                "user": postgres.user,
                "password": {"secret": "pg_password"},
                "table": table,
                "sslmode": "disable",
                **extra,
            },
            secrets={"names": {"pg_password": {"provider": "env", "key": "FMF_TEST_PG_PW"}}},
        )
        resolver = SecretResolver(cfg.secrets, environ={"FMF_TEST_PG_PW": postgres.password})
        return cfg, resolver

    return table, make


def _rows(postgres, table):
    with psycopg.connect(postgres.conninfo()) as conn:
        cols = ", ".join(COLUMNS)
        return sorted(conn.execute(f"SELECT {cols} FROM public.{table}").fetchall())


def test_kill_after_batch_2_then_rerun_holds_each_row_once(
    spark, postgres, pg_sink, make_outputs, kill_process_after_batch, expected_rows
):
    """The export process is killed after batch 2 committed in PostgreSQL; the replay
    MERGEs the same keys again."""
    table, make = pg_sink
    cfg, resolver = make()
    inp = make_outputs()
    kill_process_after_batch(cfg, inp, 2, env={"FMF_TEST_PG_PW": postgres.password})
    rerun = export_table(spark, cfg, "sink", inp, run_id="run1", resolver=resolver)
    assert rerun.batches == 3
    assert rerun.rows_updated == N_ROWS // 5  # the replayed batch 2 matched its own rows
    assert _rows(postgres, table) == sorted(_flat(r) for r in expected_rows)

    # the same run again from a fresh checkpoint, in one batch this time: all updates
    one_batch, _ = make(max_files_per_trigger=N_FILES)
    again = export_table(
        spark,
        one_batch,
        "sink",
        inp,
        run_id="run1",
        resolver=resolver,
        checkpoint_root=inp + "_ck2",
    )
    assert (again.batches, again.rows_written, again.rows_updated) == (1, N_ROWS, N_ROWS)
    assert _rows(postgres, table) == sorted(_flat(r) for r in expected_rows)


def test_failure_between_copy_and_merge_leaves_target_unchanged_and_rerun_completes(
    spark, postgres, pg_sink, make_outputs, expected_rows
):
    table, make = pg_sink
    cfg, resolver = make()
    inp = make_outputs(files=2)
    fired = []

    def crash(info):
        if info["batch_id"] == 1 and not fired:
            fired.append(1)
            raise RuntimeError("injected crash between COPY and MERGE")

    set_failpoint("sql.after_copy", crash)
    try:
        with pytest.raises(ExportError):
            export_table(spark, cfg, "sink", inp, run_id="run1", resolver=resolver)
    finally:
        set_failpoint("sql.after_copy", None)
    half = N_ROWS // 2
    assert _rows(postgres, table) == sorted(_flat(r) for r in expected_rows[:half])

    rerun = export_table(spark, cfg, "sink", inp, run_id="run1", resolver=resolver)
    assert (rerun.batches, rerun.rows_written, rerun.rows_updated) == (1, half, 0)
    assert _rows(postgres, table) == sorted(_flat(r) for r in expected_rows)


def test_duplicate_keys_in_a_batch_give_one_row_per_key(spark, postgres, pg_sink, make_outputs):
    table, make = pg_sink
    cfg, resolver = make(order_column="latency_ms")
    rows = [output_row(0), output_row(0, text="newest", latency=900), output_row(1)]
    inp = make_outputs(rows=rows, files=1)
    result = export_table(spark, cfg, "sink", inp, run_id="run1", resolver=resolver)
    assert (result.rows_written, result.rows_failed) == (2, 0)
    assert _rows(postgres, table) == sorted(
        [_flat(output_row(0, text="newest", latency=900)), _flat(output_row(1))]
    )


def test_serialization_conflicts_are_retried_a_bounded_number_of_times(
    spark, postgres, pg_sink, make_outputs
):
    """A concurrent serializable transaction holding the same rows makes our MERGE fail
    with 40001; the failpoint keeps the competitor alive for the first attempts."""
    table, make = pg_sink
    cfg, resolver = make(max_conflict_retries=1)
    inp = make_outputs(rows=[output_row(0)], files=1)
    export_table(spark, cfg, "sink", inp, run_id="run1", resolver=resolver)

    attempts = []

    def conflict(info):
        # another serializable writer updates the row and commits after our snapshot
        attempts.append(info["batch_id"])
        with psycopg.connect(postgres.conninfo(), autocommit=True) as other:
            other.execute(f"UPDATE public.{table} SET model = 'other' WHERE TRUE")

    set_failpoint("sql.after_copy", conflict)
    try:
        inp2 = make_outputs(run_id="run2", rows=[output_row(0, text="v2")], files=1)
        with pytest.raises(ExportConflict):
            export_table(spark, cfg, "sink", inp2, run_id="run2", resolver=resolver)
    finally:
        set_failpoint("sql.after_copy", None)
    assert len(attempts) == 2  # first try + 1 retry, then give up


def test_wrong_password_fails_precheck_without_leaking_it(spark, postgres, pg_sink, make_outputs):
    _, make = pg_sink
    cfg, _ = make()
    bad = SecretResolver(cfg.secrets, environ={"FMF_TEST_PG_PW": "wrong-password-123"})
    inp = make_outputs(files=1)
    with pytest.raises(ExportError) as err:
        export_table(spark, cfg, "sink", inp, run_id="run1", resolver=bad)
    assert err.value.code == "export.auth"
    assert "wrong-password-123" not in str(err.value)
