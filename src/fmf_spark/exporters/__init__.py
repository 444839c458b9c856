"""The exporters layer: write a run's outputs table to sinks, idempotently.

Public API:

- :func:`export_table` streams the outputs Delta table into one configured sink with
  ``foreachBatch`` (trigger available-now, a checkpoint per sink) and returns an
  :class:`ExportResult`; :class:`Sink` is a sink built and ready (what the composition
  root prechecks and hands to a chain run).
- :class:`Exporter` is the protocol of a sink implementation; a sink type is one module:
  its config model, its class and one :func:`register_exporter` call.

Sinks: ``delta``, ``fabric``, ``s3``, ``dynamodb``, ``redshift``/``postgres``,
``sharepoint_excel`` (one module each). Importing this package imports no Spark and
no cloud SDK.
"""

from __future__ import annotations

from fmf_spark.exporters.base import (
    BatchContext,
    BatchResult,
    Exporter,
    ExportResult,
    RowFailure,
    build_exporter,
    register_exporter,
    registered_exporters,
)
from fmf_spark.exporters.runner import Sink, export_table

__all__ = [
    "BatchContext",
    "BatchResult",
    "ExportResult",
    "Exporter",
    "RowFailure",
    "Sink",
    "build_exporter",
    "export_table",
    "register_exporter",
    "registered_exporters",
]
