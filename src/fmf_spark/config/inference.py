"""Config models of the ``inference`` section: the provider base, limits, retries, prices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, SecretStr

from fmf_spark.config.base import StrictModel
from fmf_spark.config.plugins import plugin_entry
from fmf_spark.registry import PROVIDERS


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


class ProviderConfig(StrictModel):
    """Base of every provider's config model: quota, retries, concurrency, timeout.

    Each provider type adds its own fields in its module (``fmf_spark.inference.bedrock``
    holds ``BedrockProviderConfig``...), says which model it calls
    (:meth:`model_name`), and registers the model with its client factory.
    """

    #: the provider gives back the unused part of ``max_tokens`` after the answer (Bedrock)
    refunds_unused_completion: ClassVar[bool] = False

    type: str = Field(description="A registered provider type (azure_openai, bedrock...).")
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    concurrency: int = Field(default=4, ge=1, description="Concurrent calls per Spark task.")
    timeout_s: float = Field(default=60.0, gt=0)

    def model_name(self) -> str:
        """The model this provider calls: the name in the outputs and the price table."""
        raise NotImplementedError(f"{type(self).__name__} must define model_name()")

    def bind(self, secrets: Mapping[str, SecretStr]) -> tuple[ProviderConfig, dict[str, SecretStr]]:
        """What the provider learns on the driver by itself, beyond its secret references.

        Called once on the driver when the provider is built, with the values of its
        ``SecretRef`` fields; returns the config and secrets that travel to the
        executors. A provider whose credentials come from where the driver runs (a
        Databricks workspace's own token and host) resolves them here, because the
        executors cannot: they have no notebook context and no sign-in.

        Raises:
            SecretError: the credentials cannot be obtained.
        """
        return self, dict(secrets)


#: one entry of ``inference.providers``: validated against its type's registered model
#: (type checkers see the base, which is what code reading the section may rely on)
if TYPE_CHECKING:
    ProviderEntry = ProviderConfig
else:
    ProviderEntry = plugin_entry(PROVIDERS, ProviderConfig)


class ModelPrice(StrictModel):
    input_per_1k: float = Field(ge=0, description="USD per 1,000 prompt tokens.")
    output_per_1k: float = Field(ge=0, description="USD per 1,000 completion tokens.")


class InferenceConfig(StrictModel):
    default_provider: str | None = None
    providers: dict[str, ProviderEntry] = Field(default_factory=dict)
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    cache: bool = Field(default=True, description="Skip calls already answered (by request_id).")
    limiter: Literal["auto", "broker", "static"] = Field(
        default="auto",
        description="broker: one quota broker on the driver leases budget to every task; "
        "static: each task gets quota / tasks (when executors cannot reach the driver); "
        "auto: broker on a classic session, static on Spark Connect (no driver here).",
    )
    tasks: int | None = Field(
        default=None,
        gt=0,
        description="Spark tasks that call the model at once (default: defaultParallelism).",
    )
    progress_rows: int = Field(
        default=10,
        ge=0,
        description="Durable progress: each task commits its answers beside the cache, so a "
        "killed run or a retried task does not pay for them again: on a local or shared "
        "filesystem every answer as it arrives, on an object store when this many are "
        "waiting (and every progress_seconds); 0: off (answers reach the cache at the "
        "step's end).",
    )
    progress_seconds: float = Field(
        default=1.0,
        gt=0,
        description="Durable progress on an object store: the longest an answer waits "
        "before it is committed.",
    )
