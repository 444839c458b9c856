"""The root configuration model: the whole of ``conf/fmf.yaml``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from fmf_spark.config.base import Location, SecretRef, StrictModel
from fmf_spark.config.connectors import ConnectorEntry
from fmf_spark.config.exporters import ExporterEntry
from fmf_spark.config.inference import InferenceConfig
from fmf_spark.config.observability import ObservabilityConfig
from fmf_spark.config.processing import ProcessingConfig
from fmf_spark.config.prompts_chains import ChainsConfig, PromptsConfig
from fmf_spark.config.secrets_models import SecretsConfig
from fmf_spark.errors import ConfigError
from fmf_spark.registry import import_plugins

PROFILE_NAMES = ("local", "databricks", "emr", "aws_batch", "aws_lambda")


class SparkConfig(StrictModel):
    """How :func:`fmf_spark.spark.get_spark` builds a session when none is active."""

    master: str = Field(default="local[*]", description="Used only when no session is active.")
    remote: str | None = Field(
        default=None,
        description=(
            "A Spark Connect URL (sc://host:port/;token=...) or 'local[N]' for pyspark's own "
            "local Connect server; used only when no session is active. Needs the 'connect' extra."
        ),
    )
    app_name: str = "fmf_spark"
    shuffle_partitions: int = Field(default=8, gt=0)
    conf: dict[str, str] = Field(default_factory=dict, description="Extra Spark conf (no secrets).")
    class_archive: str = Field(
        default="auto",
        description=(
            "JVM class-data sharing for a driver started here: 'auto' keeps the archive "
            "under the temp dir, 'off' disables it, any other value is the folder to keep "
            "it in (an image can bake one there). See fmf_spark.class_archive."
        ),
    )

    @field_validator("class_archive", mode="before")
    @classmethod
    def _archive_switch(cls, value: Any) -> Any:
        """YAML reads ``off``/``on`` (and ``--set ...=off``) as booleans."""
        if isinstance(value, bool):
            return "auto" if value else "off"
        return value

    @field_validator("conf", mode="before")
    @classmethod
    def _conf_as_strings(cls, value: Any) -> Any:
        """Spark takes strings: ``true``, ``4``, ``0.5`` (YAML, ``--set``, ``FMF__``) are
        given to it as Spark spells them; lists and sections stay errors."""
        if not isinstance(value, dict):
            return value
        return {k: _spark_value(v) for k, v in value.items()}


def _spark_value(value: Any) -> Any:
    """A scalar as Spark spells it (``true``, not ``True``); anything else unchanged."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, int | float) else value


class RetentionConfig(StrictModel):
    """Which runs ``fmf runs prune`` keeps; a run is kept when any rule keeps it.

    With no rule set, nothing is pruned. Never pruned, whatever the rules: a run in
    progress, a run an export still needs, and everything under the root that is not a
    run folder (the request cache ``_cache``, export targets, other folders).
    """

    keep_last: int | None = Field(
        default=None, ge=0, description="Keep the newest N runs (by start time)."
    )
    max_age_days: float | None = Field(
        default=None, gt=0, description="Keep runs that started less than this many days ago."
    )
    keep_failed: bool = Field(default=False, description="Keep every failed (or abandoned) run.")
    stale_after_minutes: float = Field(
        default=30.0,
        gt=0,
        description="A 'running' run whose heartbeat is older than this is abandoned (prunable).",
    )


class ArtefactsConfig(StrictModel):
    root: Location = Field(
        default="artefacts",
        description="Local path, dbfs:/, /Volumes/..., s3:// or abfss://; one folder per run.",
    )
    heartbeat_s: float = Field(
        default=60.0, gt=0, description="How often a running run refreshes its heartbeat file."
    )
    retention: RetentionConfig = Field(default_factory=RetentionConfig)


class FmfConfig(StrictModel):
    """The whole fmf configuration, validated strictly (unknown keys are errors).

    Example:
        >>> from fmf_spark.config import load_config
        >>> cfg = load_config("conf/fmf.yaml", profile="local")  # doctest: +SKIP
        >>> cfg.inference.default_provider  # doctest: +SKIP
        'simulator'
    """

    # first: fields are validated in order, and the plug-in modules must be imported
    # (and so registered) before `connectors`, `exporters` and `inference` are
    plugins: list[str] = Field(
        default_factory=list,
        description="Modules imported before validation; each registers its connectors, "
        "loaders, providers or sinks (the `fmf_spark.plugins` entry points are imported too).",
    )
    project: str = "fmf"
    base_dir: Location | None = Field(
        default=None,
        description="The folder relative paths in this config resolve against, itself "
        "relative to the config file's folder (default: that folder). After loading: the "
        "absolute folder used.",
    )
    profile: str | None = Field(
        default=None, description="The profile applied (set by the loader)."
    )
    profiles: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Partial configs merged over the base by name."
    )
    spark: SparkConfig = Field(default_factory=SparkConfig)
    artefacts: ArtefactsConfig = Field(default_factory=ArtefactsConfig)
    secrets: SecretsConfig = Field(default_factory=SecretsConfig)
    connectors: dict[str, ConnectorEntry] = Field(default_factory=dict)
    processing: ProcessingConfig = Field(default_factory=ProcessingConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    prompts: PromptsConfig = Field(default_factory=PromptsConfig)
    chains: ChainsConfig = Field(default_factory=ChainsConfig)
    exporters: dict[str, ExporterEntry] = Field(default_factory=dict)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)

    @field_validator("plugins")
    @classmethod
    def _import_plugins(cls, modules: list[str]) -> list[str]:
        try:
            import_plugins(modules)
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        return modules

    @model_validator(mode="after")
    def _check_references(self) -> FmfConfig:
        for path, ref in iter_secret_refs(self):
            if ref.secret not in self.secrets.names:
                known = ", ".join(sorted(self.secrets.names)) or "none declared"
                raise ValueError(
                    f"{path} refers to secret '{ref.secret}', which is not in secrets.names "
                    f"(declared: {known})"
                )
        for name, spec in self.secrets.names.items():
            if spec.provider not in self.secrets.providers:
                raise ValueError(
                    f"secrets.names.{name}.provider is '{spec.provider}', allowed: "
                    f"{', '.join(sorted(self.secrets.providers))}"
                )
        provider = self.inference.default_provider
        if provider is not None and provider not in self.inference.providers:
            raise ValueError(
                f"inference.default_provider is '{provider}', allowed: "
                f"{', '.join(sorted(self.inference.providers)) or 'none declared'}"
            )
        return self


def iter_secret_refs(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, SecretRef]]:
    """Yield ``(dotted path, SecretRef)`` for every secret reference in a config tree."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        path = f"{prefix}{name}"
        yield from _walk(value, path)


def _walk(value: Any, path: str) -> Iterator[tuple[str, SecretRef]]:
    if isinstance(value, SecretRef):
        yield path, value
    elif isinstance(value, BaseModel):
        yield from iter_secret_refs(value, path + ".")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")
