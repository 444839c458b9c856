"""The ``local`` connector: files under a local or mounted folder (DBFS, Volumes, NFS)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

from pydantic import Field

from fmf_spark.config.base import Location
from fmf_spark.config.connectors import ConnectorConfig
from fmf_spark.connectors.base import (
    PathFilter,
    ResourceInfo,
    ResourceRef,
    files_dataframe,
    register_connector,
)
from fmf_spark.errors import ConnectorError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from fmf_spark.config.secrets import SecretResolver

CONNECTOR_TYPE = "local"


class LocalConnectorConfig(ConnectorConfig):
    """Files under a local (or mounted: DBFS, Volumes) folder."""

    type: Literal["local"] = "local"
    root: Location = Field(description="Folder to read from.")


class LocalConnector:
    """Lists a folder recursively (symlinked folders are not followed) and streams files.

    The executors must see the same path as the driver (true for ``local[*]``, DBFS
    ``/dbfs/...`` and Unity Catalog ``/Volumes/...`` mounts).
    """

    def __init__(self, name: str, config: LocalConnectorConfig) -> None:
        self.name = name
        self.config = config
        self.root = Path(config.root).expanduser().absolute()
        self.max_file_bytes = config.max_file_bytes

    def __repr__(self) -> str:
        return f"LocalConnector(name={self.name!r}, root={str(self.root)!r})"

    def precheck(self) -> None:
        if not self.root.is_dir():
            raise ConnectorError(
                f"{self.name}: folder {self.root} does not exist",
                code="connector.not_found",
                hint=f"check connectors.{self.name}.root",
            )
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise ConnectorError(
                f"{self.name}: folder {self.root} is not readable", code="connector.denied"
            )

    def list(self, selector: str | Sequence[str] | None = None) -> Iterator[ResourceInfo]:
        self.precheck()
        keep = PathFilter(self.config.include, self.config.exclude, selector)
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for fname in sorted(filenames):
                full = Path(dirpath) / fname
                rel = full.relative_to(self.root).as_posix()
                if not keep(rel):
                    continue
                try:
                    st = full.stat()
                except OSError:  # vanished between walk and stat: not listed
                    continue
                if not full.is_file():
                    continue
                yield ResourceInfo(
                    ref=ResourceRef(self.name, full.as_uri(), rel),
                    size=st.st_size,
                    modified=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc),
                    etag=f"{st.st_mtime_ns:x}-{st.st_size:x}",
                )

    def open(self, ref: ResourceRef) -> IO[bytes]:
        full = (self.root / ref.path).resolve()
        try:
            return full.open("rb")
        except FileNotFoundError:
            raise ConnectorError(
                f"{ref.path} vanished after listing", code="connector.not_found"
            ) from None
        except PermissionError:
            raise ConnectorError(
                f"{ref.path}: permission denied", code="connector.denied"
            ) from None

    def to_dataframe(
        self, spark: SparkSession, selector: str | Sequence[str] | None = None
    ) -> DataFrame:
        return files_dataframe(spark, self, self.list(selector))


def _factory(name: str, config: LocalConnectorConfig, resolver: SecretResolver) -> LocalConnector:
    return LocalConnector(name, config)


register_connector(CONNECTOR_TYPE, LocalConnectorConfig, _factory)
