"""``fmf run --chain <file> [--dry-run]``."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmf_spark.chains.runner import ChainResult
    from fmf_spark.cli.context import CliContext


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    run = subparsers.add_parser(
        "run",
        parents=[common],
        help="run a chain end to end: process, inference steps, exports, run.yaml, MLflow",
    )
    run.add_argument(
        "--chain",
        required=True,
        metavar="FILE",
        help="chain YAML, e.g. chains/sample.yaml (also looked up in chains.dir and base_dir)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="no model calls: print the plan, calls, estimated tokens and cost per step",
    )
    run.add_argument("--artefacts", metavar="DIR", help="artefacts root (default: artefacts.root)")
    run.add_argument("--quiet", action="store_true", help="no progress or stage lines")
    run.add_argument(
        "--progress",
        action="store_true",
        help="progress lines even when stderr is not a terminal (default: only on a terminal)",
    )
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace, ctx: CliContext) -> int:
    from fmf_spark.chains.model import find_chain, load_chain
    from fmf_spark.chains.plan import plan_chain
    from fmf_spark.prompts.registry import PromptRegistry

    cfg = ctx.config()
    chain = load_chain(find_chain(args.chain, cfg))
    registry = PromptRegistry(cfg.prompts.dir)
    # validated before Spark starts: a bad chain fails in a second, not after the session
    plan = plan_chain(chain, cfg, registry)
    ctx.print(f"chain {chain.name}: {len(plan.steps)} steps, validated")

    from fmf_spark.cli.app import dry_run, run_chain

    def emit(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    from fmf_spark.observability.logging import configured
    from fmf_spark.observability.progress import configure_progress, progress_mode

    log_format = (configured() or ("human", "INFO"))[0]
    mode = progress_mode(asked=args.progress, quiet=args.quiet, log_format=log_format)
    configure_progress(mode, cfg.observability.progress_interval_s)

    # no session yet: the run's connector, providers and sinks are prechecked first
    if args.dry_run:
        result = dry_run(None, chain, cfg, registry=registry, artefacts_root=args.artefacts)
    else:
        result = run_chain(
            None, chain, cfg, registry=registry, artefacts_root=args.artefacts, emit=emit
        )
    for line in summary_lines(result):
        ctx.print(line)
    return 0


def summary_lines(result: ChainResult) -> list[str]:
    """The summary table printed at the end of ``fmf run``."""
    header = (
        "step",
        "scope",
        "prompt",
        "rows",
        "calls",
        "cached",
        "failed",
        "tokens in",
        "tokens out",
        "cost USD",
        "time s",
    )
    rows = [
        (
            s.id,
            s.scope,
            s.prompt,
            str(s.rows),
            str(s.calls),
            str(s.cached),
            str(s.failed),
            str(s.prompt_tokens),
            str(s.completion_tokens),
            f"{s.cost_usd:.6f}",
            "-" if result.dry_run else f"{s.seconds:.1f}",
        )
        for s in result.steps
    ]
    totals = result.totals()
    rows.append(
        (
            "total",
            "",
            "",
            str(totals["rows"]),
            str(totals["calls"]),
            str(sum(s.cached for s in result.steps)),
            str(totals["failures"]),
            str(totals["prompt_tokens"]),
            str(totals["completion_tokens"]),
            f"{totals['cost_usd']:.6f}",
            "",
        )
    )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    numeric = set(range(3, len(header)))

    def fmt(row: tuple[str, ...]) -> str:
        cells = [
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    title = "DRY RUN (no model calls; tokens and cost are estimates)" if result.dry_run else "RUN"
    lines = [
        f"{title}: chain {result.chain}",
        f"documents: {result.documents} ({result.documents_failed} failed)   chunks: {result.chunks}",
        "",
        fmt(header),
        fmt(tuple("-" * w for w in widths)),
        *[fmt(r) for r in rows],
    ]
    if totals["failures_by_code"]:
        codes = ", ".join(f"{c}: {n}" for c, n in sorted(totals["failures_by_code"].items()))
        lines.append(f"failures by code: {codes}")
    if not result.dry_run:
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
        lines += [
            f"time per stage: {stages}",
            f"outputs: {result.outputs_path}",
            *[f"export {e.get('sink', '?')}: {_export_text(e)}" for e in result.exports],
            f"run record: {result.run_yaml}",
        ]
        if result.mlflow_run_id:
            lines.append(f"mlflow run: {result.mlflow_run_id}")
    return lines


def _export_text(record: dict[str, Any]) -> str:
    keys = ("rows_written", "rows_updated", "rows_failed", "target")
    parts = [f"{k}={record[k]}" for k in keys if k in record]
    return ", ".join(parts) or str(record)
