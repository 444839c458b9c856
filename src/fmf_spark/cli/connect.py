"""``fmf connect ls <name> --select GLOB``: list what a connector sees."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmf_spark.cli.context import CliContext


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    connect = subparsers.add_parser("connect", help="inspect data sources")
    sub = connect.add_subparsers(dest="connect_command", metavar="<action>", required=True)
    ls = sub.add_parser(
        "ls", parents=[common], help="list a connector's files: path, size, modified"
    )
    ls.add_argument("name", help="a connector name under `connectors:`")
    ls.add_argument(
        "--select", action="append", metavar="GLOB", help="glob(s) narrowing the listing"
    )
    ls.add_argument("--limit", type=int, default=0, help="stop after N files (0: all)")
    ls.set_defaults(handler=_ls)


def _human(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(size)


def _ls(args: argparse.Namespace, ctx: CliContext) -> int:
    from fmf_spark.cli.app import prepare

    connector = prepare(ctx.config(), connectors=[args.name]).connectors[args.name]
    count = total = 0
    for info in connector.list(args.select):
        modified = info.modified.strftime("%Y-%m-%d %H:%M:%S") if info.modified else "-"
        ctx.print(f"{info.ref.path}\t{info.size if info.size is not None else '?'}\t{modified}")
        count += 1
        total += info.size or 0
        if args.limit and count >= args.limit:
            break
    ctx.print(f"{count} files, {_human(total)}")
    return 0
