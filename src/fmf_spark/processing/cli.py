"""``fmf process --connector NAME --select GLOB``: parse and chunk into Delta tables."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmf_spark.cli import CliContext


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    proc = subparsers.add_parser(
        "process",
        parents=[common],
        help="parse and chunk a connector's files into documents/chunks Delta tables",
    )
    proc.add_argument("--connector", required=True, help="a connector name under `connectors:`")
    proc.add_argument("--select", action="append", metavar="GLOB", help="glob(s) to include")
    proc.add_argument(
        "--run-dir", help="output folder (default: <artefacts.root>/process-<timestamp>)"
    )
    proc.set_defaults(handler=_process)


def _process(args: argparse.Namespace, ctx: CliContext) -> int:
    from datetime import datetime, timezone

    from fmf_spark.processing.pipeline import process
    from fmf_spark.spark import get_spark

    cfg = ctx.config()
    run_dir = args.run_dir or (
        f"{cfg.artefacts.root.rstrip('/')}/process-"
        f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
    )
    spark = get_spark(cfg)
    result = process(spark, cfg, args.connector, args.select, run_dir)
    for line in result.summary_lines():
        ctx.print(line)
    return 0
