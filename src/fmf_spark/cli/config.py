"""``fmf config show|validate`` and ``fmf keys test``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmf_spark.cli.context import CliContext


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    config = subparsers.add_parser("config", help="show or validate the merged configuration")
    config_sub = config.add_subparsers(dest="config_command", metavar="<action>", required=True)
    show = config_sub.add_parser(
        "show", parents=[common], help="print the merged config (secrets are references only)"
    )
    show.add_argument("--format", choices=["yaml", "json"], default="yaml")
    show.set_defaults(handler=_show)
    validate = config_sub.add_parser(
        "validate", parents=[common], help="validate the config; exit 2 if invalid"
    )
    validate.set_defaults(handler=_validate)

    keys = subparsers.add_parser("keys", help="check that secrets resolve")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="<action>", required=True)
    about = "resolve every logical secret name; print name, provider, OK or why not (never a value)"
    test = keys_sub.add_parser("test", parents=[common], help=about, description=about)
    test.set_defaults(handler=_keys_test)


def dump_config(cfg: Any, fmt: str = "yaml") -> str:
    """The merged config as YAML or JSON; secrets appear only as their references."""
    import json

    import yaml

    data = cfg.model_dump(mode="json", by_alias=True, exclude={"profiles"})
    if fmt == "json":
        return json.dumps(data, indent=2)
    return str(yaml.safe_dump(data, sort_keys=False))


def _show(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.print(dump_config(ctx.config(), args.format).rstrip())
    return 0


def _validate(args: argparse.Namespace, ctx: CliContext) -> int:
    cfg = ctx.config()
    ctx.print(
        f"config OK (profile: {cfg.profile or 'none'}; {len(cfg.connectors)} connectors, "
        f"{len(cfg.inference.providers)} providers, {len(cfg.exporters)} exporters)"
    )
    return 0


def _keys_test(args: argparse.Namespace, ctx: CliContext) -> int:
    from fmf_spark.config.secrets import SecretResolver

    cfg = ctx.config()
    checks = SecretResolver(cfg.secrets).check_all(cfg)
    if not checks:
        ctx.print("no secrets declared or used")
        return 0
    width = max(len(c.name) for c in checks)
    pwidth = max(len(c.provider) for c in checks)
    for c in checks:
        status = "OK" if c.ok else f"FAILED  {c.reason}"
        ctx.print(f"{c.name:<{width}}  {c.provider:<{pwidth}}  {status}")
    return 0 if all(c.ok for c in checks) else 2
