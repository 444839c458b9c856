"""SharePoint Excel sink against the Graph test server with the workbook API."""

from __future__ import annotations

import pytest

from fmf_spark.config.secrets import SecretResolver
from fmf_spark.errors import ExportConflict
from fmf_spark.exporters import export_table
from fmf_spark.schemas import OUTPUTS_SCHEMA
from tests.exporters.conftest import N_ROWS, output_row
from tests.servers.graph import graph_server
from tests.servers.graph_workbook import Workbook

SITE = "contoso.sharepoint.com:/sites/team"
HEADER = [f.name for f in OUTPUTS_SCHEMA.fields if f.name != "error"] + [
    "error_code",
    "error_message",
    "error_retryable",
]


def _flat(row):
    rec = dict(zip(OUTPUTS_SCHEMA.fieldNames(), row, strict=True))
    err = rec.pop("error") or (None, None, None)
    return tuple(rec[c] for c in HEADER[:-3]) + tuple(err)


@pytest.fixture
def graph():
    with graph_server() as server:
        server.drives.add((SITE, "Documents"))
        server.add_client("app-id", "app-secret-value")
        yield server, Workbook(server)


@pytest.fixture
def excel_sink(graph, make_config):
    server, _ = graph

    def make(**extra):
        cfg = make_config(
            {
                "type": "sharepoint_excel",
                "graph_url": server.graph_url,
                "authority_url": server.url,
                "tenant_id": "tenant-1",
                "client_id": "app-id",
                "client_secret": {"secret": "sp_secret"},
                "site": SITE,
                "workbook_path": "reports/fmf outputs.xlsx",
                "sheet": "outputs",
                "max_backoff_s": 0.05,
                **extra,
            },
            secrets={"names": {"sp_secret": {"provider": "env", "key": "SP_SECRET"}}},
        )
        return cfg, SecretResolver(cfg.secrets, environ={"SP_SECRET": "app-secret-value"})

    return make


def _sheet(server, sheet="outputs"):
    data = server.drive_files[(SITE, "Documents", "reports/fmf outputs.xlsx")]
    return Workbook.read_rows(data, sheet)


def test_upsert_twice_leaves_the_row_count_unchanged_and_reads_back_with_openpyxl(
    spark, graph, excel_sink, make_outputs, expected_rows
):
    server, workbook = graph
    cfg, resolver = excel_sink()
    inp = make_outputs(files=2)
    first = export_table(spark, cfg, "sink", inp, run_id="run1", resolver=resolver)
    assert (first.batches, first.rows_written, first.rows_updated) == (2, N_ROWS, 0)
    rows = _sheet(server)
    assert list(rows[0]) == HEADER
    assert sorted(rows[1:]) == sorted(_flat(r) for r in expected_rows)

    # the same run again, from a fresh checkpoint: every row is an update in place
    second = export_table(
        spark, cfg, "sink", inp, run_id="run1", resolver=resolver, checkpoint_root=inp + "_ck2"
    )
    assert (second.rows_written, second.rows_updated) == (N_ROWS, N_ROWS)
    again = _sheet(server)
    assert len(again) == N_ROWS + 1
    assert sorted(again[1:]) == sorted(_flat(r) for r in expected_rows)
    assert workbook.sessions_created == 4 and workbook.sessions_open == set()


def test_existing_workbook_gets_the_sheet_added_and_duplicate_keys_collapse(
    spark, graph, excel_sink, make_outputs
):
    server, workbook = graph
    other = [["note"], ["keep me"]]
    server.drive_files[(SITE, "Documents", "reports/fmf outputs.xlsx")] = Workbook.new_xlsx(
        "notes", other
    )
    cfg, resolver = excel_sink(order_column="latency_ms")
    rows = [output_row(0), output_row(0, text="=SUM(A1:A9) latest", latency=999), output_row(1)]
    inp = make_outputs(rows=rows, files=1)
    result = export_table(spark, cfg, "sink", inp, run_id="run1", resolver=resolver)
    assert (result.rows_written, result.rows_failed) == (2, 0)
    assert [list(r) for r in _sheet(server, "notes")] == other
    got = _sheet(server)
    assert sorted(got[1:]) == sorted(
        [_flat(output_row(0, text="=SUM(A1:A9) latest", latency=999)), _flat(output_row(1))]
    )
    assert workbook.sessions_open == set()


def test_throttling_is_honoured_and_the_session_is_closed(spark, graph, excel_sink, make_outputs):
    server, workbook = graph
    cfg, resolver = excel_sink()
    inp = make_outputs(files=1)
    server.inject_fault(status=429, retry_after=0, path_regex=r"/range\(", times=2)
    result = export_table(spark, cfg, "sink", inp, run_id="run1", resolver=resolver)
    assert result.rows_written == N_ROWS
    assert result.retries == 2
    throttled = [r for r in server.requests if r[2] == 429]
    assert len(throttled) == 2
    assert len(_sheet(server)) == N_ROWS + 1
    assert workbook.sessions_open == set()


def test_access_conflict_is_surfaced_not_looped(spark, graph, excel_sink, make_outputs):
    server, workbook = graph
    cfg, resolver = excel_sink()
    inp = make_outputs(files=1)
    workbook.lock_conflicts = 1
    with pytest.raises(ExportConflict, match="accessConflict"):
        export_table(spark, cfg, "sink", inp, run_id="run1", resolver=resolver)
    creates = [r for r in server.requests if r[1].endswith("/createSession")]
    assert len(creates) == 1
    assert workbook.sessions_open == set()
    # the lock is gone: the rerun resumes from the checkpoint and completes
    result = export_table(spark, cfg, "sink", inp, run_id="run1", resolver=resolver)
    assert result.rows_written == N_ROWS
    assert len(_sheet(server)) == N_ROWS + 1
