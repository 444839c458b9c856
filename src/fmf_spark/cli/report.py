"""``fmf report <run_id>``: one self-contained HTML page of a run (also logged to MLflow)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from fmf_spark.cli.runs import artefacts_option, artefacts_root

if TYPE_CHECKING:
    from fmf_spark.cli.context import CliContext


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    report = subparsers.add_parser(
        "report",
        parents=[common, artefacts_option()],
        help="write a run's report: one self-contained HTML page (also logged to MLflow)",
    )
    report.add_argument("run_id")
    report.add_argument(
        "--output", metavar="FILE", help="where to write it (default: <run folder>/report.html)"
    )
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace, ctx: CliContext) -> int:
    from fmf_spark.observability.report import build_report
    from fmf_spark.observability.runs import find_run
    from fmf_spark.spark import get_spark
    from fmf_spark.storage import join_uri

    cfg = ctx.config()
    root = artefacts_root(args, ctx)
    run = find_run(root, args.run_id)  # a clear error before Spark starts
    spark = get_spark(cfg)
    target = build_report(spark, join_uri(root, run.run_id), output=args.output, config=cfg)
    ctx.print(f"report of run {run.run_id}: {target}")
    return 0
