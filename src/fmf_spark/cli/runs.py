"""``fmf runs list|show|prune``: the run index and retention of an artefacts root."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmf_spark.cli.context import CliContext
    from fmf_spark.observability.runs import RunInfo


def artefacts_option() -> argparse.ArgumentParser:
    """``--artefacts ROOT``, shared by ``fmf runs`` and ``fmf report``."""
    artefacts = argparse.ArgumentParser(add_help=False)
    artefacts.add_argument(
        "--artefacts", metavar="ROOT", help="artefacts root (default: artefacts.root)"
    )
    return artefacts


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    runs = subparsers.add_parser(
        "runs",
        parents=[common],
        help="the runs under the artefacts root: list, show one, prune by retention",
    )
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="<list|show|prune>")
    runs_sub.required = True
    artefacts = artefacts_option()

    listing = runs_sub.add_parser(
        "list", parents=[common, artefacts], help="one line per run, newest first"
    )
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    listing.set_defaults(handler=_list)

    show = runs_sub.add_parser(
        "show", parents=[common, artefacts], help="one run: status, steps, prompts, exports"
    )
    show.add_argument("run_id")
    show.add_argument("--yaml", action="store_true", help="print run.yaml as it is")
    show.set_defaults(handler=_show)

    prune = runs_sub.add_parser(
        "prune",
        parents=[common, artefacts],
        help="delete the runs artefacts.retention does not keep",
        description="Apply artefacts.retention (keep_last, max_age_days, keep_failed). Runs in "
        "progress, runs an export still needs, the request cache and export targets are "
        "never deleted.",
    )
    prune.add_argument("--dry-run", action="store_true", help="print what would go; delete nothing")
    prune.set_defaults(handler=_prune)


def artefacts_root(args: argparse.Namespace, ctx: CliContext) -> str:
    """``--artefacts``, else the config's ``artefacts.root``."""
    return str(args.artefacts or ctx.config().artefacts.root)


def _row(run: RunInfo) -> dict[str, Any]:
    row = run.summary()
    row["started_at"] = (row["started_at"] or "-")[:19].replace("T", " ")
    duration = row["duration_s"]
    row["duration"] = "-" if duration is None else _duration(float(duration))
    cost = row["cost_usd"]
    row["cost_usd"] = "-" if cost is None else f"{float(cost):.6f}"
    return row


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    from fmf_spark.observability.runs import format_table, list_runs

    cfg = ctx.config()
    root = artefacts_root(args, ctx)
    runs = list_runs(root, stale_after_minutes=cfg.artefacts.retention.stale_after_minutes)
    shown = runs[: max(0, args.limit)]
    if args.json:
        for run in shown:
            ctx.print(json.dumps(run.summary()))
        return 0
    if not runs:
        ctx.print(f"no runs under {root}")
        return 0
    columns = [
        ("run_id", "run id"),
        ("chain", "chain"),
        ("status", "status"),
        ("started_at", "started (UTC)"),
        ("duration", "duration"),
        ("documents", "docs"),
        ("calls", "calls"),
        ("tokens", "tokens"),
        ("cost_usd", "cost USD"),
    ]
    for line in format_table([_row(r) for r in shown], columns):
        ctx.print(line)
    if len(runs) > len(shown):
        ctx.print(f"({len(runs) - len(shown)} older runs not shown; --limit)")
    return 0


def _show(args: argparse.Namespace, ctx: CliContext) -> int:
    from fmf_spark.observability.redaction import redact
    from fmf_spark.observability.run import RUN_FILE
    from fmf_spark.observability.runs import find_run, format_table
    from fmf_spark.storage import join_uri, read_text

    cfg = ctx.config()
    root = artefacts_root(args, ctx)
    run = find_run(
        root, args.run_id, stale_after_minutes=cfg.artefacts.retention.stale_after_minutes
    )
    if args.yaml:
        ctx.print(redact(read_text(join_uri(run.run_dir, RUN_FILE))).rstrip())
        return 0
    row = _row(run)
    record = run.record
    ctx.print(f"run {run.run_id}: {run.status}")
    for key, label in [
        ("chain", "chain"),
        ("started_at", "started (UTC)"),
        ("duration", "duration"),
        ("documents", "documents"),
        ("calls", "calls"),
        ("tokens", "tokens"),
        ("cost_usd", "cost USD"),
    ]:
        ctx.print(f"  {label + ':':15} {row.get(key) if row.get(key) is not None else '-'}")
    ctx.print(f"  {'folder:':15} {run.run_dir}")
    if run.heartbeat_at is not None:
        ctx.print(f"  {'heartbeat:':15} {run.heartbeat_at.isoformat(timespec='seconds')}")
    error = record.get("error")
    if isinstance(error, dict):
        ctx.print(f"  {'error:':15} {error.get('code')}: {error.get('message')}")
    steps = (run.metrics.get("steps") or {}) if isinstance(run.metrics, dict) else {}
    if steps:
        rows = [{"step": name, **values} for name, values in steps.items()]
        ctx.print("")
        for line in format_table(
            rows,
            [
                ("step", "step"),
                ("rows", "rows"),
                ("calls", "calls"),
                ("cached", "cached"),
                ("failed", "failed"),
                ("prompt_tokens", "tokens in"),
                ("completion_tokens", "tokens out"),
                ("cost_usd", "cost USD"),
                ("seconds", "time s"),
            ],
        ):
            ctx.print(line)
    prompts = [p for p in record.get("prompts") or [] if isinstance(p, dict)]
    if prompts:
        ctx.print("")
        for p in prompts:
            ctx.print(f"prompt {p.get('step')}: {p.get('id')}#{p.get('version')} {p.get('hash')}")
    for export in record.get("exports") or []:
        if isinstance(export, dict):
            counts = ", ".join(
                f"{k}={v}" for k, v in export.items() if k != "sink" and v is not None
            )
            ctx.print(f"export {export.get('sink')}: {counts}")
    for sink in run.pending_exports:
        ctx.print(f"export {sink}: NOT FINISHED (rerun `fmf export --sink {sink}`)")
    mlflow = record.get("mlflow") or {}
    if mlflow.get("run_id"):
        ctx.print(f"mlflow run: {mlflow['run_id']}")
    return 0


def _prune(args: argparse.Namespace, ctx: CliContext) -> int:
    from fmf_spark.observability.runs import prune

    cfg = ctx.config()
    root = artefacts_root(args, ctx)
    retention = cfg.artefacts.retention
    if retention.keep_last is None and retention.max_age_days is None:
        ctx.print(
            "no retention rule set (artefacts.retention.keep_last / max_age_days): nothing to prune"
        )
        return 0
    result = prune(root, retention, exporters=cfg, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for decision in result.decisions:
        action = verb if decision.delete else "keep"
        ctx.print(f"{action:12} {decision.run.run_id}  {decision.run.status:9}  {decision.reason}")
    n = len(result.deleted)
    if args.dry_run:
        ctx.print(f"dry run: {n} of {len(result.decisions)} runs would be deleted from {root}")
    else:
        ctx.print(
            f"deleted {n} of {len(result.decisions)} runs ({result.files_deleted} files) from {root}"
        )
    return 0
