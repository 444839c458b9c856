"""Writing a batch as objects on S3 from the executors: the S3 sink and the Redshift stage.

Each task streams its partition's rows into a local temporary file per object (JSONL,
CSV or Parquet, optionally compressed) and uploads it; only the object names and row
counts come back to the driver. Names depend only on the batch id and the task
partition (:func:`object_name`), so a replayed batch overwrites what the first attempt
wrote; Hive-style folders hold the ``partition_by`` values.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fmf_spark.clients.aws import DENIED_CODES, THROTTLE_CODES, aws_client, aws_error
from fmf_spark.errors import ExportAuthError, ExportError, ExportThrottled

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
TEXT_CODECS: dict[str, str | None] = {"none": None, "gzip": "gzip", "zstd": "zstd"}
_TEXT_EXT = {"gzip": ".gz", "zstd": ".zst"}
#: what each task returns: the objects it wrote and their rows
WRITTEN_SCHEMA = "key string, rows long"


@dataclass(frozen=True)
class ObjectTarget:
    """Where and how a batch becomes objects (picklable: it travels to the tasks)."""

    bucket: str
    format: str = "jsonl"
    compression: str = "none"
    partition_by: list[str] = field(default_factory=list)
    region: str | None = None
    endpoint_url: str | None = None

    def client(self) -> Any:
        """An S3 client for this target (one per task: boto3 clients do not pickle)."""
        return aws_client("s3", region=self.region, endpoint_url=self.endpoint_url)

    def delete(self, keys: Iterable[str], what: str) -> None:
        """Delete objects, 1,000 per request."""
        keys = list(keys)
        client = self.client()
        try:
            for i in range(0, len(keys), 1000):
                client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True},
                )
        except Exception as exc:
            raise s3_error(exc, what) from None

    def keys(self, prefix: str, what: str) -> Iterator[str]:
        """The keys under ``prefix``, page by page."""
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        )
        try:
            for page in pages:
                for obj in page.get("Contents", []):
                    yield str(obj["Key"])
        except Exception as exc:
            raise s3_error(exc, what) from None

    def check(self, what: str) -> None:
        """The bucket exists and this identity may use it."""
        try:
            self.client().head_bucket(Bucket=self.bucket)
        except Exception as exc:
            raise s3_error(exc, f"{what}: bucket {self.bucket}") from None


def s3_error(exc: Exception, what: str) -> ExportError:
    """An S3 failure in the ExportError family."""
    code, message = aws_error(exc)
    text = f"{what}: {code or type(exc).__name__}: {message}".rstrip(": ")
    if code in DENIED_CODES:
        return ExportAuthError(text, hint="check the identity may write to the bucket")
    if code in THROTTLE_CODES:
        return ExportThrottled(text)
    return ExportError(text)


def object_name(batch_id: int, partition: int, fmt: str, compression: str) -> str:
    """The deterministic file name of one task's output for one batch."""
    ext = {"jsonl": ".jsonl", "csv": ".csv", "parquet": ".parquet"}[fmt]
    if fmt != "parquet":
        ext += _TEXT_EXT.get(compression, "")
    return f"part-{batch_id:05d}-{partition:05d}{ext}"


class PartitionWriter:
    """The ``mapInArrow`` function: one task partition -> objects on S3."""

    def __init__(self, cfg: ObjectTarget, prefix: str, batch_id: int) -> None:
        self.cfg = cfg
        self.prefix = prefix
        self.batch_id = batch_id

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        from pyspark import TaskContext

        task = TaskContext.get()
        partition = task.partitionId() if task is not None else 0
        name = object_name(self.batch_id, partition, self.cfg.format, self.cfg.compression)
        files: dict[tuple[str, ...], ObjectFile] = {}
        try:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                for values, part in _split(batch, self.cfg.partition_by):
                    if values not in files:
                        files[values] = ObjectFile(self.cfg, part.schema)
                    files[values].write(part)
            client = self.cfg.client()
            keys, rows = [], []
            for values, f in files.items():
                key = "/".join(
                    [self.prefix, *_hive_dirs(self.cfg.partition_by, values), name]
                ).lstrip("/")
                f.close()
                try:
                    client.upload_file(f.path, self.cfg.bucket, key)
                except Exception as exc:
                    raise s3_error(exc, f"uploading s3://{self.cfg.bucket}/{key}") from None
                keys.append(key)
                rows.append(f.rows)
        finally:
            for f in files.values():
                f.discard()
        yield pa.RecordBatch.from_pydict(
            {"key": keys, "rows": rows},
            schema=pa.schema([("key", pa.string()), ("rows", pa.int64())]),
        )

    def run(self, df: DataFrame) -> dict[str, int]:
        """Write ``df`` from the executors; ``{object key: rows}`` of what was written."""
        written = df.mapInArrow(self, WRITTEN_SCHEMA).collect()
        return {row["key"]: int(row["rows"]) for row in written}


def _hive_dirs(columns: list[str], values: tuple[str, ...]) -> list[str]:
    return [f"{c}={quote(v, safe='')}" for c, v in zip(columns, values, strict=True)]


def _split(
    batch: pa.RecordBatch, columns: list[str]
) -> Iterator[tuple[tuple[str, ...], pa.RecordBatch]]:
    """Split an Arrow batch by partition values; partition columns are dropped."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not columns:
        yield (), batch
        return
    table = pa.Table.from_batches([batch])
    keys = [
        pc.fill_null(pc.cast(table.column(c), pa.string()), HIVE_NULL).to_pylist() for c in columns
    ]
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, values in enumerate(zip(*keys, strict=True)):
        groups.setdefault(tuple(values), []).append(i)
    rest = table.drop_columns(columns)
    for values, idx in groups.items():
        for part in rest.take(pa.array(idx)).to_batches():
            yield values, part


class ObjectFile:
    """A local temporary file receiving one object's rows in the configured format."""

    def __init__(self, cfg: ObjectTarget, schema: pa.Schema) -> None:
        import pyarrow as pa

        self.cfg = cfg
        self.rows = 0
        tmp = tempfile.NamedTemporaryFile(prefix="fmf-s3-", delete=False)  # noqa: SIM115
        tmp.close()
        self.path = tmp.name
        self._pq: Any = None
        self._csv: Any = None
        if cfg.format == "parquet":
            import pyarrow.parquet as pq

            self._pq = pq.ParquetWriter(self.path, schema, compression=cfg.compression)
            self._out: Any = None
            return
        sink = pa.OSFile(self.path, "wb")
        text_codec = TEXT_CODECS[cfg.compression]
        self._out = pa.CompressedOutputStream(sink, text_codec) if text_codec else sink
        if cfg.format == "csv":
            import pyarrow.csv as pacsv

            self._csv = pacsv.CSVWriter(self._out, schema)

    def write(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        if self._pq is not None:
            self._pq.write_batch(batch)
        elif self._csv is not None:
            self._csv.write_batch(batch)
        else:
            lines = "".join(
                json.dumps(rec, default=str, ensure_ascii=False) + "\n" for rec in batch.to_pylist()
            )
            self._out.write(lines.encode("utf-8"))

    def close(self) -> None:
        if self._pq is not None:
            self._pq.close()
            self._pq = None
            return
        if self._csv is not None:
            self._csv.close()
            self._csv = None
        if self._out is not None and not self._out.closed:
            self._out.close()

    def discard(self) -> None:
        import os

        try:
            self.close()
        finally:
            if os.path.exists(self.path):
                os.unlink(self.path)
