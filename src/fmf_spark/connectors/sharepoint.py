"""The ``sharepoint`` connector: files of a SharePoint document library, over Microsoft Graph.

Requests, auth (client secret or certificate), throttling and paging are the shared
:class:`~fmf_spark.clients.graph.GraphClient`'s; this module navigates the library.
The secret and the PEM are read on the driver and travel pickled inside the connector
as ``SecretStr``; executors register them for redaction and fetch their own tokens.

Listing: site by path, library by name, then the folder's children page by page
(``@odata.nextLink``), recursing into sub-folders. Downloads stream the ``/content``
redirect target.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr

from fmf_spark.clients.graph import GraphClient, GraphErrors
from fmf_spark.config.connectors import ConnectorConfig
from fmf_spark.config.graph import GraphAccessConfig
from fmf_spark.connectors.base import (
    PathFilter,
    ResourceInfo,
    ResourceRef,
    files_dataframe,
    register_connector,
)
from fmf_spark.errors import ConnectorError, ConnectorThrottled

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from fmf_spark.config.secrets import SecretResolver

CONNECTOR_TYPE = "sharepoint"
ERRORS = GraphErrors(base=ConnectorError, throttled=ConnectorThrottled, prefix="connector")


class SharePointConnectorConfig(ConnectorConfig, GraphAccessConfig):
    """Files in a SharePoint document library, through Microsoft Graph."""

    type: Literal["sharepoint"] = "sharepoint"
    site: str = Field(description="Site as 'host.sharepoint.com:/sites/name'.")
    drive: str = Field(default="Documents", description="Document library name.")
    folder: str = Field(default="", description="Folder path inside the library.")


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class SharePointConnector:
    """Files under ``site / drive / folder``; paths are relative to ``folder``."""

    def __init__(
        self,
        name: str,
        config: SharePointConnectorConfig,
        client_secret: SecretStr | None = None,
        certificate_pem: SecretStr | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if client_secret is None and certificate_pem is None:
            raise ConnectorError(
                f"{name}: set client_secret or certificate_path", code="config.invalid"
            )
        self.name = name
        self.config = config
        self.max_file_bytes = config.max_file_bytes
        self.folder = config.folder.strip("/")
        self._client_secret = client_secret
        self._certificate_pem = certificate_pem
        self._sleep = sleep
        self._client: GraphClient | None = None

    def __repr__(self) -> str:
        return (
            f"SharePointConnector(name={self.name!r}, site={self.config.site!r}, "
            f"drive={self.config.drive!r}, folder={self.folder!r})"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_client"] = None  # each executor signs in itself
        return state

    @property
    def client(self) -> GraphClient:
        """The Graph client, made on first use (with the connector's ``_sleep``)."""
        if self._client is None:
            self._client = GraphClient(
                who=self.name,
                client_secret=self._client_secret,
                certificate_pem=self._certificate_pem,
                errors=ERRORS,
                sleep=self._sleep,
                **self.config.client_options(),
            )
        return self._client

    @property
    def retries(self) -> int:
        """Requests retried (throttled or transient), for metrics and tests."""
        return self._client.retries if self._client is not None else 0

    def on_executor(self) -> None:
        self.client.register_secrets()

    @property
    def graph(self) -> str:
        return self.client.graph

    def drive_id(self) -> str:
        return self.client.drive_id(self.config.site, self.config.drive)

    def _children_url(self, folder: str) -> str:
        base = f"{self.graph}/drives/{self.drive_id()}/root"
        if not folder:
            return f"{base}/children"
        return f"{base}:/{quote(folder)}:/children"

    def precheck(self) -> None:
        self.drive_id()
        next(iter(self.client.pages(self._children_url(self.folder))), None)

    def list(self, selector: str | Sequence[str] | None = None) -> Iterator[ResourceInfo]:
        keep = PathFilter(self.config.include, self.config.exclude, selector)
        drive_id = self.drive_id()
        pending = [(self.folder, self._children_url(self.folder))]
        while pending:
            folder, url = pending.pop(0)
            for item in self.client.pages(url):
                item_path = f"{folder}/{item['name']}" if folder else str(item["name"])
                rel = item_path[len(self.folder) :].lstrip("/")
                if "folder" in item:
                    pending.append(
                        (item_path, f"{self.graph}/drives/{drive_id}/items/{item['id']}/children")
                    )
                    continue
                if "file" not in item or not keep(rel):
                    continue
                yield ResourceInfo(
                    ref=ResourceRef(
                        self.name,
                        str(item.get("webUrl") or item_path),
                        rel,
                        f"{drive_id}/{item['id']}",
                    ),
                    size=int(item["size"]) if item.get("size") is not None else None,
                    modified=_parse_time(item.get("lastModifiedDateTime")),
                    etag=item.get("eTag"),
                )

    def open(self, ref: ResourceRef) -> IO[bytes]:
        drive_id, _, item_id = ref.handle.partition("/")
        url = f"{self.graph}/drives/{drive_id}/items/{item_id}/content"
        response = self.client.send("GET", url, stream=True)
        if response.status_code != 200:
            response.close()
            code = "connector.not_found" if response.status_code == 404 else "connector.error"
            raise ConnectorError(
                f"download {ref.path}: HTTP {response.status_code}",
                code=code,
                retryable=response.status_code >= 500,
            )
        raw = response.raw
        raw.decode_content = True
        stream: IO[bytes] = raw
        return stream

    def to_dataframe(
        self, spark: SparkSession, selector: str | Sequence[str] | None = None
    ) -> DataFrame:
        return files_dataframe(spark, self, self.list(selector))


def _factory(
    name: str, config: SharePointConnectorConfig, resolver: SecretResolver
) -> SharePointConnector:
    return SharePointConnector(name, config, *config.credentials(resolver))


register_connector(CONNECTOR_TYPE, SharePointConnectorConfig, _factory)
