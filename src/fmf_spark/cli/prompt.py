"""``fmf prompt register|list|show|test``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmf_spark.cli.context import CliContext
    from fmf_spark.prompts.registry import PromptRegistry


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    prompt = subparsers.add_parser("prompt", help="the versioned prompt registry")
    sub = prompt.add_subparsers(dest="prompt_command", metavar="<action>", required=True)
    reg = sub.add_parser(
        "register",
        parents=[common],
        help="register <file>#<version> (or every version of <file>); registered versions "
        "are immutable",
    )
    reg.add_argument("target", metavar="FILE#VERSION")
    reg.set_defaults(handler=_register)
    lst = sub.add_parser("list", parents=[common], help="prompts, versions, hashes")
    lst.set_defaults(handler=_list)
    show = sub.add_parser("show", parents=[common], help="show a version: <id>#<version>|@latest")
    show.add_argument("ref")
    show.set_defaults(handler=_show)
    test = sub.add_parser(
        "test", parents=[common], help="run a version's tests against the configured provider"
    )
    test.add_argument("ref")
    test.add_argument("--provider", help="a key of inference.providers (default: the default)")
    test.set_defaults(handler=_test)


def _registry(ctx: CliContext) -> PromptRegistry:
    from fmf_spark.prompts.registry import PromptRegistry

    return PromptRegistry(ctx.config().prompts.dir)


def _register(args: argparse.Namespace, ctx: CliContext) -> int:
    cfg = ctx.config()
    registry = _registry(ctx)
    results = registry.register(args.target)
    for result in results:
        ctx.print(f"{result.version.ref}  {result.version.content_hash[:12]}  {result.action}")
    if cfg.prompts.mlflow_sync and cfg.observability.mlflow.enabled:
        from fmf_spark.errors import MissingExtraError
        from fmf_spark.observability.mlflow_prompts import mirror_versions
        from fmf_spark.observability.mlflow_run import tracking_uri

        try:
            mirrored = mirror_versions(
                [r.version for r in results], tracking_uri(cfg), prefix=cfg.prompts.mlflow_prefix
            )
        except MissingExtraError as exc:
            ctx.print(f"not mirrored to MLflow: {exc.one_line()}")
        else:
            if mirrored:
                ctx.print(f"mirrored to MLflow's prompt registry: {', '.join(mirrored)}")
    return 0


def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    from fmf_spark.errors import FmfError

    registry = _registry(ctx)
    registered = registry.registered()
    rows = []
    for prompt_id, label in registry.all_versions():
        entry = registered.get(prompt_id, {}).get(label)
        try:
            version = registry.get(f"{prompt_id}#{label}")
            digest, state = version.content_hash[:12], "registered" if entry else "draft"
        except FmfError as exc:  # list everything, and say what is wrong with a version
            digest, state = "-", f"INVALID: {exc.message}"
        rows.append((f"{prompt_id}#{label}", digest, state))
    if not rows:
        ctx.print(f"no prompts in {registry.root}")
        return 0
    width = max(len(r[0]) for r in rows)
    for ref, digest, state in rows:
        ctx.print(f"{ref:<{width}}  {digest:<12}  {state}")
    return 0


def _show(args: argparse.Namespace, ctx: CliContext) -> int:
    import yaml

    registry = _registry(ctx)
    version = registry.get(args.ref)
    data = {
        "ref": version.ref,
        "hash": version.content_hash,
        "registered": registry.is_registered(version),
        "source": version.source,
        **version.spec.model_dump(exclude_none=True, exclude_defaults=True),
    }
    ctx.print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())
    return 0


def _test(args: argparse.Namespace, ctx: CliContext) -> int:
    from fmf_spark.cli.app import run_prompt_tests

    cfg = ctx.config()
    version = _registry(ctx).get(args.ref)
    results = run_prompt_tests(None, version, cfg, provider=args.provider)
    for result in results:
        mark = "PASS" if result.passed else "FAIL"
        ctx.print(f"{mark}  {version.ref}  {result.name}")
        for problem in result.problems:
            ctx.print(f"      {problem}")
    failed = sum(not r.passed for r in results)
    ctx.print(f"{len(results) - failed} passed, {failed} failed")
    return 0 if failed == 0 else 2
