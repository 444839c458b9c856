"""Fixtures of the inference tests: a simulator per test and configs pointing at it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from fmf_spark.config.models import FmfConfig
from fmf_spark.config.secrets import SecretResolver
from fmf_spark.simulator import SimulatorServer, SimulatorSettings

AZURE_KEY = "sim-azure-key-0123456789"
DATABRICKS_TOKEN = "dapi-sim-token-0123456789"
PROVIDERS = ("openai", "azure", "bedrock", "databricks")
PRICES = {
    "gpt-4o-mini": {"input_per_1k": 0.15, "output_per_1k": 0.6},
    "anthropic.claude-3-haiku": {"input_per_1k": 0.25, "output_per_1k": 1.25},
}


def make_config(
    url: str, *, provider_overrides: dict[str, Any] | None = None, **inference: Any
) -> FmfConfig:
    """A config with four providers on the simulator at ``url``: openai, azure, bedrock,
    databricks (Model Serving's OpenAI-compatible route, with a token of its own)."""
    common = {"retry": {"base_delay_s": 0.01, "max_delay_s": 0.05}, "timeout_s": 5}
    common.update(provider_overrides or {})
    data = {
        "secrets": {
            "providers": {"env": {"type": "env", "dotenv": None}},
            "names": {
                "azure_key": {"provider": "env", "key": "AZURE_KEY"},
                "databricks_token": {"provider": "env", "key": "DATABRICKS_SP_TOKEN"},
            },
        },
        "inference": {
            "providers": {
                "openai": {
                    "type": "openai",
                    "base_url": url + "/v1",
                    "model": "gpt-4o-mini",
                    **common,
                },
                "azure": {
                    "type": "azure_openai",
                    "endpoint": url,
                    "deployment": "dep-mini",
                    "model": "gpt-4o-mini",
                    "api_key": {"secret": "azure_key"},
                    **common,
                },
                "bedrock": {
                    "type": "bedrock",
                    "model_id": "anthropic.claude-3-haiku",
                    "endpoint_url": url,
                    "region": "us-east-1",
                    **common,
                },
                "databricks": {
                    "type": "databricks",
                    "endpoint": "dbx-mini",
                    "host": url,
                    "token": {"secret": "databricks_token"},  # pragma: allowlist secret
                    "model": "gpt-4o-mini",
                    **common,
                },
            },
            "prices": PRICES,
            **inference,
        },
    }
    return FmfConfig.model_validate(data)


ROOT = Path(__file__).resolve().parents[2]


def run_job(module: str, *args: str) -> dict[str, Any]:
    """Run a test job (``python -m tests.inference.<job>``: its own SparkSession, which a
    test may not build in the shared process); return the JSON of its ``RESULT`` line."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=420,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return result


def make_resolver(cfg: FmfConfig) -> SecretResolver:
    return SecretResolver(
        cfg.secrets, environ={"AZURE_KEY": AZURE_KEY, "DATABRICKS_SP_TOKEN": DATABRICKS_TOKEN}
    )


@pytest.fixture(scope="session")
def _sim_server() -> Iterator[SimulatorServer]:
    settings = SimulatorSettings(
        latency_ms=0,
        requests_per_minute=None,
        tokens_per_minute=None,
        hang_s=1.0,
    )
    server = SimulatorServer(settings)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sim(_sim_server: SimulatorServer) -> SimulatorServer:
    """The simulator, reset: no latency, no quota, no faults, zero counters."""
    _sim_server.set_faults([])
    _sim_server.reset()
    return _sim_server


def progress_row(rid: str, status: str = "ok") -> dict[str, Any]:
    """A task's result row (TIMED_INFERENCE_RESULT_SCHEMA), as progress files hold it."""
    now = datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)
    return {
        "request_id": rid,
        "output_text": f"answer {rid}" if status == "ok" else None,
        "output_json": None,
        "prompt_tokens": 10,
        "completion_tokens": 3,
        "cost_usd": 0.001,
        "latency_ms": 12,
        "attempts": 1,
        "status": status,
        "error": None if status == "ok" else {"code": "x", "message": "m", "retryable": True},
        "started_at": now,
        "sent_at": now,
        "ended_at": now,
        "rate_limited": 0,
        "rate_limited_at": [],
    }
