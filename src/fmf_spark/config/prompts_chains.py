"""Config models of the ``prompts`` and ``chains`` sections."""

from __future__ import annotations

from pydantic import Field

from fmf_spark.config.base import StrictModel


class PromptsConfig(StrictModel):
    dir: str = Field(default="prompts", description="Folder of the YAML prompt registry.")
    mlflow_sync: bool = Field(default=True, description="Mirror versions into MLflow's registry.")


class ChainsConfig(StrictModel):
    dir: str = Field(default="chains", description="Folder of chain YAML files.")
