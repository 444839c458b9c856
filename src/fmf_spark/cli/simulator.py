"""``fmf simulator serve``: the rate-limited OpenAI/Azure/Bedrock endpoint, in the foreground."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from fmf_spark.simulator.settings import TOKEN_ACCOUNTINGS

if TYPE_CHECKING:
    from fmf_spark.cli.context import CliContext
    from fmf_spark.config.models import FmfConfig
    from fmf_spark.simulator import SimulatorSettings


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    sim = subparsers.add_parser("simulator", help="the local LLM endpoint simulator")
    sim_sub = sim.add_subparsers(dest="simulator_command", metavar="<action>", required=True)
    serve = sim_sub.add_parser(
        "serve",
        parents=[common],
        help="serve OpenAI, Azure OpenAI and Bedrock routes with real quota rules",
        description="Defaults come from the server settings of the config's simulator "
        "provider (the default provider when it is one, else the first of type simulator); "
        "flags win.",
    )
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--rpm", type=int, help="requests per minute (0: unlimited)")
    serve.add_argument("--tpm", type=int, help="tokens per minute (0: unlimited)")
    serve.add_argument("--window-s", type=float, help="quota window in seconds (1 or 10)")
    serve.add_argument("--latency-ms", type=float, help="mean latency")
    serve.add_argument(
        "--token-accounting",
        choices=TOKEN_ACCOUNTINGS,
        help="what a request is charged against the TPM quota (default: prompt_and_max_tokens, "
        "as Azure OpenAI)",
    )
    serve.add_argument("--error-5xx-ratio", type=float, default=0.0)
    serve.add_argument("--timeout-ratio", type=float, default=0.0)
    serve.add_argument("--content-filter-ratio", type=float, default=0.0)
    serve.add_argument("--malformed-ratio", type=float, default=0.0)
    serve.add_argument(
        "--daily-requests", type=int, help="after this many, a non-retryable quota error"
    )
    serve.add_argument(
        "--api-key-env", metavar="VAR", help="require the key held in this environment variable"
    )
    serve.add_argument("--seed", type=int, default=0)
    serve.set_defaults(handler=_serve)


def _configured_settings(config: FmfConfig) -> SimulatorSettings:
    """The settings of the config's simulator provider, else the defaults."""
    from fmf_spark.cli.app import simulator_settings
    from fmf_spark.inference.simulator import SimulatorProviderConfig, SimulatorServerConfig

    providers = config.inference.providers
    default = providers.get(config.inference.default_provider or "")
    candidates = [default, *providers.values()]
    for cfg in candidates:
        if isinstance(cfg, SimulatorProviderConfig):
            return simulator_settings(cfg.server)
    return simulator_settings(SimulatorServerConfig())


def _serve(args: argparse.Namespace, ctx: CliContext) -> int:
    import threading

    from fmf_spark.errors import ConfigError
    from fmf_spark.simulator import SimulatorServer

    settings = _configured_settings(ctx.config())
    for flag, attr in (
        ("host", "host"),
        ("port", "port"),
        ("window_s", "window_s"),
        ("latency_ms", "latency_ms"),
        ("token_accounting", "token_accounting"),
    ):
        if getattr(args, flag) is not None:
            setattr(settings, attr, getattr(args, flag))
    if args.rpm is not None:
        settings.requests_per_minute = args.rpm or None
    if args.tpm is not None:
        settings.tokens_per_minute = args.tpm or None
    settings.error_5xx_ratio = args.error_5xx_ratio
    settings.timeout_ratio = args.timeout_ratio
    settings.content_filter_ratio = args.content_filter_ratio
    settings.malformed_ratio = args.malformed_ratio
    settings.daily_request_limit = args.daily_requests
    settings.seed = args.seed
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            raise ConfigError(f"environment variable {args.api_key_env} is not set")
        settings.api_key = key
    server = SimulatorServer(settings)
    url = server.start()
    ctx.print(f"simulator listening on {url}")
    ctx.print(f"  OpenAI:  base_url={url}/v1")
    ctx.print(f"  Azure:   endpoint={url}  (/openai/deployments/<name>/chat/completions)")
    ctx.print(f"  Bedrock: endpoint_url={url}  (/model/<id>/converse)")
    ctx.print(f"  stats:   {url}/stats")
    rpm = settings.requests_per_minute or "unlimited"
    tpm = settings.tokens_per_minute or "unlimited"
    ctx.print(
        f"  quota:   {rpm} RPM, {tpm} TPM over {settings.window_s:g} s windows, "
        f"tokens charged as {settings.token_accounting}"
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        stats = server.stats()
        ctx.print(
            f"stopped: {stats['requests']} requests, {stats['accepted']} accepted, "
            f"{stats['rejected_429']} rejected (429)"
        )
    finally:
        server.stop()
    return 0
