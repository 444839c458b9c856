"""``fmf export --sink <name> --input artefacts/<run_id>/outputs``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmf_spark.cli.context import CliContext


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    export = subparsers.add_parser(
        "export",
        parents=[common],
        help="export a run's outputs table to a configured sink (idempotent, resumable)",
        description=(
            "Stream the outputs Delta table of a run into one sink with a checkpoint per "
            "sink; rerunning after a failure resumes where it stopped, and exporting the "
            "same run again adds no duplicates. Exit code 3 when the sink rejected some "
            "rows (they are listed in artefacts/<run_id>/export_errors/<sink>)."
        ),
    )
    export.add_argument("--sink", required=True, help="a key of `exporters` in fmf.yaml")
    export.add_argument(
        "--input",
        required=True,
        metavar="PATH",
        help="the run's outputs table (artefacts/<run_id>/outputs)",
    )
    export.add_argument("--run-id", help="default: the name of the folder holding the outputs")
    export.add_argument("--checkpoint-root", help="default: artefacts/<run_id>/_checkpoints/export")
    export.set_defaults(handler=_export)


def run_id_from_input(path: str) -> str:
    """``artefacts/<run_id>/outputs`` -> ``<run_id>``."""
    parts = [p for p in path.rstrip("/").split("/") if p]
    if len(parts) >= 2 and parts[-1] == "outputs":
        return parts[-2]
    return parts[-1] if parts else "run"


def _export(args: argparse.Namespace, ctx: CliContext) -> int:
    from fmf_spark.cli.app import export
    from fmf_spark.exporters.report import record_export

    cfg = ctx.config()
    run_id = args.run_id or run_id_from_input(args.input)
    result = export(
        None, cfg, args.sink, args.input, run_id=run_id, checkpoint_root=args.checkpoint_root
    )
    record_export(args.input, result, cfg)
    ctx.print(
        f"exported run {run_id} to {args.sink}: {result.rows_written} written "
        f"({result.rows_updated} updated), {result.rows_failed} failed, "
        f"{result.batches} batches"
        + (f"; rejected rows in {result.errors_path}" if result.errors_path else "")
    )
    return 0 if result.rows_failed == 0 else 3
