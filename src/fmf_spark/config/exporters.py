"""Config models of the ``exporters`` section (one entry per named sink)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from fmf_spark.config.base import SecretRef, StrictModel


class _ExporterBase(StrictModel):
    key_fields: list[str] = Field(
        default_factory=lambda: ["request_id"], description="Upsert key; dedup key per batch."
    )
    order_column: str | None = Field(
        default=None, description="Latest by this column wins among duplicate keys in a batch."
    )
    checkpoint: str | None = Field(default=None, description="Default: under the run's artefacts.")
    max_files_per_trigger: int | None = Field(
        default=None, gt=0, description="Outputs files per micro-batch (bounds batch size)."
    )
    max_bytes_per_trigger: str | None = Field(
        default=None, description="Soft byte limit per micro-batch, e.g. '256m'."
    )


class DeltaExporterConfig(_ExporterBase):
    type: Literal["delta"] = "delta"
    path: str | None = None
    table: str | None = Field(default=None, description="Catalog table name instead of a path.")
    mode: Literal["append", "merge"] = "merge"
    schema_evolution: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> DeltaExporterConfig:
        if (self.path is None) == (self.table is None):
            raise ValueError("set exactly one of path or table")
        return self


class S3ExporterConfig(_ExporterBase):
    type: Literal["s3"] = "s3"
    bucket: str
    prefix: str = "fmf/${run_id}"
    format: Literal["jsonl", "csv", "parquet"] = "jsonl"
    compression: Literal["none", "gzip", "snappy", "zstd"] = "none"
    partition_by: list[str] = Field(default_factory=list)
    region: str | None = None
    endpoint_url: str | None = None


class RedshiftExporterConfig(_ExporterBase):
    """Redshift (stage Parquet on S3, COPY, MERGE) or PostgreSQL (COPY FROM STDIN, MERGE)."""

    type: Literal["redshift", "postgres"] = "redshift"
    host: str
    port: int | None = Field(
        default=None, description="Default 5439 (Redshift), 5432 (PostgreSQL)."
    )
    database: str
    user: str
    password: SecretRef | None = None
    table: str
    schema_name: str = Field(default="public", alias="schema")
    staging_bucket: str | None = None
    staging_prefix: str = "fmf-stage"
    iam_role: str | None = Field(default=None, description="Role Redshift assumes for COPY.")
    staging_region: str | None = None
    staging_endpoint_url: str | None = Field(default=None, description="Override, e.g. moto.")
    max_conflict_retries: int = Field(default=3, ge=0)
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    connect_timeout_s: int = Field(default=15, gt=0)

    @model_validator(mode="after")
    def _default_port(self) -> RedshiftExporterConfig:
        if self.port is None:
            self.port = 5432 if self.type == "postgres" else 5439
        return self


class DynamoDBExporterConfig(_ExporterBase):
    type: Literal["dynamodb"] = "dynamodb"
    table: str
    region: str | None = None
    endpoint_url: str | None = None
    max_retries: int = Field(default=8, ge=0, description="Rounds of UnprocessedItems retries.")
    backoff_base_s: float = Field(default=0.05, gt=0, description="First backoff; doubles.")
    backoff_max_s: float = Field(default=5.0, gt=0, description="Backoff cap (full jitter).")


class SharePointExcelExporterConfig(_ExporterBase):
    type: Literal["sharepoint_excel"] = "sharepoint_excel"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    authority_url: str = "https://login.microsoftonline.com"
    tenant_id: str
    client_id: str
    client_secret: SecretRef | None = None
    site: str
    drive: str = "Documents"
    workbook_path: str
    sheet: str = "outputs"
    mode: Literal["append", "upsert"] = "upsert"
    max_retries: int = Field(default=6, ge=0, description="Throttling retries per request.")
    max_backoff_s: float = Field(default=60.0, gt=0)
    rows_per_request: int = Field(default=500, gt=0, description="Rows per range PATCH.")


class FabricExporterConfig(_ExporterBase):
    type: Literal["fabric"] = "fabric"
    path: str | None = Field(
        default=None, description="abfss://<ws>@onelake.dfs.fabric.microsoft.com/..."
    )
    table: str | None = Field(default=None, description="Lakehouse table name.")
    mode: Literal["append", "merge"] = "merge"
    schema_evolution: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> FabricExporterConfig:
        if (self.path is None) == (self.table is None):
            raise ValueError("set exactly one of path or table")
        return self


ExporterConfig = Annotated[
    DeltaExporterConfig
    | S3ExporterConfig
    | RedshiftExporterConfig
    | DynamoDBExporterConfig
    | SharePointExcelExporterConfig
    | FabricExporterConfig,
    Field(discriminator="type"),
]
