"""Config models of the ``observability`` section: logs, MLflow, OpenTelemetry, progress."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from fmf_spark.config.base import SecretRef, StrictModel

#: header names whose value is a credential: only a secret reference is accepted there
_SENSITIVE_HEADER_WORDS = ("authorization", "key", "token", "secret", "password", "signature")


class MlflowConfig(StrictModel):
    enabled: bool = True
    tracking_uri: str | None = Field(
        default=None,
        description="Default: a local store under the project folder; on Databricks, 'databricks'.",
    )
    experiment: str = "fmf_spark"


class OtelConfig(StrictModel):
    """OpenTelemetry traces and metrics over OTLP/HTTP (the ``otel`` extra).

    Off by default; when off nothing of OpenTelemetry is imported. Executors export
    their own spans and metrics, so ``endpoint`` must be reachable from them too (a
    collector on the cluster network, or an agent on every node at localhost).
    """

    enabled: bool = False
    endpoint: str = Field(
        default="http://127.0.0.1:4318",
        description="OTLP/HTTP base URL; /v1/traces and /v1/metrics are appended.",
    )
    headers: dict[str, SecretRef | str] = Field(
        default_factory=dict,
        description="HTTP headers of the export; credentials as {secret: name} references "
        "whose value is the header's whole value (e.g. 'Bearer abc...').",
    )
    service_name: str = "fmf_spark"
    resource_attributes: dict[str, str] = Field(
        default_factory=dict, description="Extra resource attributes (deployment.environment...)."
    )
    model_call_sample_ratio: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Share of model calls that get a span (by request_id hash); metrics count all.",
    )
    metrics: bool = Field(default=True, description="Export calls/tokens/cost/429/latency metrics.")
    timeout_s: float = Field(default=10.0, gt=0, description="Timeout of one export request.")

    @field_validator("headers", mode="before")
    @classmethod
    def _secret_headers(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for name, item in value.items():
            if isinstance(item, str) and item.startswith("secret:"):
                item = {"secret": item.removeprefix("secret:")}
            elif isinstance(item, str) and any(w in name.lower() for w in _SENSITIVE_HEADER_WORDS):
                raise ValueError(
                    f"header '{name}' carries a credential: give it as {{secret: <logical name>}}, "
                    "never a literal value"
                )
            out[name] = item
        return out


class ObservabilityConfig(StrictModel):
    log_format: Literal["human", "json"] = Field(
        default="human", description="FMF_LOG_FORMAT in the environment wins."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="FMF_LOG_LEVEL in the environment wins; --debug wins over both."
    )
    progress_interval_s: float = Field(
        default=5.0, gt=0, description="Seconds between progress updates of a long stage."
    )
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    otel: OtelConfig = Field(default_factory=OtelConfig)
