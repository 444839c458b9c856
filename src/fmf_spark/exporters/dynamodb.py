"""DynamoDB sink: ``BatchWriteItem`` upserts by the table key, from the executors.

Each task writes its partition in requests of at most 25 ``PutRequest`` items.
``PutItem`` replaces the item with the same key, so a replayed micro-batch rewrites the
same items and the table holds each key once: idempotent without bookkeeping. The
sink's ``key_fields`` must be the table's key (hash, and range if any); the batch is
de-duplicated on them first (DynamoDB rejects a request naming a key twice).

Throttling and capacity: ``UnprocessedItems`` and throughput errors are retried with
exponential backoff and full jitter (per task; ``max_retries`` rounds). The request
size adapts (AIMD): halved whenever DynamoDB leaves items unprocessed, grown by one
after a fully processed request, so a task converges on what the table's capacity
lets through instead of hammering it with 25-item requests. Items still unprocessed
after ``max_retries`` become row failures (``export.throttled``, retryable).

Types: floats become ``Decimal`` (DynamoDB numbers; NaN/inf are not representable and
are dropped with the attribute), nulls are left out, structs become maps. Items over
400 KB become row failures (``export.item_too_large``); a request DynamoDB rejects as
invalid is retried item by item so only the bad items fail.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from fmf_spark._deps import require
from fmf_spark.clients.aws import DENIED_CODES, aws_client, aws_error
from fmf_spark.config.exporters import ExporterConfig
from fmf_spark.errors import ExportAuthError, ExportError, ExportSchemaMismatch
from fmf_spark.exporters.base import BatchContext, BatchResult, RowFailure, register_exporter
from fmf_spark.exporters.frames import key_json

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from fmf_spark.config.secrets import SecretResolver

EXPORTER_TYPE = "dynamodb"
MAX_BATCH = 25
MAX_ITEM_BYTES = 400 * 1024
_THROTTLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}
_RESULT_SCHEMA = (
    "kind string, written long, retries long, unprocessed long, "
    "key string, code string, message string"
)


class DynamoDBExporterConfig(ExporterConfig):
    type: Literal["dynamodb"] = "dynamodb"
    table: str
    region: str | None = None
    endpoint_url: str | None = None
    max_retries: int = Field(default=8, ge=0, description="Rounds of UnprocessedItems retries.")
    backoff_base_s: float = Field(default=0.05, gt=0, description="First backoff; doubles.")
    backoff_max_s: float = Field(default=5.0, gt=0, description="Backoff cap (full jitter).")


def dynamodb_client(region: str | None, endpoint_url: str | None) -> Any:
    # botocore's own retries are kept low: throttling is handled here, visibly counted
    return aws_client(
        "dynamodb",
        region=region,
        endpoint_url=endpoint_url,
        max_attempts=3,
        retry_mode="standard",
    )


def to_dynamo_value(value: Any) -> Any:
    """A Python value as DynamoDB accepts it (floats as Decimal); ``None`` to drop."""
    if value is None:
        return None
    if isinstance(value, bool | str | bytes | Decimal):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        # str() keeps the shortest round-tripping form: 0.1 -> Decimal('0.1')
        return Decimal(str(value))
    if isinstance(value, dict):
        converted = {str(k): to_dynamo_value(v) for k, v in value.items()}
        return {k: v for k, v in converted.items() if v is not None}
    if isinstance(value, list | tuple):
        return [to_dynamo_value(v) for v in value]
    return str(value)


def to_item(record: dict[str, Any]) -> dict[str, Any]:
    """A row as a DynamoDB item (python types; nulls and NaN left out)."""
    item = {k: to_dynamo_value(v) for k, v in record.items()}
    return {k: v for k, v in item.items() if v is not None}


def item_size(item: dict[str, Any]) -> int:
    """Size in bytes as DynamoDB counts it (names + values), close enough to enforce 400 KB."""
    return sum(len(k.encode()) + _value_size(v) for k, v in item.items())


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | Decimal):
        digits = len(str(value).lstrip("-").replace(".", "").lstrip("0")) or 1
        return (digits + 1) // 2 + 1
    if isinstance(value, dict):
        return 3 + sum(len(k.encode()) + 1 + _value_size(v) for k, v in value.items())
    if isinstance(value, list):
        return 3 + sum(1 + _value_size(v) for v in value)
    return len(str(value).encode())


class DynamoDBExporter:
    """Writes micro-batches to a DynamoDB table (see the module docstring)."""

    def __init__(self, name: str, cfg: DynamoDBExporterConfig) -> None:
        self.name = name
        self.cfg = cfg

    def precheck(self) -> None:
        client = dynamodb_client(self.cfg.region, self.cfg.endpoint_url)
        try:
            table = client.describe_table(TableName=self.cfg.table)["Table"]
        except Exception as exc:
            code, _ = aws_error(exc)
            text = f"sink '{self.name}': table {self.cfg.table}: {code or type(exc).__name__}"
            if code in DENIED_CODES:
                raise ExportAuthError(text) from None
            raise ExportError(text, hint="create the table with key_fields as its key") from None
        table_keys = sorted(k["AttributeName"] for k in table["KeySchema"])
        if table_keys != sorted(self.cfg.key_fields):
            raise ExportSchemaMismatch(
                f"sink '{self.name}': key_fields {self.cfg.key_fields} are not the key of "
                f"table {self.cfg.table} ({table_keys})",
                hint="set key_fields to the table's hash (and range) key",
            )

    def write_batch(self, df: DataFrame, ctx: BatchContext) -> BatchResult:
        writer = _PartitionWriter(self.cfg)
        rows = df.mapInArrow(writer, _RESULT_SCHEMA).collect()
        result = BatchResult()
        for row in rows:
            if row["kind"] == "summary":
                result.written += int(row["written"])
                result.retries += int(row["retries"])
            else:
                result.failed += 1
                result.failures.append(
                    RowFailure(
                        row["key"], row["code"], row["message"], row["code"] == "export.throttled"
                    )
                )
        return result


class _PartitionWriter:
    """The ``mapInArrow`` function: one task partition -> BatchWriteItem calls."""

    def __init__(self, cfg: DynamoDBExporterConfig) -> None:
        self.cfg = cfg

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        task = _TaskWriter(self.cfg)
        pending: list[tuple[str, dict[str, Any]]] = []
        for batch in batches:
            for record in batch.to_pylist():
                key = key_json(record, self.cfg.key_fields)
                item = to_item(record)
                size = item_size(item)
                if size > MAX_ITEM_BYTES:
                    task.fail(key, "export.item_too_large", f"item is {size} bytes, over 400 KB")
                    continue
                pending.append((key, item))
                if len(pending) >= MAX_BATCH * 4:
                    task.write(pending)
                    pending = []
        if pending:
            task.write(pending)
        out = {
            "kind": ["summary"] + ["failure"] * len(task.failures),
            "written": [task.written] + [0] * len(task.failures),
            "retries": [task.retries] + [0] * len(task.failures),
            "unprocessed": [task.unprocessed] + [0] * len(task.failures),
            "key": [None] + [f[0] for f in task.failures],
            "code": [None] + [f[1] for f in task.failures],
            "message": [None] + [f[2] for f in task.failures],
        }
        schema = pa.schema(
            [
                ("kind", pa.string()),
                ("written", pa.int64()),
                ("retries", pa.int64()),
                ("unprocessed", pa.int64()),
                ("key", pa.string()),
                ("code", pa.string()),
                ("message", pa.string()),
            ]
        )
        yield pa.RecordBatch.from_pydict(out, schema=schema)


class _TaskWriter:
    """BatchWriteItem with adaptive request size, backoff with jitter, per-item fallback."""

    def __init__(self, cfg: DynamoDBExporterConfig) -> None:
        self.cfg = cfg
        self.client = dynamodb_client(cfg.region, cfg.endpoint_url)
        serializer = require("boto3.dynamodb.types").TypeSerializer()
        self._serialize = serializer.serialize
        self.size = MAX_BATCH
        self.written = 0
        self.retries = 0
        self.unprocessed = 0
        self.failures: list[tuple[str, str, str]] = []
        self._rng = random.Random()

    def fail(self, key: str, code: str, message: str) -> None:
        self.failures.append((key, code, message))

    def _request(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"PutRequest": {"Item": {k: self._serialize(v) for k, v in item.items()}}}

    def _sleep(self, attempt: int) -> None:
        cap = min(self.cfg.backoff_max_s, self.cfg.backoff_base_s * (2**attempt))
        time.sleep(self._rng.uniform(0, cap))  # full jitter

    def write(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        queue = [(key, self._request(item)) for key, item in items]
        attempt = 0
        while queue:
            chunk, queue = queue[: self.size], queue[self.size :]
            by_key = {_req_id(req, self.cfg.key_fields): key for key, req in chunk}
            try:
                response = self.client.batch_write_item(
                    RequestItems={self.cfg.table: [req for _, req in chunk]}
                )
            except Exception as exc:
                code, _ = aws_error(exc)
                if code in _THROTTLE_CODES:
                    left = chunk
                elif code == "ValidationException":
                    self._write_one_by_one(chunk)
                    continue
                else:
                    raise ExportError(
                        f"BatchWriteItem on {self.cfg.table}: {code or type(exc).__name__}"
                    ) from None
            else:
                unprocessed = response.get("UnprocessedItems", {}).get(self.cfg.table, [])
                left = [(by_key[_req_id(req, self.cfg.key_fields)], req) for req in unprocessed]
                self.written += len(chunk) - len(left)
            if not left:
                self.size = min(MAX_BATCH, self.size + 1)
                attempt = 0
                continue
            self.unprocessed += len(left)
            self.size = max(1, self.size // 2)
            if attempt >= self.cfg.max_retries:
                for key, _ in left:
                    self.fail(key, "export.throttled", f"still unprocessed after {attempt} retries")
                attempt = 0
                continue
            self._sleep(attempt)
            attempt += 1
            self.retries += 1
            queue = left + queue

    def _write_one_by_one(self, chunk: list[tuple[str, dict[str, Any]]]) -> None:
        for key, req in chunk:
            try:
                self.client.put_item(TableName=self.cfg.table, Item=req["PutRequest"]["Item"])
                self.written += 1
            except Exception as exc:
                code, message = aws_error(exc)
                if code == "ValidationException" and "size" in message.lower():
                    self.fail(key, "export.item_too_large", message[:500])
                else:
                    self.fail(key, "export.invalid_item", f"{code}: {message}"[:500])


def _req_id(req: dict[str, Any], key_fields: list[str]) -> str:
    item = req["PutRequest"]["Item"]
    return json.dumps([item.get(k) for k in key_fields], sort_keys=True, default=str)


def _factory(name: str, cfg: DynamoDBExporterConfig, resolver: SecretResolver) -> DynamoDBExporter:
    return DynamoDBExporter(name, cfg)


register_exporter(EXPORTER_TYPE, DynamoDBExporterConfig, _factory)
