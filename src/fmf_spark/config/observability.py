"""Config models of the ``observability`` section: logs and MLflow."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fmf_spark.config.base import StrictModel


class MlflowConfig(StrictModel):
    enabled: bool = True
    tracking_uri: str | None = Field(
        default=None,
        description="Default: a local store under the project folder; on Databricks, 'databricks'.",
    )
    experiment: str = "fmf_spark"


class ObservabilityConfig(StrictModel):
    log_format: Literal["human", "json"] = Field(default="human", description="Or FMF_LOG_FORMAT.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
