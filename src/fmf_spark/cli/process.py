"""``fmf process --connector NAME --select GLOB``: parse and chunk into Delta tables."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmf_spark.cli.context import CliContext


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

    from fmf_spark.cli.app import process_files
    from fmf_spark.storage import join_uri

    cfg = ctx.config()
    run_dir = args.run_dir or join_uri(
        cfg.artefacts.root, f"process-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
    )
    result = process_files(None, cfg, args.connector, args.select, run_dir)
    for line in result.summary_lines():
        ctx.print(line)
    return 0
