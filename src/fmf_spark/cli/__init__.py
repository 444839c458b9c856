"""The ``fmf`` command, and the composition root every entry point goes through.

The CLI is the one place that wires the layers together (:mod:`fmf_spark.cli.app`):
it builds and prechecks the connectors, providers and sinks a command needs before
any Spark job, and starts the local simulator when a provider says ``type: simulator``.
The notebook and the job entry points call the same functions. Library layers never
import this package.

Global options (``--config``, ``--profile``, ``--set``, ``--verbose``, ``--debug``) go
before or after the command. Each command group is one module here (listed in :data:`COMMAND_MODULES`,
each with a ``register(subparsers, common)`` function), so ``fmf --help`` imports no
Spark and no cloud SDK.

Errors: an :class:`~fmf_spark.errors.FmfError` prints one line, ``code: message
(hint: ...)``, secrets masked, and exits 2 (1 for other failures); ``--debug`` adds
the traceback. That holds for an error raised in a Spark Python worker too: Spark
wraps it in a Java exception, and :func:`~fmf_spark.errors.recover_error` finds it in
the wrapper's text.

Output: a Spark session the command builds starts quietly (no Ivy log, Spark's own log
in a file); ``--verbose`` (and ``--debug``) bring Spark's console log back, through
``FMF_VERBOSE`` for the duration of the command (see :mod:`fmf_spark.spark`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import traceback
from collections.abc import Sequence

from fmf_spark import __version__
from fmf_spark.cli.context import CliContext, Handler, common_options
from fmf_spark.errors import recover_error

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
    "fmf_spark.cli.runs",
    "fmf_spark.cli.report",
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

    configure_logging(level="DEBUG" if args.debug else None)
    previous = os.environ.get("FMF_VERBOSE")
    if args.verbose or args.debug:
        os.environ["FMF_VERBOSE"] = "1"
    try:
        code = handler(args, CliContext(args))
        return int(code or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            print(redact(traceback.format_exc()), file=sys.stderr)
        error = recover_error(exc)  # the FmfError itself, or one a Spark worker raised
        if error is not None:
            print(f"error: {redact(error.one_line())}", file=sys.stderr)
            return 2
        if not args.debug:  # an unexpected bug: still one line
            print(
                f"error: {redact(_summary(exc))} (rerun with --debug for the traceback)",
                file=sys.stderr,
            )
        return 1
    finally:
        if previous is None:
            os.environ.pop("FMF_VERBOSE", None)
        else:
            os.environ["FMF_VERBOSE"] = previous


#: the last line of a Python traceback: ``package.ErrorType: message``
_PYTHON_ERROR = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception)): (.+)$", re.MULTILINE)


def _summary(exc: BaseException) -> str:
    """One line for an exception that is not an FmfError.

    Spark's wrappers (``Py4JJavaError``, ``PythonException``) carry a whole stack trace
    as their text; the line worth showing is the Python error a worker raised, if any,
    else the first line.
    """
    text = str(exc)
    if "Traceback (most recent call last)" in text:
        found = _PYTHON_ERROR.findall(text)
        if found:
            name, message = found[-1]
            return f"{name}: {message.strip()}"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first[:500]}"


__all__ = ["COMMAND_MODULES", "CliContext", "build_parser", "main"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
