"""The ``simulator`` provider type: the local OpenAI-compatible endpoint with real quota rules.

A provider with ``type: simulator`` calls the simulator (:mod:`fmf_spark.simulator`)
through the OpenAI chat completions route. Its ``server`` settings say how the
simulator behaves (quota, window, latency). This module never starts a server: the
composition root (:func:`fmf_spark.cli.app.prepare`) starts one in-process, on
loopback, for a provider without ``base_url``, and hands the built provider its
address; with ``base_url`` set, the provider calls a simulator already running
(``fmf simulator serve``).

Example (``conf/fmf.yaml``)::

    inference:
      providers:
        simulator:
          type: simulator
          model: sim-gpt-4o-mini
          rate_limit: {requests_per_minute: 600, tokens_per_minute: 200000}
          server: {requests_per_minute: 600, tokens_per_minute: 200000, latency_ms: 20}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, cast

from pydantic import Field

from fmf_spark.config.base import SecretRef, StrictModel
from fmf_spark.config.inference import ProviderConfig
from fmf_spark.errors import ConfigError
from fmf_spark.inference.azure_openai import OpenAIChatAdapter, openai_adapter
from fmf_spark.inference.providers import register_provider

if TYPE_CHECKING:
    from fmf_spark.inference.providers import ProviderRuntime

PROVIDER_TYPE = "simulator"


class SimulatorServerConfig(StrictModel):
    """How the in-process simulator behaves (its enforced quota, latency, address)."""

    host: str = Field(default="127.0.0.1", description="Interface to bind; loopback by default.")
    port: int = Field(default=0, ge=0, le=65535, description="0: pick a free port.")
    requests_per_minute: int = Field(default=600, gt=0, description="Quota it enforces.")
    tokens_per_minute: int = Field(default=200_000, gt=0, description="Quota it enforces.")
    latency_ms: float = Field(default=20.0, ge=0, description="Mean latency of an answer.")
    window_s: float = Field(default=10.0, gt=0, description="Quota enforcement window.")


class SimulatorProviderConfig(ProviderConfig):
    """The local simulator as a provider (the ``local`` profile, the tests, benchmarks)."""

    type: Literal["simulator"] = "simulator"
    model: str = Field(default="sim-gpt-4o-mini", description="The model name it answers as.")
    base_url: str | None = Field(
        default=None,
        description="A simulator already running (http://host:port); default: one is "
        "started in-process for the run.",
    )
    server: SimulatorServerConfig = Field(default_factory=SimulatorServerConfig)
    api_key: SecretRef | None = Field(
        default=None,
        description="Sent as the bearer token, as to any OpenAI-compatible endpoint (the "
        "simulator accepts any); resolved like a real provider's key.",
    )

    def model_name(self) -> str:
        return self.model


def _client(rt: ProviderRuntime, pool: int) -> OpenAIChatAdapter:
    cfg = cast(SimulatorProviderConfig, rt.config)  # the registry key is the config's type
    if cfg.base_url is None:
        raise ConfigError(
            f"provider '{rt.name}' (type simulator) has no running simulator",
            hint="run through `fmf` or fmf_spark.cli.app (they start it), or set base_url "
            "to a simulator started with `fmf simulator serve`",
        )
    root = cfg.base_url.rstrip("/").removesuffix("/v1")
    return openai_adapter(
        base_url=f"{root}/v1",
        api_key=rt.secret("api_key"),
        model=cfg.model,
        timeout_s=cfg.timeout_s,
        pool=pool,
    )


register_provider(PROVIDER_TYPE, SimulatorProviderConfig, _client)
