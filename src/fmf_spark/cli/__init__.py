"""The ``fmf`` command, and the composition root every entry point goes through.

The CLI is the one place that wires the layers together (:mod:`fmf_spark.cli.app`):
it builds and prechecks the connectors, providers and sinks a command needs before
any Spark job, and starts the local simulator when a provider says ``type: simulator``.
The notebook and the job entry points call the same functions. Library layers never
import this package.

Global options (``--config``, ``--profile``, ``--set``, ``--debug``) go before or after
the command. Each command group is one module here (listed in :data:`COMMAND_MODULES`,
each with a ``register(subparsers, common)`` function), so ``fmf --help`` imports no
Spark and no cloud SDK.

Errors: an :class:`~fmf_spark.errors.FmfError` prints one line, ``code: message
(hint: ...)``, secrets masked, and exits 2 (1 for other failures); ``--debug`` adds
the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from fmf_spark import __version__
from fmf_spark.cli.context import CliContext, Handler, common_options
from fmf_spark.errors import FmfError

#: modules whose ``register(subparsers, common)`` adds commands, in help order
COMMAND_MODULES: tuple[str, ...] = (
    "fmf_spark.cli.config",
    "fmf_spark.cli.connect",
    "fmf_spark.cli.process",
    "fmf_spark.cli.export",
    "fmf_spark.cli.prompt",
    "fmf_spark.cli.run",
    "fmf_spark.cli.infer",
    "fmf_spark.cli.simulator",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fmf",
        description="fmf_spark: documents to structured LLM outputs, as Spark batch jobs.",
        parents=[common_options(defaults=True)],
    )
    parser.add_argument("--version", action="version", version=f"fmf_spark {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    common = common_options(defaults=False)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0 if args.command is None else 2
    from fmf_spark.observability.logging import configure_logging
    from fmf_spark.observability.redaction import redact

    configure_logging(level="DEBUG" if args.debug else "INFO")
    try:
        code = handler(args, CliContext(args))
        return int(code or 0)
    except FmfError as exc:
        if args.debug:
            print(redact(traceback.format_exc()), file=sys.stderr)
        print(f"error: {redact(exc.one_line())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected bug: still one line unless --debug
        if args.debug:
            print(redact(traceback.format_exc()), file=sys.stderr)
        else:
            print(
                f"error: {type(exc).__name__}: {redact(str(exc))} (rerun with --debug for the traceback)",
                file=sys.stderr,
            )
        return 1


__all__ = ["COMMAND_MODULES", "CliContext", "build_parser", "main"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
