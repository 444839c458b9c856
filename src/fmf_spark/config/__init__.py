"""Configuration: Pydantic v2 models of ``fmf.yaml``, the loader and secret providers."""

from __future__ import annotations

from fmf_spark.config.base import SecretRef, StrictModel
from fmf_spark.config.loader import load_config
from fmf_spark.config.models import FmfConfig

__all__ = ["FmfConfig", "SecretRef", "StrictModel", "load_config"]
