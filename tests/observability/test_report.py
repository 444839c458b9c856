"""``fmf report``: the sample run's page opened in headless Chromium (Debian's package).

The page must open with no network, without console errors, and show every section
with the run's own figures: the values plotted are read back from the page's charts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from fmf_spark.cli import main
from fmf_spark.observability.report import SECTIONS, build_report
from tests.observability.conftest import SampleRun
from tests.servers.chromium import CHROMIUM, PLOTS_DRAWN, Browser

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1800),  # the first test may make the session's sample run
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/setup.sh test)"),
]


@pytest.fixture(scope="module")
def report(spark, sample_run: SampleRun, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    path = build_report(spark, sample_run.result.run_dir, output=str(out), config=sample_run.config)
    return Path(path)


def test_report_opens_in_chromium_and_shows_every_section(
    spark, sample_run: SampleRun, report: Path, tmp_path: Path
) -> None:
    record = yaml.safe_load(Path(sample_run.result.run_yaml).read_text())
    with Browser(width=1280, height=900) as browser:
        browser.open(report.as_uri())
        browser.wait_for(PLOTS_DRAWN)
        sections = browser.evaluate(
            "Array.from(document.querySelectorAll('main > section')).map(s => s.id)"
        )
        assert sections == list(SECTIONS)
        steps = browser.evaluate(
            "Array.from(document.querySelectorAll('#steps table tbody tr'))"
            ".map(r => Array.from(r.cells).map(c => c.textContent))"
        )
        metrics = record["metrics"]["steps"]
        assert [(r[0], r[4], r[5], r[6]) for r in steps] == [
            (s, f"{m['calls']:,}", f"{m['cached']:,}", f"{m['failed']:,}")
            for s, m in metrics.items()
        ]
        # the refused chunk fails its document's row of the next step
        assert [r[12] for r in steps] == [
            "inference.content_filtered: 1",
            "chain.upstream_failed: 1",
        ]
        failures = browser.evaluate(
            "document.getElementById('chart-failures').data.map(t => [t.name, t.y])"
        )
        assert failures == [
            ["chain.upstream_failed", [0, 1]],
            ["inference.content_filtered", [1, 0]],
        ]

        # the timeline: every call admitted once, the quota line, the 429s marked
        timeline = browser.evaluate(
            "document.getElementById('chart-timeline-0').data"
            ".map(t => ({name: t.name, y: Array.from(t.y)}))"
        )
        by_name = {t["name"].split(" (")[0]: t["y"] for t in timeline}
        calls = sum(m["calls"] for m in metrics.values())
        assert sum(by_name["requests admitted per 1 s window"]) == calls
        assert set(by_name["quota"]) == {4}  # 240 RPM over 1 s windows
        stats = sample_run.simulator_stats
        refused = sum(
            int(stats.get(k) or 0) for k in ("rejected_429", "storm_429", "fault_rate_limit")
        )
        assert sum(by_name["429 responses"]) == refused >= 3

        latency = browser.evaluate(
            "document.getElementById('chart-latency').data.map(t => [t.name, Array.from(t.y)])"
        )
        assert {name: sum(y) for name, y in latency} == {s: m["calls"] for s, m in metrics.items()}
        docs = browser.evaluate(
            "Array.from(document.querySelectorAll('table.docs-cost tbody tr'))"
            ".map(r => r.cells[0].textContent)"
        )
        assert set(docs) == {"annual.md", "memo.md", "notes.md"}
        prompts = browser.evaluate(
            "Array.from(document.querySelectorAll('table.prompts tbody tr'))"
            ".map(r => [r.cells[1].textContent, r.cells[2].textContent])"
        )
        assert prompts == [[f"{p['id']}#{p['version']}", p["hash"]] for p in record["prompts"]]
        export = browser.evaluate("document.querySelector('#exports td').textContent")
        assert export == "outputs_delta"

        shot = tmp_path / "report.png"
        browser.screenshot(shot)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        # nothing went wrong in the page, and it fetched nothing but itself
        assert browser.errors == []
        assert {u for u in browser.requests if not u.startswith("data:")} == {report.as_uri()}


def test_report_is_logged_to_the_mlflow_run(sample_run: SampleRun, report: Path) -> None:
    import mlflow

    record = yaml.safe_load(Path(sample_run.result.run_yaml).read_text())
    client = mlflow.MlflowClient(tracking_uri=sample_run.config.observability.mlflow.tracking_uri)
    names = [a.path for a in client.list_artifacts(record["mlflow"]["run_id"])]
    assert "report.html" in names


def test_fmf_report_command(sample_run: SampleRun, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(sample_run.artefacts)
    run_id = sample_run.result.run_id
    args = ["report", run_id, "--artefacts", root, "--set", "observability.mlflow.enabled=false"]
    assert main(args) == 0
    target = Path(sample_run.result.run_dir) / "report.html"
    assert capsys.readouterr().out.strip() == f"report of run {run_id}: {target}"
    page = target.read_text()
    assert page.startswith("<!DOCTYPE html>") and f"fmf run {run_id}" in page
    assert "cdn.plot.ly" not in page.split("<body>", 1)[1]  # charts need no network
    assert main(["report", "20990101T000000Z-nope00", "--artefacts", root]) == 2
    assert "no run 20990101T000000Z-nope00" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium")
def test_a_run_without_timings_still_reports(spark, tmp_path: Path) -> None:
    """A run that failed before any call: sections say what is missing, no error."""
    from fmf_spark.config import load_config
    from fmf_spark.observability.run import RunContext
    from tests.chains.helpers import ROOT

    cfg = load_config(
        ROOT / "conf" / "fmf.yaml",
        profile="local",
        environ={},
        overrides=[f"artefacts.root={tmp_path}", "observability.mlflow.enabled=false"],
    )
    ctx = RunContext.start(cfg)
    ctx.finish("failed", RuntimeError("connector unreachable"))
    page = Path(build_report(spark, ctx.run_dir))
    with Browser() as browser:
        browser.open(page.as_uri())
        texts = browser.evaluate(
            "Array.from(document.querySelectorAll('main > section')).map(s => s.innerText)"
        )
        assert browser.errors == []
    assert "Failed: RuntimeError: connector unreachable" in texts[0]
    assert "this run recorded no request timings" in texts[2]
    assert "this run has no outputs table" in texts[4]


def test_requests_table_has_one_row_per_call(spark, sample_run: SampleRun) -> None:
    """The report's source: one row per call, agreeing with the outputs table."""
    from pyspark.sql import functions as F
    from pyspark.testing import assertDataFrameEqual

    from fmf_spark.schemas import REQUESTS_SCHEMA

    run_dir = sample_run.result.run_dir
    requests = spark.read.format("delta").load(f"{run_dir}/requests")
    assert [(f.name, f.dataType) for f in requests.schema] == [
        (f.name, f.dataType) for f in REQUESTS_SCHEMA
    ]
    outputs = spark.read.format("delta").load(f"{run_dir}/outputs")
    columns = ["request_id", "step", "status", "attempts", "latency_ms", "cost_usd"]
    called = outputs.where("attempts > 0").dropDuplicates(["request_id"])
    assertDataFrameEqual(requests.select(*columns), called.select(*columns))
    # every call has its timings in order; the 429s are on the calls that got them
    timings = requests.select(
        F.min(F.col("sent_at") >= F.col("started_at")).alias("sent_after_start"),
        F.min(F.col("ended_at") >= F.col("sent_at")).alias("ended_after_sent"),
        F.sum("rate_limited").alias("refused"),
        F.sum(F.size("rate_limited_at")).alias("refused_times"),
    ).first()
    stats = sample_run.simulator_stats
    refused = sum(int(stats.get(k) or 0) for k in ("rejected_429", "storm_429", "fault_rate_limit"))
    assert (timings["sent_after_start"], timings["ended_after_sent"]) == (True, True)
    assert timings["refused"] == timings["refused_times"] == refused
