"""The connectors layer: sources listed on the driver, bytes read on the executors.

Public API: :func:`get_connector` builds a named connector from the config; each one
implements :class:`DataConnector` (``precheck``, ``list``, ``open``, ``to_dataframe``)
and returns a DataFrame in :data:`fmf_spark.schemas.FILES_SCHEMA`. A connector type is
one module: its config model, its class and one :func:`register_connector` call.
"""

from __future__ import annotations

from fmf_spark.connectors.base import (
    DataConnector,
    PathFilter,
    ResourceInfo,
    ResourceRef,
    build_connector,
    get_connector,
    glob_match,
    register_connector,
    registered_connectors,
)

__all__ = [
    "DataConnector",
    "PathFilter",
    "ResourceInfo",
    "ResourceRef",
    "build_connector",
    "get_connector",
    "glob_match",
    "register_connector",
    "registered_connectors",
]
