"""The exporters layer: write a run's outputs table to sinks, idempotently.

Public API:

- :func:`export_table` streams the outputs Delta table into one configured sink with
  ``foreachBatch`` (trigger available-now, a checkpoint per sink) and returns an
  :class:`ExportResult`.
- :class:`Exporter` is the protocol of a sink; :func:`build_exporter` builds one from
  its config through the registry (:func:`register_exporter`).

Sinks: ``delta``, ``fabric``, ``s3``, ``dynamodb``, ``redshift``/``postgres``,
``sharepoint_excel`` (one module each). Importing this package imports no Spark and
no cloud SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fmf_spark.exporters.base import (
    BatchContext,
    BatchResult,
    Exporter,
    ExportResult,
    RowFailure,
    build_exporter,
    register_exporter,
    registered_types,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from fmf_spark.config.models import FmfConfig
    from fmf_spark.config.secrets import SecretResolver


def export_table(
    spark: SparkSession,
    config: FmfConfig,
    sink_name: str,
    input_path: str,
    *,
    run_id: str,
    checkpoint_root: str | None = None,
    resolver: SecretResolver | None = None,
) -> ExportResult:
    """Export a run's outputs table to one sink; see :func:`fmf_spark.exporters.runner.export_table`."""
    from fmf_spark.exporters.runner import export_table as _export_table

    return _export_table(
        spark,
        config,
        sink_name,
        input_path,
        run_id=run_id,
        checkpoint_root=checkpoint_root,
        resolver=resolver,
    )


__all__ = [
    "BatchContext",
    "BatchResult",
    "ExportResult",
    "Exporter",
    "RowFailure",
    "build_exporter",
    "export_table",
    "register_exporter",
    "registered_types",
]
