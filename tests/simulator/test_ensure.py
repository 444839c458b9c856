"""``ensure_simulator``: the local profile's in-process endpoint."""

from __future__ import annotations

import httpx

from fmf_spark.config.models import FmfConfig
from fmf_spark.simulator import ensure_simulator


def config(autostart: bool, base_url: str | None = None) -> FmfConfig:
    provider = {"type": "openai", "model": "sim-gpt-4o-mini"}
    if base_url:
        provider["base_url"] = base_url
    return FmfConfig.model_validate(
        {
            "inference": {
                "default_provider": "simulator",
                "providers": {"simulator": provider},
                "simulator": {"autostart": autostart, "latency_ms": 0},
            }
        }
    )


def test_autostart_fills_the_base_url_once_per_process() -> None:
    first = ensure_simulator(config(True))
    second = ensure_simulator(config(True))
    url = first.inference.providers["simulator"].base_url  # type: ignore[union-attr]
    assert url is not None and url.endswith("/v1")
    assert second.inference.providers["simulator"].base_url == url  # type: ignore[union-attr]
    assert httpx.get(url.removesuffix("/v1") + "/health").json() == {"status": "ok"}


def test_no_op_when_autostart_is_off_or_base_url_is_set() -> None:
    off = config(False)
    assert ensure_simulator(off) is off
    fixed = config(True, "http://example.invalid/v1")
    assert ensure_simulator(fixed) is fixed
