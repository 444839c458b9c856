"""Observability: redacting logs, metrics, the MLflow run and ``run.yaml``."""

from __future__ import annotations

from fmf_spark.observability.logging import configure_logging, get_logger
from fmf_spark.observability.redaction import redact, register_secret

__all__ = ["configure_logging", "get_logger", "redact", "register_secret"]
