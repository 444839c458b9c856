"""Providers by type: build the adapter for a provider config, on the driver or an executor.

:class:`ProviderRuntime` is what travels to executors in the pickled closure of the
batch runner: the provider config and its secrets, resolved on the driver as
:class:`~pydantic.SecretStr` (never through ``os.environ`` or Spark conf); the executor
registers them with its redaction before building the client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import SecretStr

from fmf_spark.config.inference import (
    AzureOpenAIProviderConfig,
    BedrockProviderConfig,
    OpenAIProviderConfig,
)
from fmf_spark.config.secrets import SecretResolver
from fmf_spark.errors import ConfigError
from fmf_spark.inference.base import LLMClient
from fmf_spark.inference.limiter import QuotaSpec
from fmf_spark.observability.redaction import register_secret

AnyProviderConfig = AzureOpenAIProviderConfig | OpenAIProviderConfig | BedrockProviderConfig


def _openai(rt: ProviderRuntime, pool: int) -> LLMClient:
    from fmf_spark.inference.azure_openai import openai_adapter

    cfg = cast(OpenAIProviderConfig, rt.config)  # the registry key is the config's type
    return openai_adapter(
        base_url=cfg.base_url,
        api_key=rt.secret("api_key"),
        model=cfg.model,
        timeout_s=cfg.timeout_s,
        pool=pool,
    )


def _azure(rt: ProviderRuntime, pool: int) -> LLMClient:
    from fmf_spark.inference.azure_openai import azure_openai_adapter

    cfg = cast(AzureOpenAIProviderConfig, rt.config)
    return azure_openai_adapter(
        endpoint=cfg.endpoint,
        deployment=cfg.deployment,
        api_version=cfg.api_version,
        api_key=rt.secret("api_key"),
        model=rt.model,
        timeout_s=cfg.timeout_s,
        pool=pool,
    )


def _bedrock(rt: ProviderRuntime, pool: int) -> LLMClient:
    from fmf_spark.inference.bedrock import bedrock_adapter

    cfg = cast(BedrockProviderConfig, rt.config)
    return bedrock_adapter(
        model_id=cfg.model_id,
        region=cfg.region,
        endpoint_url=cfg.endpoint_url,
        access_key_id=rt.secret("access_key_id"),
        secret_access_key=rt.secret("secret_access_key"),
        timeout_s=cfg.timeout_s,
        pool=pool,
    )


#: provider type -> adapter factory; one entry per module, registered once
ADAPTERS: dict[str, Callable[[ProviderRuntime, int], LLMClient]] = {
    "openai": _openai,
    "azure_openai": _azure,
    "bedrock": _bedrock,
}

_SECRET_FIELDS = ("api_key", "access_key_id", "secret_access_key")


@dataclass(frozen=True)
class ProviderRuntime:
    """A provider config with its secrets resolved; picklable, safe to ``repr``."""

    name: str
    config: AnyProviderConfig
    secrets: dict[str, SecretStr] = field(default_factory=dict)

    @classmethod
    def build(
        cls, name: str, config: AnyProviderConfig, resolver: SecretResolver | None
    ) -> ProviderRuntime:
        """Resolve the provider's secrets (on the driver)."""
        resolved: dict[str, SecretStr] = {}
        for field_name in _SECRET_FIELDS:
            ref = getattr(config, field_name, None)
            if ref is None:
                continue
            if resolver is None:
                raise ConfigError(
                    f"provider '{name}' needs secret '{ref.secret}' but no resolver was given"
                )
            resolved[field_name] = resolver.resolve(ref)
        return cls(name, config, resolved)

    @property
    def model(self) -> str:
        """The model name of the outputs and the price table."""
        cfg = self.config
        if isinstance(cfg, AzureOpenAIProviderConfig):
            return cfg.model or cfg.deployment
        if isinstance(cfg, BedrockProviderConfig):
            return cfg.model_id
        return cfg.model

    def secret(self, field_name: str) -> str | None:
        value = self.secrets.get(field_name)
        return None if value is None else value.get_secret_value()

    def register_secrets(self) -> None:
        """Mask this provider's secrets in this process's logs (call on executors)."""
        for value in self.secrets.values():
            register_secret(value.get_secret_value())

    def quota(self) -> QuotaSpec | None:
        """The quota this provider is limited to, or ``None`` when none is configured."""
        rl = self.config.rate_limit
        if rl.requests_per_minute is None and rl.tokens_per_minute is None:
            return None
        return QuotaSpec(
            requests_per_minute=rl.requests_per_minute,
            tokens_per_minute=rl.tokens_per_minute,
            window_s=rl.window_s,
            headroom=rl.headroom,
            refund_unused_completion=isinstance(self.config, BedrockProviderConfig),
        )

    def adapter(self, pool: int = 4) -> LLMClient:
        """A single-call client for this provider (no retry, no limiter)."""
        self.register_secrets()
        return ADAPTERS[self.config.type](self, pool)

    def __repr__(self) -> str:
        return f"ProviderRuntime({self.name!r}, type={self.config.type!r}, secrets={sorted(self.secrets)})"


def provider_config(name: str, providers: dict[str, Any]) -> AnyProviderConfig:
    """The provider named ``name`` or a :class:`ConfigError` listing the known ones."""
    if name not in providers:
        raise ConfigError(
            f"inference provider '{name}' is not configured; "
            f"allowed: {', '.join(sorted(providers)) or 'none declared'}"
        )
    cfg: AnyProviderConfig = providers[name]
    return cfg
