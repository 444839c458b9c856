"""Config models of the ``connectors`` section (one entry per named source)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from fmf_spark.config.base import SecretRef, StrictModel

DEFAULT_MAX_FILE_BYTES = 100 * 1024 * 1024


class _ConnectorBase(StrictModel):
    include: list[str] = Field(default_factory=lambda: ["**/*"], description="Glob patterns kept.")
    exclude: list[str] = Field(default_factory=list, description="Glob patterns dropped.")
    max_file_bytes: int = Field(
        default=DEFAULT_MAX_FILE_BYTES, gt=0, description="Larger files become error rows."
    )


class LocalConnectorConfig(_ConnectorBase):
    """Files under a local (or mounted: DBFS, Volumes) folder."""

    type: Literal["local"] = "local"
    root: str = Field(description="Folder to read from.")


class S3ConnectorConfig(_ConnectorBase):
    """Objects under an S3 bucket and prefix."""

    type: Literal["s3"] = "s3"
    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = Field(default=None, description="Override, e.g. a moto server.")
    sse: Literal["AES256", "aws:kms"] | None = Field(
        default=None, description="Server-side encryption."
    )
    kms_key_id: str | None = None
    access_key_id: SecretRef | None = Field(
        default=None, description="Default: the AWS credential chain."
    )
    secret_access_key: SecretRef | None = None


class SharePointConnectorConfig(_ConnectorBase):
    """Files in a SharePoint document library, through Microsoft Graph."""

    type: Literal["sharepoint"] = "sharepoint"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    authority_url: str = "https://login.microsoftonline.com"
    tenant_id: str
    client_id: str
    client_secret: SecretRef | None = Field(default=None, description="Client-credential auth.")
    certificate_path: str | None = Field(default=None, description="Certificate auth (PEM).")
    certificate_thumbprint: str | None = None
    site: str = Field(description="Site as 'host.sharepoint.com:/sites/name'.")
    drive: str = Field(default="Documents", description="Document library name.")
    folder: str = Field(default="", description="Folder path inside the library.")
    max_retries: int = Field(default=5, ge=0)
    max_backoff_s: float = Field(default=60.0, gt=0)


ConnectorConfig = Annotated[
    LocalConnectorConfig | S3ConnectorConfig | SharePointConnectorConfig,
    Field(discriminator="type"),
]
