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

import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from fmf_spark.config.exporters import ExporterConfig
from fmf_spark.errors import ConfigError
from fmf_spark.exporters.base import BatchContext, BatchResult, register_exporter
from fmf_spark.exporters.frames import flatten_structs
from fmf_spark.exporters.objects import TEXT_CODECS, ObjectTarget, PartitionWriter

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from fmf_spark.config.secrets import SecretResolver

EXPORTER_TYPE = "s3"


class S3ExporterConfig(ExporterConfig):
    type: Literal["s3"] = "s3"
    bucket: str
    prefix: str = "fmf/${run_id}"
    format: Literal["jsonl", "csv", "parquet"] = "jsonl"
    compression: Literal["none", "gzip", "snappy", "zstd"] = "none"
    partition_by: list[str] = Field(default_factory=list)
    region: str | None = None
    endpoint_url: str | None = None

    def target(self) -> ObjectTarget:
        return ObjectTarget(
            self.bucket,
            self.format,
            self.compression,
            list(self.partition_by),
            self.region,
            self.endpoint_url,
        )


def object_prefix(cfg: S3ExporterConfig, run_id: str) -> str:
    """The key prefix of a run's objects (no leading or trailing slash)."""
    return cfg.prefix.replace("${run_id}", run_id).strip("/")


class S3Exporter:
    """Writes micro-batches as objects on S3 (see the module docstring)."""

    def __init__(self, name: str, cfg: S3ExporterConfig) -> None:
        self.name = name
        self.cfg = cfg
        if cfg.format == "parquet":
            if cfg.compression not in {"none", "snappy", "gzip", "zstd"}:
                raise ConfigError(f"sink '{name}': parquet compression {cfg.compression}")
        elif cfg.compression not in TEXT_CODECS:
            raise ConfigError(
                f"sink '{name}': {cfg.format} supports compression none, gzip or zstd, "
                f"not {cfg.compression}"
            )

    def precheck(self) -> None:
        self.cfg.target().check(f"sink '{self.name}'")

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
        written = PartitionWriter(cfg.target(), prefix, ctx.batch_id).run(df)
        self._delete_stale(prefix, ctx.batch_id, set(written))
        return BatchResult(written=sum(written.values()))

    def _delete_stale(self, prefix: str, batch_id: int, keep: set[str]) -> None:
        target = self.cfg.target()
        what = f"sink '{self.name}': removing stale objects"
        pattern = re.compile(rf"(^|/)part-{batch_id:05d}-\d{{5}}\.")
        stale = [k for k in target.keys(f"{prefix}/", what) if pattern.search(k) and k not in keep]
        target.delete(stale, what)


def _factory(name: str, cfg: S3ExporterConfig, resolver: SecretResolver) -> S3Exporter:
    return S3Exporter(name, cfg)


register_exporter(EXPORTER_TYPE, S3ExporterConfig, _factory)
