"""Providers by type: the registry, and the built provider that travels to executors.

A provider type is one module (:mod:`.azure_openai`, :mod:`.bedrock`, :mod:`.simulator`):
its config model (a :class:`~fmf_spark.config.inference.ProviderConfig`, which says the
model it calls), a client factory, and one :func:`register_provider` call.

:class:`ProviderRuntime` is a provider built on the driver: its config and its secrets,
resolved as :class:`~pydantic.SecretStr` (never through ``os.environ`` or Spark conf).
It is what the batch runner pickles into its ``mapInPandas`` closure; the executor
registers the secrets with its redaction before building the client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from fmf_spark.config.base import SecretRef
from fmf_spark.config.inference import ProviderConfig
from fmf_spark.errors import ConfigError
from fmf_spark.inference.base import LLMClient
from fmf_spark.inference.limiter import QuotaSpec
from fmf_spark.inference.tokens import count_tokens
from fmf_spark.observability.redaction import register_secret
from fmf_spark.registry import PROVIDERS, Plugin

if TYPE_CHECKING:
    from fmf_spark.config.models import FmfConfig
    from fmf_spark.config.secrets import SecretResolver

#: ``(built provider, HTTP connections to keep) -> a single-call client``
ClientFactory = Callable[["ProviderRuntime", int], LLMClient]


def register_provider(
    type_name: str, config_model: type[ProviderConfig], factory: ClientFactory
) -> Plugin[ClientFactory]:
    """Register a provider type: its config model and the factory of its client.

    Raises:
        ValueError: the type is already registered.

    Example:
        >>> register_provider("vertex", VertexProviderConfig, vertex_client)  # doctest: +SKIP
    """
    return PROVIDERS.register(type_name, Plugin(type_name, config_model, factory))


def registered_providers() -> list[str]:
    """The provider types a config may name."""
    return PROVIDERS.names()


def provider_config(name: str, providers: Mapping[str, Any]) -> ProviderConfig:
    """The provider named ``name`` or a :class:`ConfigError` listing the known ones."""
    if name not in providers:
        raise ConfigError(
            f"inference provider '{name}' is not configured; "
            f"allowed: {', '.join(sorted(providers)) or 'none declared'}"
        )
    cfg: ProviderConfig = providers[name]
    return cfg


def _secret_refs(cfg: ProviderConfig) -> dict[str, SecretRef]:
    """Every secret reference among the provider config's own fields."""
    refs = {}
    for field_name in type(cfg).model_fields:
        value = getattr(cfg, field_name)
        if isinstance(value, SecretRef):
            refs[field_name] = value
    return refs


@dataclass(frozen=True)
class ProviderRuntime:
    """A provider config with its secrets resolved; picklable, safe to ``repr``."""

    name: str
    config: ProviderConfig
    secrets: dict[str, SecretStr] = field(default_factory=dict)

    @classmethod
    def build(
        cls, name: str, config: ProviderConfig, resolver: SecretResolver | None
    ) -> ProviderRuntime:
        """Resolve the provider's secrets (on the driver).

        Raises:
            ConfigError: unknown type, or a secret without a resolver.
            SecretError: a secret that does not resolve.
        """
        PROVIDERS.get(config.type)  # an unknown type fails here, not on an executor
        resolved: dict[str, SecretStr] = {}
        for field_name, ref in _secret_refs(config).items():
            if resolver is None:
                raise ConfigError(
                    f"provider '{name}' needs secret '{ref.secret}' but no resolver was given"
                )
            resolved[field_name] = resolver.resolve(ref)
        config, resolved = config.bind(resolved)
        return cls(name, config, resolved)

    @property
    def model(self) -> str:
        """The model name of the outputs and the price table."""
        return self.config.model_name()

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
            refund_unused_completion=type(self.config).refunds_unused_completion,
        )

    def adapter(self, pool: int = 4) -> LLMClient:
        """A single-call client for this provider (no retry, no limiter)."""
        self.register_secrets()
        factory: ClientFactory = PROVIDERS.get(self.config.type).factory
        return factory(self, pool)

    def precheck(self) -> None:
        """Build the client once on the driver, and load the token counter.

        A missing SDK or extra, a malformed endpoint or credentials the SDK refuses fail
        here, before any Spark job and before the first paid call. Nothing is sent.
        """
        count_tokens("warm up")  # the tokenizer prices every request
        self.adapter(pool=1).close()

    def __repr__(self) -> str:
        return f"ProviderRuntime({self.name!r}, type={self.config.type!r}, secrets={sorted(self.secrets)})"


def build_provider(
    name: str, config: FmfConfig, resolver: SecretResolver | None = None
) -> ProviderRuntime:
    """The provider named ``name`` in ``config.inference.providers``, secrets resolved.

    Args:
        name: a key of ``inference.providers``.
        config: the loaded config.
        resolver: resolves the provider's secrets (default: from ``config.secrets``).
    """
    if resolver is None:
        from fmf_spark.config.secrets import SecretResolver

        resolver = SecretResolver(config.secrets)
    return ProviderRuntime.build(name, provider_config(name, config.inference.providers), resolver)
