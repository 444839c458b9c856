"""Export a run's outputs table to a sink through Structured Streaming ``foreachBatch``.

Why streaming for a batch export: the streaming checkpoint records, before a
micro-batch runs, exactly which Delta files (offsets) it covers, and records its
commit after ``foreachBatch`` returns. A job killed mid-export is rerun with the same
checkpoint: finished batches are not repeated, and the one in flight is replayed with
the *same* ``batch_id`` and the *same* rows. Every sink makes the write of one batch
idempotent (Delta ``txnAppId``/``txnVersion``, deterministic S3 object names, upserts by
key), so the sink ends up holding each row exactly once. ``trigger(availableNow=True)``
processes what exists now and stops, so this is a batch job with a checkpoint.

Classic Spark only, for now: ``foreachBatch`` runs in this driver process, so the
batch callback shares the counts and the query id with this function. Under Spark
Connect (Databricks shared/serverless compute) the callback runs in another process;
that mode is refused with a clear error until the counts travel another way.

Checkpoints live per sink: ``<checkpoint_root>/<sink>``; the default root is
``artefacts/<run_id>/_checkpoints/export`` (the run folder holding ``outputs/``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from fmf_spark.errors import ConfigError, ExportError, FmfError
from fmf_spark.exporters.base import (
    BatchContext,
    BatchResult,
    ExportResult,
    build_exporter,
    failpoint,
)
from fmf_spark.exporters.frames import dedup_latest
from fmf_spark.observability.logging import get_logger

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from fmf_spark.config.models import FmfConfig
    from fmf_spark.config.secrets import SecretResolver

log = get_logger(__name__)


def _run_dir(input_path: str) -> str:
    return input_path.rstrip("/").rsplit("/", 1)[0] if "/" in input_path.rstrip("/") else "."


def default_checkpoint(input_path: str, sink_name: str, checkpoint_root: str | None = None) -> str:
    """Where the checkpoint of one sink lives for a given outputs table."""
    root = checkpoint_root or f"{_run_dir(input_path)}/_checkpoints/export"
    return f"{root.rstrip('/')}/{sink_name}"


def export_table(
    spark: SparkSession,
    config: FmfConfig,
    sink_name: str,
    input_path: str,
    *,
    run_id: str,
    checkpoint_root: str | None = None,
    resolver: SecretResolver | None = None,
) -> ExportResult:
    """Export the outputs Delta table at ``input_path`` to the sink ``sink_name``.

    Args:
        spark: the session (classic Spark: ``foreachBatch`` runs in this driver process).
        config: the fmf config; ``config.exporters[sink_name]`` describes the sink.
        sink_name: a key of ``exporters`` in ``fmf.yaml``.
        input_path: the outputs table, ``artefacts/<run_id>/outputs``.
        run_id: the run being exported (object names and paths use it).
        checkpoint_root: where per-sink checkpoints go (default next to ``input_path``);
            the sink's own ``checkpoint`` setting wins over both.
        resolver: resolves the sink's secrets on the driver (built from
            ``config.secrets`` when omitted).

    Returns:
        Counts of this call: rows written / updated / failed, batches.

    Raises:
        ExportError: the sink failed; rerun the same call to resume where it stopped.

    Example:
        >>> result = export_table(spark, cfg, "outputs_delta",
        ...                       "artefacts/r1/outputs", run_id="r1")  # doctest: +SKIP
        >>> result.as_dict()["rows_written"]  # doctest: +SKIP
        120
    """
    from pyspark.sql.utils import is_remote

    if is_remote():
        raise ExportError(
            "export_table does not support Spark Connect sessions yet",
            code="export.unsupported",
            hint="run the export on a classic (single-user / job) cluster",
        )
    cfg = config.exporters.get(sink_name)
    if cfg is None:
        known = ", ".join(sorted(config.exporters)) or "none configured"
        raise ConfigError(f"no exporter named '{sink_name}' (configured: {known})")
    if resolver is None:
        from fmf_spark.config.secrets import SecretResolver

        resolver = SecretResolver(config.secrets)
    exporter = build_exporter(sink_name, cfg, resolver)
    exporter.precheck()

    checkpoint = cfg.checkpoint or default_checkpoint(input_path, sink_name, checkpoint_root)
    errors_path = f"{_run_dir(input_path)}/export_errors/{sink_name}"
    result = ExportResult(sink=sink_name)
    dedup = dedup_latest(cfg.key_fields, cfg.order_column)

    # The query id is stored in the checkpoint: stable across restarts of the same
    # checkpoint, new for a new one. The first batch waits until we know it.
    started = threading.Event()
    holder: dict[str, str] = {}
    raised: dict[str, FmfError] = {}

    def write(batch_df: DataFrame, batch_id: int) -> None:
        try:
            _write(batch_df, batch_id)
        except FmfError as exc:
            # the streaming error that reaches awaitTermination() keeps only the text
            raised["error"] = exc
            raise

    def _write(batch_df: DataFrame, batch_id: int) -> None:
        if not started.wait(timeout=600):  # start() returns in well under a second
            raise ExportError("streaming query did not report its id")
        ctx = BatchContext(run_id=run_id, batch_id=int(batch_id), stream_id=holder["id"])
        batch = exporter.write_batch(batch_df.transform(dedup), ctx)
        if batch.failures:
            _write_failures(batch_df, batch, ctx, errors_path)
            result.errors_path = errors_path
        failpoint("export.after_batch_written", sink=sink_name, batch_id=int(batch_id))
        result.add(batch)
        log.info(
            "export %s batch %d: %d written, %d updated, %d failed%s",
            sink_name,
            batch_id,
            batch.written,
            batch.updated,
            batch.failed,
            " (already committed, skipped)" if batch.skipped else "",
        )

    reader = spark.readStream.format("delta")
    if cfg.max_files_per_trigger is not None:
        reader = reader.option("maxFilesPerTrigger", str(cfg.max_files_per_trigger))
    if cfg.max_bytes_per_trigger is not None:
        reader = reader.option("maxBytesPerTrigger", cfg.max_bytes_per_trigger)
    try:
        stream = reader.load(input_path)
    except Exception as exc:
        raise ExportError(
            f"cannot read the outputs table at {input_path}: {_first_line(exc)}",
            hint="pass the run's outputs folder, artefacts/<run_id>/outputs",
        ) from exc

    query = (
        stream.writeStream.queryName(f"fmf_export_{sink_name}_{run_id}".replace("-", "_"))
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .foreachBatch(write)
        .start()
    )
    holder["id"] = str(query.id)
    started.set()
    try:
        query.awaitTermination()
    except Exception as exc:
        cause = raised.get("error")
        if cause is not None:
            raise cause from exc
        raise ExportError(
            f"export to '{sink_name}' failed in batch processing: {_first_line(exc)}",
            hint="rerun the same export: it resumes from the checkpoint " + checkpoint,
            retryable=True,
        ) from exc
    finally:
        if query.isActive:
            query.stop()
    log.info("export %s done: %s", sink_name, result.as_dict())
    return result


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__


def _write_failures(
    batch_df: DataFrame, batch: BatchResult, ctx: BatchContext, errors_path: str
) -> None:
    """Append the rejected rows' keys and errors to a Delta table, once per batch."""
    from fmf_spark.schemas import ERROR_STRUCT

    spark = batch_df.sparkSession
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    schema = StructType(
        [
            StructField("run_id", StringType(), False),
            StructField("batch_id", LongType(), False),
            StructField("key", StringType(), False),
            StructField("status", StringType(), False),
            StructField("error", ERROR_STRUCT, False),
        ]
    )
    rows = [
        (ctx.run_id, ctx.batch_id, f.key, "error", (f.code, f.message[:2000], f.retryable))
        for f in batch.failures
    ]
    (
        spark.createDataFrame(rows, schema)
        .write.format("delta")
        .mode("append")
        .option("txnAppId", f"fmf-errors-{ctx.stream_id}")
        .option("txnVersion", ctx.batch_id)
        .save(errors_path)
    )
