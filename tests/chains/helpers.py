"""Builders shared by the chain tests: a prompt folder, a config, a chain dict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fmf_spark.chains.model import Chain
from fmf_spark.config import load_config
from fmf_spark.config.models import FmfConfig
from fmf_spark.prompts.registry import PromptRegistry

ROOT = Path(__file__).resolve().parents[2]

PROMPTS: dict[str, dict[str, Any]] = {
    "extract": {
        "variables": ["text", "path"],
        "messages": [
            {"role": "system", "content": "Extract facts."},
            {"role": "user", "content": "From {{ path }}:\n{{ text }}"},
        ],
        "params": {"temperature": 0.0, "max_tokens": 40},
        "response_schema": {
            "type": "object",
            "properties": {
                "summary": {"type": "string"},
                "entity": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "kind": {"type": "string"}},
                },
            },
            "required": ["summary"],
        },
    },
    "combine": {
        "variables": ["items"],
        "messages": [{"role": "user", "content": "Combine:\n{{ items }}"}],
        "params": {"max_tokens": 30},
    },
}


def make_registry(folder: Path) -> PromptRegistry:
    folder.mkdir(parents=True, exist_ok=True)
    for prompt_id, version in PROMPTS.items():
        data = {"id": prompt_id, "versions": {"1": version}}
        (folder / f"{prompt_id}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return PromptRegistry(folder)


def make_config(*overrides: str) -> FmfConfig:
    return load_config(
        ROOT / "conf" / "fmf.yaml",
        profile="local",
        environ={},
        overrides=["observability.mlflow.enabled=false", *overrides],
    )


def chain_dict(steps: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {
        "name": "t",
        "inputs": {"connector": "samples", "select": "**/*.md"},
        "steps": steps,
        **more,
    }


def make_chain(steps: list[dict[str, Any]], **more: Any) -> Chain:
    return Chain.model_validate(chain_dict(steps, **more))


EXTRACT = {
    "id": "extract",
    "prompt": "extract#1",
    "scope": "chunk",
    "inputs": {"text": "${chunk.text}", "path": "${doc.path}"},
}


def first_step(chain: Path) -> bytes:
    """A shipped chain cut to its first step (``summarize``): its inputs, processing and
    outputs unchanged.

    For tests of where and how a chain runs (a platform's launch, storage, credentials, a
    quiet start), not of the chain: one model step instead of three takes minutes off
    each run on a 2-core machine. The whole chains run in tests/chains (e2e, CLI,
    Connect) and in ``make test``'s main command (scripts/check_main.sh).
    """
    data = yaml.safe_load(chain.read_text(encoding="utf-8"))
    data["steps"] = data["steps"][:1]
    return yaml.safe_dump(data, sort_keys=False).encode("utf-8")
