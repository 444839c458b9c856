"""Config models of the ``prompts`` and ``chains`` sections."""

from __future__ import annotations

from pydantic import Field

from fmf_spark.config.base import Location, StrictModel


class PromptsConfig(StrictModel):
    dir: Location = Field(default="prompts", description="Folder of the YAML prompt registry.")
    mlflow_sync: bool = Field(default=True, description="Mirror versions into MLflow's registry.")
    mlflow_prefix: str | None = Field(
        default=None,
        description="Prefix of MLflow prompt names, e.g. 'main.fmf' for Unity Catalog "
        "(catalog.schema) on Databricks; none for a local store.",
    )


class ChainsConfig(StrictModel):
    dir: Location = Field(
        default="chains",
        description="Folder of chain YAML files; `fmf run --chain <name>` looks here too.",
    )
