"""The ``fmf`` command.

Global options (``--config``, ``--profile``, ``--set``, ``--debug``) go before or after
the command. Each layer adds its own commands from its ``cli.py`` module (listed in
:data:`COMMAND_MODULES`, each with a ``register(subparsers, common)`` function), so
this file stays small and ``fmf --help`` imports no Spark and no cloud SDK.

Errors: an :class:`~fmf_spark.errors.FmfError` prints one line, ``code: message
(hint: ...)``, secrets masked, and exits 2 (1 for other failures); ``--debug`` adds
the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fmf_spark import __version__
from fmf_spark.errors import FmfError

if TYPE_CHECKING:
    from fmf_spark.config.models import FmfConfig

#: modules whose ``register(subparsers, common)`` adds commands, in help order
COMMAND_MODULES: tuple[str, ...] = (
    "fmf_spark.config.cli",
    "fmf_spark.connectors.cli",
    "fmf_spark.processing.cli",
    "fmf_spark.exporters.cli",
    "fmf_spark.prompts.cli",
    "fmf_spark.chains.cli",
    "fmf_spark.inference.cli",
    "fmf_spark.simulator.cli",
    "fmf_spark.observability.cli",
)

Handler = Callable[[argparse.Namespace, "CliContext"], int | None]


@dataclass
class CliContext:
    """What a command handler gets besides its arguments: the config, loaded once."""

    args: argparse.Namespace
    _config: FmfConfig | None = field(default=None, init=False, repr=False)

    def config(self) -> FmfConfig:
        if self._config is None:
            from fmf_spark.config.loader import load_config

            self._config = load_config(
                getattr(self.args, "config", None),
                profile=getattr(self.args, "profile", None),
                overrides=getattr(self.args, "set", None) or (),
            )
            from fmf_spark.observability.logging import configure_logging

            # the config's log format and level now apply (the environment wins over it)
            debug = getattr(self.args, "debug", False)
            configure_logging(level="DEBUG" if debug else None, config=self._config.observability)
        return self._config

    def print(self, *parts: Any) -> None:
        from fmf_spark.observability.redaction import redact

        print(redact(" ".join(str(p) for p in parts)))


def _common_options(defaults: bool) -> argparse.ArgumentParser:
    # The same options are accepted before and after the command; after it, SUPPRESS
    # keeps a value given before from being reset to the default.
    default: Any = None if defaults else argparse.SUPPRESS
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help="config file (default: $FMF_CONFIG or conf/fmf.yaml)",
    )
    common.add_argument(
        "--profile",
        default=default,
        help="profile: local, databricks, emr, aws_batch (default: $FMF_PROFILE)",
    )
    common.add_argument(
        "--set",
        action="append",
        metavar="A.B=V",
        default=[] if defaults else argparse.SUPPRESS,
        help="override one config value; repeatable; wins over everything",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=False if defaults else argparse.SUPPRESS,
        help="print tracebacks",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fmf",
        description="fmf_spark: documents to structured LLM outputs, as Spark batch jobs.",
        parents=[_common_options(defaults=True)],
    )
    parser.add_argument("--version", action="version", version=f"fmf_spark {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    common = _common_options(defaults=False)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
