"""What every command handler shares: the parsed options and the config, loaded once."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmf_spark.config.models import FmfConfig


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
        return self._config

    def print(self, *parts: Any) -> None:
        from fmf_spark.observability.redaction import redact

        print(redact(" ".join(str(p) for p in parts)))


Handler = Callable[[argparse.Namespace, CliContext], int | None]


def common_options(defaults: bool) -> argparse.ArgumentParser:
    """The options accepted before and after every command.

    After the command, ``SUPPRESS`` keeps a value given before it from being reset to
    the default.
    """
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
        help="profile: local, databricks, emr, aws_batch, aws_lambda (default: $FMF_PROFILE)",
    )
    common.add_argument(
        "--set",
        action="append",
        metavar="A.B=V",
        default=[] if defaults else argparse.SUPPRESS,
        help="override one config value; repeatable; wins over everything",
    )
    common.add_argument(
        "--verbose",
        action="store_true",
        default=False if defaults else argparse.SUPPRESS,
        help="show Spark's own log (WARN and up) and its jar resolution on the console",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=False if defaults else argparse.SUPPRESS,
        help="print tracebacks and debug logs; implies --verbose",
    )
    return common
