"""Config models of the ``inference`` section: providers, limits, retries, prices."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from fmf_spark.config.base import SecretRef, StrictModel


class RateLimitConfig(StrictModel):
    """The provider quota this job aims at (shared by every task of the job)."""

    requests_per_minute: int | None = Field(default=None, gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)
    window_s: float = Field(
        default=10.0,
        gt=0,
        description="The provider's enforcement window (Azure OpenAI: 1 s or 10 s).",
    )
    headroom: float = Field(
        default=0.02,
        ge=0,
        lt=1,
        description="Share of the quota left unused, so jitter does not cause 429s.",
    )


class RetryConfig(StrictModel):
    max_attempts: int = Field(
        default=6, ge=1, description="Calls per row for transient errors (5xx, timeouts)."
    )
    base_delay_s: float = Field(default=0.5, gt=0)
    max_delay_s: float = Field(default=30.0, gt=0)
    max_rate_limited_s: float = Field(
        default=900.0,
        gt=0,
        description="How long one row may keep waiting on 429s (the provider says when to "
        "come back, so these are bounded by time, not by a count).",
    )


class _ProviderBase(StrictModel):
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    concurrency: int = Field(default=4, ge=1, description="Concurrent calls per Spark task.")
    timeout_s: float = Field(default=60.0, gt=0)


class AzureOpenAIProviderConfig(_ProviderBase):
    type: Literal["azure_openai"] = "azure_openai"
    endpoint: str = Field(description="https://<resource>.openai.azure.com")
    api_version: str = "2024-10-21"
    deployment: str
    model: str | None = Field(default=None, description="Model name for the price table.")
    api_key: SecretRef | None = Field(
        default=None, description="Default: Entra ID (azure-identity)."
    )


class OpenAIProviderConfig(_ProviderBase):
    """The OpenAI API or any compatible endpoint (the local simulator)."""

    type: Literal["openai"] = "openai"
    base_url: str | None = None
    model: str
    api_key: SecretRef | None = None


class BedrockProviderConfig(_ProviderBase):
    type: Literal["bedrock"] = "bedrock"
    region: str | None = None
    model_id: str
    endpoint_url: str | None = Field(default=None, description="Override, e.g. the simulator.")
    access_key_id: SecretRef | None = None
    secret_access_key: SecretRef | None = None


ProviderConfig = Annotated[
    AzureOpenAIProviderConfig | OpenAIProviderConfig | BedrockProviderConfig,
    Field(discriminator="type"),
]


class ModelPrice(StrictModel):
    input_per_1k: float = Field(ge=0, description="USD per 1,000 prompt tokens.")
    output_per_1k: float = Field(ge=0, description="USD per 1,000 completion tokens.")


class SimulatorConfig(StrictModel):
    """The local rate-limited endpoint used by the `local` profile, tests and benchmarks."""

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="0: pick a free port.")
    requests_per_minute: int = Field(default=600, gt=0)
    tokens_per_minute: int = Field(default=200_000, gt=0)
    latency_ms: float = Field(default=20.0, ge=0)
    window_s: float = Field(default=10.0, gt=0, description="Quota enforcement window.")
    autostart: bool = Field(default=False, description="Start it in-process for the run.")


class InferenceConfig(StrictModel):
    default_provider: str | None = None
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    cache: bool = Field(default=True, description="Skip calls already answered (by request_id).")
    simulator: SimulatorConfig = Field(default_factory=SimulatorConfig)
    limiter: Literal["broker", "static"] = Field(
        default="broker",
        description="broker: one quota broker on the driver leases budget to every task; "
        "static: each task gets quota / tasks (when executors cannot reach the driver).",
    )
    tasks: int | None = Field(
        default=None,
        gt=0,
        description="Spark tasks that call the model at once (default: defaultParallelism).",
    )
