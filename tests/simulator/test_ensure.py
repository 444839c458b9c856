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


def test_the_server_settings_choose_the_token_accounting() -> None:
    server = {"latency_ms": 0, "tokens_per_minute": 600, "token_accounting": "max_tokens"}
    cfg = FmfConfig.model_validate(
        {
            "inference": {
                "providers": {
                    "gateway": {"type": "simulator", "model": "sim-gateway", "server": server}
                }
            }
        }
    )
    url = start_simulators(cfg, ["gateway"]).inference.providers["gateway"].base_url  # type: ignore[attr-defined]
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "a long " * 50}],
        "max_tokens": 7,
    }
    answer = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10)
    # only max_tokens was charged: the 100-token prompt is free (600 TPM over 10 s: 100)
    assert answer.headers["x-ratelimit-remaining-tokens"] == str(100 - 7)
