"""``fmf infer``: one request to a configured provider, the answer streamed to the terminal."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmf_spark.cli.context import CliContext
    from fmf_spark.inference.base import CompletionParams, Message


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    infer = subparsers.add_parser(
        "infer",
        parents=[common],
        help="send one prompt to a provider and stream the answer",
        description="Render a prompt (registry reference or plain template) with the text "
        "of --input and stream the model's answer to stdout; usage and cost go to stderr.",
    )
    source = infer.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", metavar="ID#VERSION", help="a prompt of the registry")
    source.add_argument(
        "--template",
        metavar="FILE",
        help="a plain template file: the user message, with {{ text }} where the input goes "
        "(appended at the end when absent)",
    )
    infer.add_argument("--input", metavar="FILE", required=True, help="text file ('-': stdin)")
    infer.add_argument(
        "--var", action="append", default=[], metavar="NAME=VALUE", help="another variable"
    )
    infer.add_argument("--provider", help="a key of inference.providers (default: the default)")
    infer.add_argument("--max-tokens", type=int, help="override the prompt's max_tokens")
    infer.add_argument("--temperature", type=float, help="override the prompt's temperature")
    infer.add_argument("--no-stream", action="store_true", help="print the answer at the end")
    infer.set_defaults(handler=_infer)


def _read_input(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    return Path(path).read_text(encoding="utf-8")


def _variables(args: argparse.Namespace, text: str) -> dict[str, str]:
    from fmf_spark.errors import ConfigError

    values = {"text": text, "path": args.input}
    for item in args.var:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--var {item!r} must be NAME=VALUE")
        values[name] = value
    return values


def _from_registry(
    args: argparse.Namespace, ctx: CliContext, values: dict[str, str]
) -> tuple[list[Message], CompletionParams]:
    from fmf_spark.inference.base import CompletionParams, Message
    from fmf_spark.prompts import PromptRegistry
    from fmf_spark.prompts.template import render

    version = PromptRegistry(ctx.config().prompts.dir).get(args.prompt)
    messages = [Message(m.role, render(m.content, values)) for m in version.messages]
    params = version.params
    return messages, CompletionParams(
        max_tokens=args.max_tokens or params.max_tokens or 1024,
        temperature=args.temperature if args.temperature is not None else params.temperature,
        stop=tuple(params.stop) if params.stop else None,
        response_schema=version.response_schema,
        schema_name=version.id.replace("-", "_")[:64],
    )


def _from_template(
    args: argparse.Namespace, values: dict[str, str]
) -> tuple[list[Message], CompletionParams]:
    from fmf_spark.inference.base import CompletionParams, Message
    from fmf_spark.prompts.template import render, variables_of

    template = Path(args.template).read_text(encoding="utf-8")
    if "text" in variables_of(template):
        content = render(template, values)
    else:
        content = render(template, values).rstrip() + "\n\n" + values["text"]
    params = CompletionParams(max_tokens=args.max_tokens or 1024, temperature=args.temperature)
    return [Message("user", content)], params


def _infer(args: argparse.Namespace, ctx: CliContext) -> int:
    from fmf_spark.cli.app import prepare
    from fmf_spark.errors import ConfigError
    from fmf_spark.inference.client import RetryingClient, RetryPolicy
    from fmf_spark.inference.cost import cost_usd
    from fmf_spark.inference.limiter import make_limiter

    cfg = ctx.config()
    name = args.provider or cfg.inference.default_provider
    if name is None:
        raise ConfigError("no provider: pass --provider or set inference.default_provider")
    values = _variables(args, _read_input(args.input))
    if args.prompt:
        messages, params = _from_registry(args, ctx, values)
    else:
        messages, params = _from_template(args, values)

    runtime = prepare(cfg, providers=[name]).providers[name]
    quota = runtime.quota()
    client = RetryingClient(
        runtime.adapter(pool=1),
        RetryPolicy.from_config(runtime.config.retry),
        make_limiter(quota),
        refund_unused_completion=bool(quota and quota.refund_unused_completion),
    )

    def show(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    try:
        answer = client.complete(messages, params, on_token=None if args.no_stream else show)
    finally:
        client.close()
    if args.no_stream:
        sys.stdout.write(answer.text)
    sys.stdout.write("\n")
    sys.stdout.flush()
    cost = cost_usd(answer.model, answer.prompt_tokens, answer.completion_tokens, cfg)
    cost_text = "no price" if cost is None else f"${cost:.6f}"
    print(
        f"[{name}: {answer.model}, {answer.prompt_tokens} prompt + {answer.completion_tokens} "
        f"completion tokens, {cost_text}, {answer.latency_ms} ms, {answer.attempts} call(s), "
        f"finish={answer.finish_reason}]",
        file=sys.stderr,
    )
    return 0
