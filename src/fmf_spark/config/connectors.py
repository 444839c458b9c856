"""The fields every entry of the ``connectors`` section has.

Each connector type adds its own fields in its module (``fmf_spark.connectors.s3``
holds ``S3ConnectorConfig``...) and registers the model with its factory; the section
accepts any registered type (:mod:`fmf_spark.config.plugins`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from fmf_spark.config.base import StrictModel
from fmf_spark.config.plugins import plugin_entry
from fmf_spark.registry import CONNECTORS

DEFAULT_MAX_FILE_BYTES = 100 * 1024 * 1024


class ConnectorConfig(StrictModel):
    """Base of every connector's config model."""

    type: str = Field(description="A registered connector type (local, s3, sharepoint...).")
    include: list[str] = Field(default_factory=lambda: ["**/*"], description="Glob patterns kept.")
    exclude: list[str] = Field(default_factory=list, description="Glob patterns dropped.")
    max_file_bytes: int = Field(
        default=DEFAULT_MAX_FILE_BYTES, gt=0, description="Larger files become error rows."
    )


#: one entry of ``connectors``: validated against its type's registered model (type
#: checkers see the base, which is what code reading the section may rely on)
if TYPE_CHECKING:
    ConnectorEntry = ConnectorConfig
else:
    ConnectorEntry = plugin_entry(CONNECTORS, ConnectorConfig)
