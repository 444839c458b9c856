"""The fields every entry of the ``exporters`` section has.

Each sink type adds its own fields in its module (``fmf_spark.exporters.delta`` holds
``DeltaExporterConfig``...) and registers the model with its factory; the section
accepts any registered type (:mod:`fmf_spark.config.plugins`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from fmf_spark.config.base import Location, StrictModel
from fmf_spark.config.plugins import plugin_entry
from fmf_spark.registry import EXPORTERS


class ExporterConfig(StrictModel):
    """Base of every sink's config model."""

    type: str = Field(description="A registered sink type (delta, s3, redshift...).")
    key_fields: list[str] = Field(
        default_factory=lambda: ["request_id"], description="Upsert key; dedup key per batch."
    )
    order_column: str | None = Field(
        default=None, description="Latest by this column wins among duplicate keys in a batch."
    )
    checkpoint: Location | None = Field(
        default=None, description="Default: under the run's artefacts."
    )
    max_files_per_trigger: int | None = Field(
        default=None, gt=0, description="Outputs files per micro-batch (bounds batch size)."
    )
    max_bytes_per_trigger: str | None = Field(
        default=None, description="Soft byte limit per micro-batch, e.g. '256m'."
    )


#: one entry of ``exporters``: validated against its type's registered model (type
#: checkers see the base, which is what code reading the section may rely on)
if TYPE_CHECKING:
    ExporterEntry = ExporterConfig
else:
    ExporterEntry = plugin_entry(EXPORTERS, ExporterConfig)
