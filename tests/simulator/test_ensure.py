"""The composition root starts the simulator for ``type: simulator`` providers."""

from __future__ import annotations

import httpx

from fmf_spark.cli.app import start_simulators
from fmf_spark.config.models import FmfConfig


def config(base_url: str | None = None) -> FmfConfig:
    provider = {"type": "simulator", "model": "sim-gpt-4o-mini", "server": {"latency_ms": 0}}
    if base_url:
        provider["base_url"] = base_url
    return FmfConfig.model_validate(
        {"inference": {"default_provider": "simulator", "providers": {"simulator": provider}}}
    )


def test_a_simulator_provider_gets_one_simulator_per_process() -> None:
    first = start_simulators(config(), ["simulator"])
    second = start_simulators(config(), ["simulator"])
    url = first.inference.providers["simulator"].base_url  # type: ignore[attr-defined]
    assert url is not None and url.startswith("http://127.0.0.1:")
    assert second.inference.providers["simulator"].base_url == url  # type: ignore[attr-defined]
    assert httpx.get(url + "/health").json() == {"status": "ok"}


def test_nothing_starts_for_a_running_simulator_or_another_provider() -> None:
    fixed = config("http://example.invalid")
    assert start_simulators(fixed, ["simulator"]) is fixed
    unused = config()
    assert start_simulators(unused, []) is unused
