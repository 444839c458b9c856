"""The ``s3`` connector: objects under a bucket and prefix, through boto3.

Listing pages through ``list_objects_v2`` (1,000 keys a page) and narrows the prefix
by the selector's literal folder part; reads are streamed ``get_object`` bodies. The
SSE options apply to what this connector writes (:meth:`S3Connector.put`); reading
SSE-S3 and SSE-KMS objects is transparent given ``kms:Decrypt``. ``endpoint_url``
points at any S3-compatible endpoint (a moto server in the tests, MinIO, a VPC
endpoint). Credentials: the AWS chain by default, or logical secrets resolved on the
driver and shipped pickled in the connector (never through the environment).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr

from fmf_spark.clients.aws import DENIED_CODES, MISSING_CODES, THROTTLE_CODES, aws_client, aws_error
from fmf_spark.config.base import SecretRef
from fmf_spark.config.connectors import ConnectorConfig
from fmf_spark.connectors.base import (
    PathFilter,
    ResourceInfo,
    ResourceRef,
    files_dataframe,
    register_connector,
)
from fmf_spark.errors import ConnectorError, ConnectorThrottled
from fmf_spark.observability.redaction import register_secret

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from fmf_spark.config.secrets import SecretResolver

CONNECTOR_TYPE = "s3"


class S3ConnectorConfig(ConnectorConfig):
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


_THROTTLE_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "503"}
_DENIED_CODES = {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
_MISSING_CODES = {"NoSuchKey", "404", "NoSuchBucket", "NotFound"}


def _translate(exc: Exception, what: str) -> ConnectorError:
    code, message = aws_error(exc)
    if code in THROTTLE_CODES:
        return ConnectorThrottled(f"{what}: {code} {message}")
    if code in DENIED_CODES:
        return ConnectorError(
            f"{what}: {code} {message}",
            code="connector.denied",
            hint="check the credentials and the bucket policy (s3:ListBucket, s3:GetObject)",
        )
    if code in MISSING_CODES:
        return ConnectorError(f"{what}: {code} {message}", code="connector.not_found")
    return ConnectorError(f"{what}: {type(exc).__name__}: {code} {message}".strip())


class _Body(io.RawIOBase):
    """A botocore StreamingBody as a closeable binary stream."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return bytes(self._body.read(None if size is None or size < 0 else size))

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


class S3Connector:
    """Objects under ``s3://bucket/prefix``; paths are relative to the prefix."""

    def __init__(
        self,
        name: str,
        config: S3ConnectorConfig,
        access_key_id: SecretStr | None = None,
        secret_access_key: SecretStr | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.max_file_bytes = config.max_file_bytes
        self.prefix = config.prefix.lstrip("/")
        if self.prefix and not self.prefix.endswith("/"):
            self.prefix += "/"
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._client: Any = None

    def __repr__(self) -> str:
        return f"S3Connector(name={self.name!r}, bucket={self.config.bucket!r}, prefix={self.prefix!r})"

    def __getstate__(self) -> dict[str, Any]:
        # a boto3 client does not pickle; each executor builds its own
        state = dict(self.__dict__)
        state["_client"] = None
        return state

    def on_executor(self) -> None:
        for secret in (self._access_key_id, self._secret_access_key):
            if secret is not None:
                register_secret(secret.get_secret_value())

    @property
    def client(self) -> Any:
        if self._client is None:
            key_id, secret = self._access_key_id, self._secret_access_key
            self._client = aws_client(
                "s3",
                region=self.config.region,
                endpoint_url=self.config.endpoint_url,
                access_key_id=key_id.get_secret_value() if key_id else None,
                secret_access_key=secret.get_secret_value() if secret else None,
                max_pool_connections=16,
            )
        return self._client

    def _uri(self, key: str) -> str:
        return f"s3://{self.config.bucket}/{key}"

    def precheck(self) -> None:
        try:
            self.client.list_objects_v2(Bucket=self.config.bucket, Prefix=self.prefix, MaxKeys=1)
        except Exception as exc:
            raise _translate(exc, f"{self.name}: cannot list {self._uri(self.prefix)}") from None

    def list(self, selector: str | Sequence[str] | None = None) -> Iterator[ResourceInfo]:
        keep = PathFilter(self.config.include, self.config.exclude, selector)
        paginator = self.client.get_paginator("list_objects_v2")
        prefix = self.prefix + keep.prefix()
        try:
            for page in paginator.paginate(Bucket=self.config.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    key = obj["Key"]
                    rel = key[len(self.prefix) :]
                    if not rel or key.endswith("/") or not keep(rel):
                        continue
                    yield ResourceInfo(
                        ref=ResourceRef(self.name, self._uri(key), rel, key),
                        size=int(obj["Size"]),
                        modified=obj.get("LastModified"),
                        etag=str(obj.get("ETag", "")).strip('"') or None,
                    )
        except ConnectorError:
            raise
        except Exception as exc:
            raise _translate(exc, f"{self.name}: listing {self._uri(prefix)}") from None

    def open(self, ref: ResourceRef) -> IO[bytes]:
        key = ref.id or self.prefix + ref.path
        try:
            response = self.client.get_object(Bucket=self.config.bucket, Key=key)
        except Exception as exc:
            raise _translate(exc, f"get {self._uri(key)}") from None
        return io.BufferedReader(_Body(response["Body"]), buffer_size=1024 * 1024)

    def put(self, path: str, data: bytes) -> str:
        """Write ``data`` at ``prefix + path`` with the configured SSE; returns the URI."""
        key = self.prefix + path.lstrip("/")
        extra: dict[str, Any] = {}
        if self.config.sse is not None:
            extra["ServerSideEncryption"] = self.config.sse
            if self.config.sse == "aws:kms" and self.config.kms_key_id:
                extra["SSEKMSKeyId"] = self.config.kms_key_id
        try:
            self.client.put_object(Bucket=self.config.bucket, Key=key, Body=data, **extra)
        except Exception as exc:
            raise _translate(exc, f"put {self._uri(key)}") from None
        return self._uri(key)

    def to_dataframe(
        self, spark: SparkSession, selector: str | Sequence[str] | None = None
    ) -> DataFrame:
        return files_dataframe(spark, self, self.list(selector))


def _factory(name: str, config: S3ConnectorConfig, resolver: SecretResolver) -> S3Connector:
    key_id = secret = None
    if config.access_key_id is not None or config.secret_access_key is not None:
        if config.access_key_id is None or config.secret_access_key is None:
            raise ConnectorError(
                f"{name}: set both access_key_id and secret_access_key, or neither",
                code="config.invalid",
            )
        key_id = resolver.resolve(config.access_key_id)
        secret = resolver.resolve(config.secret_access_key)
    return S3Connector(name, config, key_id, secret)


register_connector(CONNECTOR_TYPE, S3ConnectorConfig, _factory)
