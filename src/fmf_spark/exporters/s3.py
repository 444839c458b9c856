"""S3 sink: JSONL, CSV or Parquet objects under ``s3://<bucket>/<prefix>/``.

Layout: ``<prefix>/[<col>=<value>/...]part-<batch:05d>-<task partition:05d>.<ext>``,
with ``${run_id}`` in the prefix replaced by the run id (default prefix
``fmf/${run_id}``) and Hive-style folders for ``partition_by`` columns (which are then
left out of the objects, as Hive/Athena/Spark readers expect).

Idempotence of one micro-batch: object names depend only on the batch id and the task
partition, so a replayed batch overwrites what the first attempt wrote instead of
adding objects. After a batch is written the driver deletes objects of the *same batch
id* that this attempt did not write (a first attempt may have produced more
partitions), so a replay never leaves stale copies of rows. A rerun with the same
checkpoint writes nothing; a rerun with a new checkpoint and the same batch sizing
produces the same batches and overwrites the same objects.

Executors write their partitions themselves (``mapInArrow``), streaming rows into a
local temporary file per object and uploading it, so neither the driver nor an
executor holds a whole batch in memory. Only the object names come back.

Compression: ``gzip`` or ``zstd`` for JSONL/CSV (``.jsonl.gz``, ``.csv.zst``...);
``snappy``, ``gzip`` or ``zstd`` inside Parquet. CSV flattens struct columns
(``error`` -> ``error_code``, ``error_message``, ``error_retryable``).
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fmf_spark._deps import require
from fmf_spark.config.exporters import S3ExporterConfig
from fmf_spark.errors import ConfigError, ExportAuthError, ExportError, ExportThrottled
from fmf_spark.exporters.base import BatchContext, BatchResult, register_exporter
from fmf_spark.exporters.frames import flatten_structs

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from fmf_spark.config.secrets import SecretResolver

CONNECTOR_TYPE = "s3"
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_TEXT_CODECS = {"none": None, "gzip": "gzip", "zstd": "zstd"}
_TEXT_EXT = {"gzip": ".gz", "zstd": ".zst"}
_RESULT_SCHEMA = "key string, rows long"


def object_prefix(cfg: S3ExporterConfig, run_id: str) -> str:
    """The key prefix of a run's objects (no leading or trailing slash)."""
    return cfg.prefix.replace("${run_id}", run_id).strip("/")


def object_name(batch_id: int, partition: int, fmt: str, compression: str) -> str:
    """The deterministic file name of one task's output for one batch."""
    ext = {"jsonl": ".jsonl", "csv": ".csv", "parquet": ".parquet"}[fmt]
    if fmt != "parquet":
        ext += _TEXT_EXT.get(compression, "")
    return f"part-{batch_id:05d}-{partition:05d}{ext}"


def s3_client(region: str | None, endpoint_url: str | None) -> Any:
    boto3 = require("boto3")
    config = require("botocore.config").Config(
        retries={"max_attempts": 8, "mode": "adaptive"}, user_agent_extra="fmf_spark"
    )
    return boto3.client("s3", region_name=region, endpoint_url=endpoint_url, config=config)


def _aws_error(exc: Exception, what: str) -> ExportError:
    response = getattr(exc, "response", None)
    code = ""
    message = str(exc)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        message = str(response.get("Error", {}).get("Message", "")) or message
    text = f"{what}: {code or type(exc).__name__}: {message}".rstrip(": ")
    if code in {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}:
        return ExportAuthError(text, hint="check the identity may write to the bucket")
    if code in {"SlowDown", "Throttling", "ThrottlingException", "503"}:
        return ExportThrottled(text)
    return ExportError(text)


class S3Exporter:
    """Writes micro-batches as objects on S3 (see the module docstring)."""

    def __init__(self, name: str, cfg: S3ExporterConfig) -> None:
        self.name = name
        self.cfg = cfg
        if cfg.format == "parquet":
            if cfg.compression not in {"none", "snappy", "gzip", "zstd"}:
                raise ConfigError(f"sink '{name}': parquet compression {cfg.compression}")
        elif cfg.compression not in _TEXT_CODECS:
            raise ConfigError(
                f"sink '{name}': {cfg.format} supports compression none, gzip or zstd, "
                f"not {cfg.compression}"
            )

    def precheck(self) -> None:
        client = s3_client(self.cfg.region, self.cfg.endpoint_url)
        try:
            client.head_bucket(Bucket=self.cfg.bucket)
        except Exception as exc:
            raise _aws_error(exc, f"sink '{self.name}': bucket {self.cfg.bucket}") from None

    def write_batch(self, df: DataFrame, ctx: BatchContext) -> BatchResult:
        cfg = self.cfg
        missing = [c for c in cfg.partition_by if c not in df.columns]
        if missing:
            raise ConfigError(
                f"sink '{self.name}': partition_by column(s) {missing} not in outputs"
            )
        if cfg.format == "csv":
            df = flatten_structs(df)
        prefix = object_prefix(cfg, ctx.run_id)
        writer = _PartitionWriter(cfg, prefix, ctx.batch_id)
        written = df.mapInArrow(writer, _RESULT_SCHEMA).collect()
        keys = {row["key"] for row in written}
        rows = sum(int(row["rows"]) for row in written)
        self._delete_stale(prefix, ctx.batch_id, keys)
        return BatchResult(written=rows)

    def _delete_stale(self, prefix: str, batch_id: int, keep: set[str]) -> None:
        client = s3_client(self.cfg.region, self.cfg.endpoint_url)
        pattern = re.compile(rf"(^|/)part-{batch_id:05d}-\d{{5}}\.")
        stale: list[str] = []
        try:
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.cfg.bucket, Prefix=f"{prefix}/"
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    if pattern.search(obj["Key"]) and obj["Key"] not in keep:
                        stale.append(obj["Key"])
            for i in range(0, len(stale), 1000):
                client.delete_objects(
                    Bucket=self.cfg.bucket,
                    Delete={"Objects": [{"Key": k} for k in stale[i : i + 1000]], "Quiet": True},
                )
        except Exception as exc:
            raise _aws_error(exc, f"sink '{self.name}': removing stale objects") from None


class _PartitionWriter:
    """The ``mapInArrow`` function: one task partition -> objects on S3."""

    def __init__(self, cfg: S3ExporterConfig, prefix: str, batch_id: int) -> None:
        self.cfg = cfg
        self.prefix = prefix
        self.batch_id = batch_id

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        from pyspark import TaskContext

        task = TaskContext.get()
        partition = task.partitionId() if task is not None else 0
        name = object_name(self.batch_id, partition, self.cfg.format, self.cfg.compression)
        files: dict[tuple[str, ...], _ObjectFile] = {}
        try:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                for values, part in _split(batch, self.cfg.partition_by):
                    if values not in files:
                        files[values] = _ObjectFile(self.cfg, part.schema)
                    files[values].write(part)
            client = s3_client(self.cfg.region, self.cfg.endpoint_url)
            keys, rows = [], []
            for values, f in files.items():
                key = "/".join(
                    [self.prefix, *_hive_dirs(self.cfg.partition_by, values), name]
                ).lstrip("/")
                f.close()
                try:
                    client.upload_file(f.path, self.cfg.bucket, key)
                except Exception as exc:
                    raise _aws_error(exc, f"uploading s3://{self.cfg.bucket}/{key}") from None
                keys.append(key)
                rows.append(f.rows)
        finally:
            for f in files.values():
                f.discard()
        yield pa.RecordBatch.from_pydict(
            {"key": keys, "rows": rows},
            schema=pa.schema([("key", pa.string()), ("rows", pa.int64())]),
        )


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


class _ObjectFile:
    """A local temporary file receiving one object's rows in the configured format."""

    def __init__(self, cfg: S3ExporterConfig, schema: pa.Schema) -> None:
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
        text_codec = _TEXT_CODECS[cfg.compression]
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


def _factory(name: str, cfg: Any, resolver: SecretResolver | None) -> S3Exporter:
    return S3Exporter(name, cfg)


register_exporter(CONNECTOR_TYPE, _factory)
