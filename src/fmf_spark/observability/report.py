"""``fmf report``: one self-contained HTML page that shows where a run's time and money went.

Sections: the run at a glance; per step calls, cached rows, tokens, cost and failures
by code; the request timeline (requests admitted per quota window against the quota
line, 429s marked); the latency distribution; the slowest and the most expensive
documents; the prompts used with their hashes; the exports.

Sources, all in the run folder: ``run.yaml`` (steps, prompts, quotas, exports), the
``outputs`` table (per document figures), the ``requests`` table (per call timings,
written by the inference runner since this report exists) and ``documents`` (paths).
Aggregation runs in Spark; only small results (one row per window, bin, step or top
document) reach the driver, so a run of millions of calls makes the same small page.

Charts are drawn by plotly, whose JavaScript is inlined once: the file opens with no
network. Needs the ``report`` extra.
"""

from __future__ import annotations

import html
import json
import math
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fmf_spark.errors import FmfError
from fmf_spark.observability.logging import get_logger
from fmf_spark.observability.redaction import redact
from fmf_spark.observability.run import RUN_FILE
from fmf_spark.storage import join_uri, read_text, write_text

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from fmf_spark.config.models import FmfConfig

log = get_logger(__name__)

REPORT_FILE = "report.html"
TOP_DOCUMENTS = 10
LATENCY_BINS = 30
SECTIONS = ("summary", "steps", "timeline", "latency", "documents", "prompts", "exports")
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}


@dataclass
class ReportData:
    """What the page shows, already aggregated (small)."""

    record: dict[str, Any]
    #: per provider: quota, window, and per window ``(start epoch s, admitted, 429s)``
    timelines: list[dict[str, Any]] = field(default_factory=list)
    #: per step: ``(bin start ms, bin width ms, calls)``
    latency: dict[str, list[tuple[float, float, int]]] = field(default_factory=dict)
    latency_stats: dict[str, dict[str, float]] = field(default_factory=dict)
    slowest: list[dict[str, Any]] = field(default_factory=list)
    expensive: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)


# --- gathering ----------------------------------------------------------------------------


def _table(spark: SparkSession, path: str) -> DataFrame | None:
    """The Delta table at ``path``, or ``None`` when the run has none."""
    from pyspark.sql.utils import AnalysisException

    try:
        table = spark.read.format("delta").load(path)
        table.schema  # noqa: B018 - resolving the schema is what fails for a missing table
    except AnalysisException:
        return None
    return table


def gather(spark: SparkSession, run_dir: str) -> ReportData:
    """Read ``run.yaml`` and aggregate the run's tables for :func:`render_html`."""
    try:
        record = yaml.safe_load(read_text(join_uri(run_dir, RUN_FILE)))
    except (FmfError, OSError) as exc:
        raise FmfError(
            f"no run record at {run_dir}: {exc}",
            code="observability.no_run",
            hint="`fmf runs list` shows the runs under the artefacts root",
        ) from None
    if not isinstance(record, dict):
        raise FmfError(f"{join_uri(run_dir, RUN_FILE)} is not a run record")
    data = ReportData(record)
    requests = _table(spark, join_uri(run_dir, "requests"))
    outputs = _table(spark, join_uri(run_dir, "outputs"))
    documents = _table(spark, join_uri(run_dir, "documents"))
    if requests is None:
        data.notes["timeline"] = "this run recorded no request timings (no requests table)"
        data.notes["latency"] = data.notes["timeline"]
    else:
        data.timelines = _timelines(requests, record)
        data.latency, data.latency_stats = _latency(requests)
    if outputs is None:
        data.notes["documents"] = "this run has no outputs table"
    else:
        data.slowest, data.expensive = _documents(outputs, documents)
    return data


def _provider_of_steps(record: dict[str, Any]) -> dict[str, str]:
    return {
        str(p.get("step")): str(p.get("provider") or "?")
        for p in record.get("prompts") or []
        if isinstance(p, dict)
    }


def _timelines(requests: DataFrame, record: dict[str, Any]) -> list[dict[str, Any]]:
    from pyspark.sql import functions as F

    providers = _provider_of_steps(record)
    quotas = record.get("quotas") or {}
    out = []
    for provider in sorted(set(providers.values())):
        steps = [s for s, p in providers.items() if p == provider]
        quota = quotas.get(provider) or {}
        window = float(quota.get("window_s") or 10.0)
        rows = requests.where(F.col("step").isin(steps))
        # admitted = the attempt that got an answer was sent; a call that never got one
        # counts when it started
        sent = F.coalesce(F.col("sent_at"), F.col("started_at")).cast("double")
        admitted = (
            rows.select(F.floor(sent / window).alias("w"))
            .where(F.col("w").isNotNull())
            .groupBy("w")
            .count()
            .collect()
        )
        refused = (
            rows.select(F.explode("rate_limited_at").alias("t"))
            .select(F.floor(F.col("t").cast("double") / window).alias("w"))
            .groupBy("w")
            .count()
            .collect()
        )
        counts: dict[int, list[int]] = {}
        for r in admitted:
            counts.setdefault(int(r["w"]), [0, 0])[0] = int(r["count"])
        for r in refused:
            counts.setdefault(int(r["w"]), [0, 0])[1] = int(r["count"])
        if not counts:
            continue
        first, last = min(counts), max(counts)
        windows = [(w * window, *counts.get(w, [0, 0])) for w in range(first, last + 1)]
        rpm = quota.get("requests_per_minute")
        out.append(
            {
                "provider": provider,
                "model": quota.get("model"),
                "steps": steps,
                "window_s": window,
                "per_window": None if rpm is None else float(rpm) * window / 60.0,
                "requests_per_minute": rpm,
                "tokens_per_minute": quota.get("tokens_per_minute"),
                "windows": windows,
            }
        )
    return out


def _nice_width(span: float, bins: int) -> float:
    """A round bin width (1, 2 or 5 x 10^n ms) giving about ``bins`` bins over ``span``."""
    raw = max(span / bins, 1.0)
    power = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 5, 10):
        if raw <= step * power:
            return float(step * power)
    return float(10 * power)


def _latency(
    requests: DataFrame,
) -> tuple[dict[str, list[tuple[float, float, int]]], dict[str, dict[str, float]]]:
    from pyspark.sql import functions as F

    answered = requests.where(F.col("latency_ms").isNotNull())
    stats = answered.groupBy("step").agg(
        F.count(F.lit(1)).alias("n"),
        F.min("latency_ms").alias("min"),
        F.max("latency_ms").alias("max"),
        F.percentile_approx("latency_ms", [0.5, 0.95, 0.99]).alias("p"),
    )
    summary: dict[str, dict[str, float]] = {}
    for r in stats.collect():
        summary[str(r["step"])] = {
            "calls": int(r["n"]),
            "min": float(r["min"]),
            "p50": float(r["p"][0]),
            "p95": float(r["p"][1]),
            "p99": float(r["p"][2]),
            "max": float(r["max"]),
        }
    if not summary:
        return {}, {}
    low = min(s["min"] for s in summary.values())
    high = max(s["max"] for s in summary.values())
    width = _nice_width(high - low, LATENCY_BINS)
    binned = (
        answered.select("step", (F.floor(F.col("latency_ms") / width) * width).alias("bin"))
        .groupBy("step", "bin")
        .count()
        .collect()
    )
    hist: dict[str, list[tuple[float, float, int]]] = {}
    for r in binned:
        hist.setdefault(str(r["step"]), []).append((float(r["bin"]), width, int(r["count"])))
    return {k: sorted(v) for k, v in hist.items()}, summary


def _documents(
    outputs: DataFrame, documents: DataFrame | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from pyspark.sql import functions as F

    called = F.coalesce(F.col("attempts"), F.lit(0)) > 0
    per_doc = outputs.groupBy("doc_id").agg(
        F.sum(F.when(called, 1).otherwise(0)).alias("calls"),
        F.sum(F.when(called, F.col("latency_ms"))).alias("latency_ms"),
        F.sum(F.when(called, F.col("cost_usd"))).alias("cost_usd"),
        F.sum(F.when(called, F.col("prompt_tokens") + F.col("completion_tokens"))).alias("tokens"),
        F.sum(F.when(F.col("status") == "error", 1).otherwise(0)).alias("failed"),
    )
    if documents is not None:
        paths = documents.select("doc_id", "path").dropDuplicates(["doc_id"])
        per_doc = per_doc.join(paths, "doc_id", "left")
    else:
        per_doc = per_doc.withColumn("path", F.lit(None).cast("string"))
    per_doc = per_doc.where(F.col("calls") > 0)

    def top(column: str) -> list[dict[str, Any]]:
        rows = per_doc.orderBy(F.col(column).desc_nulls_last()).limit(TOP_DOCUMENTS).collect()
        return [
            {
                "document": r["path"]
                or ("(whole collection)" if r["doc_id"] is None else str(r["doc_id"])[:16]),
                "doc_id": None if r["doc_id"] is None else str(r["doc_id"])[:16],
                "calls": int(r["calls"] or 0),
                "latency_s": round(float(r["latency_ms"] or 0) / 1000.0, 2),
                "tokens": int(r["tokens"] or 0),
                "cost_usd": float(r["cost_usd"] or 0.0),
                "failed": int(r["failed"] or 0),
            }
            for r in rows
        ]

    return top("latency_ms"), top("cost_usd")


# --- rendering ----------------------------------------------------------------------------


def _esc(value: Any) -> str:
    return html.escape(redact("" if value is None else str(value)))


def _table_html(rows: list[dict[str, Any]], columns: list[tuple[str, str]], css: str = "") -> str:
    if not rows:
        return '<p class="empty">none</p>'
    head = "".join(f"<th>{_esc(title)}</th>" for _, title in columns)
    body = []
    for row in rows:
        cells = []
        for key, _ in columns:
            value = row.get(key)
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            text = _fmt(key, value)
            cells.append(f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if "cost" in key:
            return f"{value:.6f}"
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, dict):
        return _esc(", ".join(f"{k}: {v}" for k, v in value.items()) or "-")
    return _esc(value)


def _figure_html(figure: Any, div_id: str) -> str:
    return str(
        figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=_PLOT_CONFIG)
    )


def _layout(figure: Any, title: str, height: int = 360) -> Any:
    figure.update_layout(
        title={"text": title, "x": 0.0},
        template="plotly_white",
        height=height,
        margin={"l": 60, "r": 20, "t": 80, "b": 50},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1.0, "xanchor": "right"},
    )
    return figure


def _steps(record: dict[str, Any]) -> list[dict[str, Any]]:
    metrics = record.get("metrics") or {}
    prompts = {str(p.get("step")): p for p in record.get("prompts") or [] if isinstance(p, dict)}
    steps = metrics.get("steps") or {}
    order = list(prompts) + [s for s in steps if s not in prompts]
    rows = []
    for step in order:
        m = steps.get(step) or {}
        p = prompts.get(step) or {}
        rows.append(
            {
                "step": step,
                "scope": p.get("scope"),
                "model": p.get("model"),
                "rows": m.get("rows"),
                "calls": m.get("calls"),
                "cached": m.get("cached"),
                "failed": m.get("failed"),
                "retries": m.get("retries"),
                "prompt_tokens": m.get("prompt_tokens"),
                "completion_tokens": m.get("completion_tokens"),
                "cost_usd": m.get("cost_usd"),
                "seconds": m.get("seconds"),
                "failures_by_code": m.get("failures_by_code") or {},
            }
        )
    return rows


def _steps_section(record: dict[str, Any]) -> str:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = _steps(record)
    table = _table_html(
        rows,
        [
            ("step", "step"),
            ("scope", "scope"),
            ("model", "model"),
            ("rows", "rows"),
            ("calls", "calls"),
            ("cached", "cached rows"),
            ("failed", "failed"),
            ("retries", "retries"),
            ("prompt_tokens", "tokens in"),
            ("completion_tokens", "tokens out"),
            ("cost_usd", "cost USD"),
            ("seconds", "time s"),
            ("failures_by_code", "failures by code"),
        ],
    )
    if not rows:
        return table
    names = [r["step"] for r in rows]
    fig = make_subplots(
        rows=1, cols=3, subplot_titles=("calls and cached rows", "tokens", "cost (USD)")
    )
    fig.add_trace(go.Bar(name="calls", x=names, y=[r["calls"] or 0 for r in rows]), 1, 1)
    fig.add_trace(go.Bar(name="cached", x=names, y=[r["cached"] or 0 for r in rows]), 1, 1)
    fig.add_trace(
        go.Bar(name="tokens in", x=names, y=[r["prompt_tokens"] or 0 for r in rows]), 1, 2
    )
    fig.add_trace(
        go.Bar(name="tokens out", x=names, y=[r["completion_tokens"] or 0 for r in rows]), 1, 2
    )
    fig.add_trace(go.Bar(name="cost", x=names, y=[r["cost_usd"] or 0 for r in rows]), 1, 3)
    _layout(fig, "Per step", 400)
    # below the plots: above them it would cover the subplot titles
    fig.update_layout(legend={"y": -0.12, "yanchor": "top", "x": 0.0, "xanchor": "left"})
    parts = [table, _figure_html(fig, "chart-steps")]
    codes = sorted({c for r in rows for c in r["failures_by_code"]})
    if codes:
        failures = go.Figure(
            [
                go.Bar(name=code, x=names, y=[r["failures_by_code"].get(code, 0) for r in rows])
                for code in codes
            ]
        )
        failures.update_layout(barmode="stack")
        parts.append(
            _figure_html(_layout(failures, "Failed rows by error code", 300), "chart-failures")
        )
    else:
        parts.append('<p class="ok">No failed rows.</p>')
    return "\n".join(parts)


def _timeline_section(data: ReportData) -> str:
    import plotly.graph_objects as go

    if not data.timelines:
        return f'<p class="empty">{_esc(data.notes.get("timeline", "no calls were made"))}</p>'
    parts = []
    for i, tl in enumerate(data.timelines):
        window = tl["window_s"]
        # each bar covers its window: centred on it, as wide as it (date axes count ms)
        times = [datetime.fromtimestamp(w[0] + window / 2, tz=timezone.utc) for w in tl["windows"]]
        admitted = [w[1] for w in tl["windows"]]
        refused = [w[2] for w in tl["windows"]]
        fig = go.Figure()
        fig.add_trace(
            go.Bar(
                name=f"requests admitted per {window:g} s window",
                x=times,
                y=admitted,
                width=[window * 1000 * 0.9] * len(times),
            )
        )
        if tl["per_window"] is not None:
            first, last = tl["windows"][0][0], tl["windows"][-1][0] + window
            fig.add_trace(
                go.Scatter(
                    name=f"quota ({tl['requests_per_minute']} RPM = {tl['per_window']:g} per window)",
                    x=[datetime.fromtimestamp(t, tz=timezone.utc) for t in (first, last)],
                    y=[tl["per_window"]] * 2,
                    mode="lines",
                    line={"color": "#d62728", "dash": "dash"},
                )
            )
        marked = [(t, n) for t, n in zip(times, refused, strict=True) if n]
        if marked:
            fig.add_trace(
                go.Scatter(
                    name="429 responses",
                    x=[t for t, _ in marked],
                    y=[n for _, n in marked],
                    mode="markers",
                    marker={"symbol": "x", "size": 11, "color": "#d62728"},
                    hovertemplate="%{y} x 429<extra></extra>",
                )
            )
        title = f"{tl['provider']} ({tl['model'] or '?'}): steps {', '.join(tl['steps'])}"
        fig.update_xaxes(title_text="time (UTC)")
        fig.update_yaxes(title_text="requests")
        parts.append(_figure_html(_layout(fig, title), f"chart-timeline-{i}"))
        total_429 = sum(refused)
        parts.append(
            f'<p class="note">{sum(admitted):,} requests admitted in {len(times)} windows of '
            f"{window:g} s; {total_429:,} answered 429.</p>"
        )
    return "\n".join(parts)


def _latency_section(data: ReportData) -> str:
    import plotly.graph_objects as go

    if not data.latency:
        return f'<p class="empty">{_esc(data.notes.get("latency", "no calls were made"))}</p>'
    fig = go.Figure()
    for step, bins in data.latency.items():
        fig.add_trace(
            go.Bar(
                name=step,
                x=[b[0] + b[1] / 2 for b in bins],
                y=[b[2] for b in bins],
                width=[b[1] for b in bins],
                opacity=0.75,
            )
        )
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title_text="latency of the answered attempt (ms)")
    fig.update_yaxes(title_text="calls")
    stats = [{"step": step, **values} for step, values in data.latency_stats.items()]
    table = _table_html(
        stats,
        [
            ("step", "step"),
            ("calls", "calls"),
            ("min", "min ms"),
            ("p50", "p50 ms"),
            ("p95", "p95 ms"),
            ("p99", "p99 ms"),
            ("max", "max ms"),
        ],
    )
    return _figure_html(_layout(fig, "Latency distribution"), "chart-latency") + table


def _documents_section(data: ReportData) -> str:
    if "documents" in data.notes:
        return f'<p class="empty">{_esc(data.notes["documents"])}</p>'
    columns = [
        ("document", "document"),
        ("calls", "calls"),
        ("latency_s", "latency s (sum)"),
        ("tokens", "tokens"),
        ("cost_usd", "cost USD"),
        ("failed", "failed rows"),
    ]
    return (
        f"<h3>Slowest {TOP_DOCUMENTS}</h3>"
        + _table_html(data.slowest, columns, "docs-slow")
        + f"<h3>Most expensive {TOP_DOCUMENTS}</h3>"
        + _table_html(data.expensive, columns, "docs-cost")
    )


def _prompts_section(record: dict[str, Any]) -> str:
    rows = [
        {
            "step": p.get("step"),
            "prompt": f"{p.get('id')}#{p.get('version')}",
            "hash": p.get("hash"),
            "registered": "yes" if p.get("registered") else "no",
            "provider": p.get("provider"),
            "model": p.get("model"),
        }
        for p in record.get("prompts") or []
        if isinstance(p, dict)
    ]
    return _table_html(
        rows,
        [
            ("step", "step"),
            ("prompt", "prompt"),
            ("hash", "content hash (sha256)"),
            ("registered", "registered"),
            ("provider", "provider"),
            ("model", "model"),
        ],
        "prompts",
    )


def _exports_section(record: dict[str, Any]) -> str:
    exports = [e for e in record.get("exports") or [] if isinstance(e, dict)]
    keys: list[str] = []
    for e in exports:
        keys += [k for k in e if k not in keys]
    table = _table_html(exports, [(k, k.replace("_", " ")) for k in keys])
    pending = record.get("pending_exports") or []
    if pending:
        table += f'<p class="warn">Not finished: {_esc(", ".join(map(str, pending)))}</p>'
    return table


def _summary_section(record: dict[str, Any]) -> str:
    metrics = record.get("metrics") or {}
    chain = record.get("chain") or {}
    cards = [
        ("status", record.get("status")),
        ("chain", chain.get("name")),
        ("started (UTC)", str(record.get("started_at", ""))[:19].replace("T", " ")),
        ("duration", f"{float(record.get('duration_s') or 0):,.1f} s"),
        ("documents", metrics.get("documents")),
        ("chunks", metrics.get("chunks")),
        ("calls", metrics.get("calls")),
        (
            "tokens",
            int(metrics.get("prompt_tokens") or 0) + int(metrics.get("completion_tokens") or 0),
        ),
        ("cost USD", f"{float(metrics.get('cost_usd') or 0):.6f}"),
        ("failed rows", metrics.get("failures")),
    ]
    html_cards = "".join(
        f'<div class="card"><div class="k">{_esc(k)}</div><div class="v">{_fmt(k, v)}</div></div>'
        for k, v in cards
    )
    details = [
        ("profile", record.get("profile")),
        ("config hash", record.get("config_hash")),
        ("chain file", chain.get("path")),
        ("fmf_spark", record.get("fmf_version")),
        ("MLflow run", (record.get("mlflow") or {}).get("run_id")),
        ("time per stage (s)", record.get("timings_s")),
    ]
    rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_fmt(k, v)}</td></tr>" for k, v in details)
    error = record.get("error")
    error_html = ""
    if isinstance(error, dict):
        error_html = (
            f'<p class="warn">Failed: {_esc(error.get("code"))}: {_esc(error.get("message"))}</p>'
        )
    return f'<div class="cards">{html_cards}</div>{error_html}<table class="kv">{rows}</table>'


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;
color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;color:#b8c0cc;font-size:13px}
nav{padding:8px 32px;background:#e9ecf1;font-size:13px} nav a{margin-right:14px;color:#24508f}
main{padding:8px 32px 40px;max-width:1280px}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:14px 18px;margin:16px 0}
h2{font-size:18px;margin:0 0 10px} h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border-bottom:1px solid #e3e6eb;padding:4px 10px;text-align:left;vertical-align:top}
thead th{background:#f0f2f5} td.num{text-align:right;font-variant-numeric:tabular-nums}
table.kv th{font-weight:600;color:#4a5568}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin-bottom:10px}
.card{border:1px solid #dde1e7;border-radius:6px;padding:8px 12px;min-width:110px;background:#fafbfc}
.card .k{font-size:12px;color:#5a6473} .card .v{font-size:18px;font-weight:600}
.note,.empty{color:#5a6473;font-size:13px} .ok{color:#2f7d32} .warn{color:#b3261e;font-weight:600}
table.prompts td:nth-child(3){font-family:ui-monospace,monospace}
"""

_TITLES = {
    "summary": "Run",
    "steps": "Steps: calls, cached rows, tokens, cost, failures",
    "timeline": "Request timeline against the quota",
    "latency": "Latency",
    "documents": "Documents",
    "prompts": "Prompts used",
    "exports": "Exports",
}


def render_html(data: ReportData) -> str:
    """The report page (a complete HTML document with plotly.js inlined)."""
    from fmf_spark._deps import require

    offline = require("plotly.offline", "report")
    record = data.record
    bodies = {
        "summary": _summary_section(record),
        "steps": _steps_section(record),
        "timeline": _timeline_section(data),
        "latency": _latency_section(data),
        "documents": _documents_section(data),
        "prompts": _prompts_section(record),
        "exports": _exports_section(record),
    }
    run_id = _esc(record.get("run_id"))
    sections = "\n".join(
        f'<section id="{name}"><h2>{_TITLES[name]}</h2>\n{bodies[name]}\n</section>'
        for name in SECTIONS
    )
    nav = "".join(f'<a href="#{name}">{_TITLES[name].split(":")[0]}</a>' for name in SECTIONS)
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    meta = json.dumps({"run_id": record.get("run_id"), "generated_at": generated})
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>fmf run {run_id}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style>"
        f'<script type="application/json" id="fmf-report">{html.escape(meta)}</script>'
        f"<script>{offline.get_plotlyjs()}</script></head><body>"
        f"<header><h1>fmf run {run_id}</h1><p>chain {_esc((record.get('chain') or {}).get('name'))}"
        f" &middot; report generated {generated}</p></header>"
        f"<nav>{nav}</nav><main>{sections}</main></body></html>\n"
    )


def build_report(
    spark: SparkSession,
    run_dir: str,
    *,
    output: str | None = None,
    config: FmfConfig | None = None,
) -> str:
    """Write the report of the run in ``run_dir``; log it to the run's MLflow run.

    Args:
        spark: a session that can read the run's Delta tables.
        run_dir: ``<artefacts root>/<run_id>``.
        output: where to write the page (default ``<run_dir>/report.html``).
        config: for the MLflow tracking URI; without it, or with MLflow disabled, the
            page is not logged to MLflow.

    Returns:
        Where the page was written.

    Example:
        >>> build_report(spark, "artefacts/20260101T000000Z-abc123")  # doctest: +SKIP
        '/home/me/project/artefacts/20260101T000000Z-abc123/report.html'
    """
    data = gather(spark, run_dir)
    page = render_html(data)
    target = output or join_uri(run_dir, REPORT_FILE)
    write_text(target, page)
    log.info("report of run %s: %s", data.record.get("run_id"), target)
    mlflow_run = (data.record.get("mlflow") or {}).get("run_id")
    if config is not None and mlflow_run and config.observability.mlflow.enabled:
        _log_to_mlflow(config, str(mlflow_run), page)
    return target


def _log_to_mlflow(config: FmfConfig, run_id: str, page: str) -> None:
    try:
        from mlflow import MlflowClient

        from fmf_spark.observability.mlflow_run import tracking_uri

        client = MlflowClient(tracking_uri=tracking_uri(config))
        with tempfile.TemporaryDirectory(prefix="fmf-report-") as tmp:
            path = Path(tmp) / REPORT_FILE
            path.write_text(page, encoding="utf-8")
            client.log_artifact(run_id, str(path))
    except Exception as exc:  # the page is written; MLflow is lineage, best effort
        log.warning("report not logged to MLflow run %s: %s", run_id, redact(str(exc)))
