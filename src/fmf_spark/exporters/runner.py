"""Export a run's outputs table to a sink through Structured Streaming ``foreachBatch``.

Why streaming for a batch export: the streaming checkpoint records, before a
micro-batch runs, exactly which Delta files (offsets) it covers, and records its
commit after ``foreachBatch`` returns. A job killed mid-export is rerun with the same
checkpoint: finished batches are not repeated, and the one in flight is replayed with
the *same* ``batch_id`` and the *same* rows. Every sink makes the write of one batch
idempotent (Delta ``txnAppId``/``txnVersion``, deterministic S3 object names, upserts by
key), so the sink ends up holding each row exactly once. ``trigger(availableNow=True)``
processes what exists now and stops, so this is a batch job with a checkpoint.

On a classic session ``foreachBatch`` runs in this driver process, so the batch
callback shares the counts and the query id with this function. Under Spark Connect
(Databricks serverless and standard access mode, ``spark.remote``) the callback is
pickled and runs in a Python process next to the server, so nothing it does reaches
this process's memory: it reads the query id from the checkpoint's ``metadata`` file,
and each batch appends its counts (or its error) to a small Delta table next to the
checkpoint (``<checkpoint>/_fmf_batches``), tagged with an id of this call; this
function reads its own rows back once the query has stopped.

Checkpoints live per sink: ``<checkpoint_root>/<sink>``; the default root is
``artefacts/<run_id>/_checkpoints/export`` (the run folder holding ``outputs/``).

A :class:`Sink` is a configured sink, built (secrets resolved) and ready: the
composition root builds and prechecks every sink a run needs before any Spark work,
then :meth:`Sink.export` streams into it. :func:`export_table` does all three for one
call.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fmf_spark.errors import ConfigError, ExportError, FmfError, recover_error
from fmf_spark.exporters.base import (
    BatchContext,
    BatchResult,
    Exporter,
    ExportResult,
    build_exporter,
    failpoint,
)
from fmf_spark.exporters.frames import dedup_latest
from fmf_spark.observability.logging import get_logger
from fmf_spark.spark import is_connect
from fmf_spark.storage import join_uri, parent_uri

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

    from fmf_spark.config.exporters import ExporterConfig
    from fmf_spark.config.models import FmfConfig
    from fmf_spark.config.secrets import SecretResolver

log = get_logger(__name__)

#: how long the first batch waits for the query id (start() returns in well under 1 s)
_START_TIMEOUT_S = 600


def default_checkpoint(input_path: str, sink_name: str, checkpoint_root: str | None = None) -> str:
    """Where the checkpoint of one sink lives for a given outputs table."""
    root = checkpoint_root or join_uri(parent_uri(input_path), "_checkpoints", "export")
    return join_uri(root, sink_name)


def errors_location(input_path: str, sink_name: str) -> str:
    """The Delta table of the rows ``sink_name`` rejected for this outputs table."""
    return join_uri(parent_uri(input_path), "export_errors", sink_name)


@dataclass
class Sink:
    """One configured sink, built and ready to export into.

    Attributes:
        name: the sink's name (a key of ``exporters``).
        config: its validated config entry.
        exporter: the implementation, secrets resolved.
    """

    name: str
    config: ExporterConfig
    exporter: Exporter

    @classmethod
    def build(cls, name: str, config: FmfConfig, resolver: SecretResolver | None = None) -> Sink:
        """Build the sink named ``name`` in ``config.exporters``.

        Raises:
            ConfigError: no such sink, or an unknown type.
        """
        cfg = config.exporters.get(name)
        if cfg is None:
            known = ", ".join(sorted(config.exporters)) or "none configured"
            raise ConfigError(f"no exporter named '{name}' (configured: {known})")
        if resolver is None:
            from fmf_spark.config.secrets import SecretResolver

            resolver = SecretResolver(config.secrets)
        return cls(name, cfg, build_exporter(name, cfg, resolver))

    def precheck(self) -> None:
        """Reachability and permissions, before any Spark work (raises ExportError)."""
        self.exporter.precheck()

    def export(
        self,
        spark: SparkSession,
        input_path: str,
        *,
        run_id: str,
        checkpoint_root: str | None = None,
    ) -> ExportResult:
        """Stream the outputs Delta table at ``input_path`` into this sink.

        Args:
            spark: the session, classic or Spark Connect (see the module docstring).
            input_path: the outputs table, ``artefacts/<run_id>/outputs``.
            run_id: the run being exported (object names and paths use it).
            checkpoint_root: where per-sink checkpoints go (default next to
                ``input_path``); the sink's own ``checkpoint`` setting wins over both.

        Raises:
            ExportError: the sink failed; rerun the same call to resume where it stopped.
        """
        checkpoint = self.config.checkpoint or default_checkpoint(
            input_path, self.name, checkpoint_root
        )
        if is_connect(spark):
            return self._export_connect(spark, input_path, run_id, checkpoint)
        writer = _BatchWriter(self, run_id, errors_location(input_path, self.name))
        query = (
            _read_outputs(spark, self.config, input_path)
            .writeStream.queryName(f"fmf_export_{self.name}_{run_id}".replace("-", "_"))
            .option("checkpointLocation", checkpoint)
            .trigger(availableNow=True)
            .foreachBatch(writer)
            .start()
        )
        writer.started(str(query.id))
        _await(query, writer, self.name, checkpoint)
        log.info("export %s done: %s", self.name, writer.result.as_dict())
        return writer.result

    def _export_connect(
        self, spark: SparkSession, input_path: str, run_id: str, checkpoint: str
    ) -> ExportResult:
        """The same stream under Spark Connect: counts come back through the ledger."""
        writer = _RemoteBatchWriter(
            self, run_id, errors_location(input_path, self.name), checkpoint, uuid.uuid4().hex
        )
        query = (
            _read_outputs(spark, self.config, input_path)
            .writeStream.queryName(f"fmf_export_{self.name}_{run_id}".replace("-", "_"))
            .option("checkpointLocation", checkpoint)
            .trigger(availableNow=True)
            .foreachBatch(writer)
            .start()
        )
        failure: Exception | None = None
        try:
            query.awaitTermination()
        except Exception as exc:
            failure = exc
        finally:
            if query.isActive:
                query.stop()
        result, error = writer.collect(spark)
        if failure is not None:
            raised = recover_error(failure)
            if raised is None and error is not None:
                raised = ExportError(error[1], code=error[0])
            if isinstance(raised, FmfError):
                raise raised from failure
            raise ExportError(
                f"export to '{self.name}' failed in batch processing: {_first_line(failure)}",
                hint="rerun the same export: it resumes from the checkpoint " + checkpoint,
                retryable=True,
            ) from failure
        log.info("export %s done: %s", self.name, result.as_dict())
        return result


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
    """Build the sink ``sink_name``, precheck it, export the outputs table into it.

    Args:
        spark: the session, classic or Spark Connect (see the module docstring).
        config: the fmf config; ``config.exporters[sink_name]`` describes the sink.
        sink_name: a key of ``exporters`` in ``fmf.yaml``.
        input_path: the outputs table, ``artefacts/<run_id>/outputs``.
        run_id: the run being exported (object names and paths use it).
        checkpoint_root: see :meth:`Sink.export`.
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
    sink = Sink.build(sink_name, config, resolver)
    sink.precheck()
    return sink.export(spark, input_path, run_id=run_id, checkpoint_root=checkpoint_root)


def _read_outputs(spark: SparkSession, cfg: ExporterConfig, input_path: str) -> DataFrame:
    """The outputs table as a stream, in micro-batches bounded by the sink's settings."""
    reader = spark.readStream.format("delta")
    if cfg.max_files_per_trigger is not None:
        reader = reader.option("maxFilesPerTrigger", str(cfg.max_files_per_trigger))
    if cfg.max_bytes_per_trigger is not None:
        reader = reader.option("maxBytesPerTrigger", cfg.max_bytes_per_trigger)
    try:
        return reader.load(input_path)
    except Exception as exc:
        raise ExportError(
            f"cannot read the outputs table at {input_path}: {_first_line(exc)}",
            hint="pass the run's outputs folder, artefacts/<run_id>/outputs",
        ) from exc


@dataclass
class _BatchWriter:
    """The ``foreachBatch`` callback: dedup, write, record rejected rows, count."""

    sink: Sink
    run_id: str
    errors_path: str
    result: ExportResult = field(init=False)
    #: the first FmfError raised in a batch: the streaming error keeps only its text
    raised: FmfError | None = field(default=None, init=False)
    _stream_id: str = field(default="", init=False)
    _started: threading.Event = field(default_factory=threading.Event, init=False)

    def __post_init__(self) -> None:
        self.result = ExportResult(sink=self.sink.name)
        self._dedup = dedup_latest(self.sink.config.key_fields, self.sink.config.order_column)

    def started(self, stream_id: str) -> None:
        """The query id is stored in the checkpoint: stable across restarts of the same
        checkpoint, new for a new one. The first batch waits until it is known."""
        self._stream_id = stream_id
        self._started.set()

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        try:
            self._write(batch_df, int(batch_id))
        except FmfError as exc:
            self.raised = exc
            raise

    def _write(self, batch_df: DataFrame, batch_id: int) -> None:
        if not self._started.wait(timeout=_START_TIMEOUT_S):
            raise ExportError("streaming query did not report its id")
        ctx = BatchContext(run_id=self.run_id, batch_id=batch_id, stream_id=self._stream_id)
        batch = self.sink.exporter.write_batch(batch_df.transform(self._dedup), ctx)
        if batch.failures:
            _write_failures(batch_df.sparkSession, batch, ctx, self.errors_path)
            self.result.errors_path = self.errors_path
        failpoint("export.after_batch_written", sink=self.sink.name, batch_id=batch_id)
        self.result.add(batch)
        _log_batch(self.sink.name, batch_id, batch)


def _log_batch(sink: str, batch_id: int, batch: BatchResult) -> None:
    """The one log line of a written micro-batch (classic and Connect writers alike)."""
    log.info(
        "export %s batch %d: %d written, %d updated, %d failed%s",
        sink,
        batch_id,
        batch.written,
        batch.updated,
        batch.failed,
        " (already committed, skipped)" if batch.skipped else "",
    )


#: one row per micro-batch a Connect export processed (see the module docstring)
_LEDGER_DDL = (
    "call_id STRING, stream_id STRING, batch_id BIGINT, written BIGINT, updated BIGINT, "
    "failed BIGINT, retries BIGINT, skipped BOOLEAN, errors_path STRING, "
    "error_code STRING, error_message STRING"
)


@dataclass
class _RemoteBatchWriter:
    """The ``foreachBatch`` callback under Spark Connect: it runs next to the server.

    It is pickled with the sink (secrets already resolved, as for executors) and shares
    no memory with :meth:`Sink.export`: the query id comes from the checkpoint, the
    counts and a batch's error go to the ledger table, tagged with ``call_id``.
    """

    sink: Sink
    run_id: str
    errors_path: str
    checkpoint: str
    call_id: str
    _stream_id: str = field(default="", init=False)

    @property
    def ledger(self) -> str:
        return join_uri(self.checkpoint, "_fmf_batches")

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        spark = batch_df.sparkSession
        batch_id = int(batch_id)
        try:
            ctx = BatchContext(run_id=self.run_id, batch_id=batch_id, stream_id=self._stream(spark))
            dedup = dedup_latest(self.sink.config.key_fields, self.sink.config.order_column)
            batch = self.sink.exporter.write_batch(batch_df.transform(dedup), ctx)
            if batch.failures:
                _write_failures(spark, batch, ctx, self.errors_path)
            failpoint("export.after_batch_written", sink=self.sink.name, batch_id=batch_id)
        except Exception as exc:
            code = exc.code if isinstance(exc, FmfError) else "export.failed"
            try:
                self._record(spark, batch_id, BatchResult(), (code, _first_line(exc)))
            except Exception as ledger_exc:  # the batch's own error matters more
                log.warning("export %s: cannot record the error: %s", self.sink.name, ledger_exc)
            raise
        self._record(spark, batch_id, batch, None)
        _log_batch(self.sink.name, batch_id, batch)

    def _stream(self, spark: SparkSession) -> str:
        """The query id: Spark writes it to ``<checkpoint>/metadata`` before batch 0."""
        if not self._stream_id:
            row = spark.read.text(join_uri(self.checkpoint, "metadata")).first()
            if row is None:
                raise ExportError(f"no query id in the checkpoint {self.checkpoint}")
            self._stream_id = str(json.loads(row[0])["id"])
        return self._stream_id

    def _record(
        self,
        spark: SparkSession,
        batch_id: int,
        batch: BatchResult,
        error: tuple[str, str] | None,
    ) -> None:
        row = (
            self.call_id,
            self._stream_id,
            batch_id,
            batch.written,
            batch.updated,
            batch.failed,
            batch.retries,
            batch.skipped,
            self.errors_path if batch.failures else None,
            None if error is None else error[0],
            None if error is None else error[1],
        )
        (
            spark.createDataFrame([row], _LEDGER_DDL)
            .write.format("delta")
            .mode("append")
            .save(self.ledger)
        )

    def collect(self, spark: SparkSession) -> tuple[ExportResult, tuple[str, str] | None]:
        """This call's counts, and the (code, message) of a batch that failed."""
        from pyspark.sql import functions as F

        result = ExportResult(sink=self.sink.name)
        try:
            rows = (
                spark.read.format("delta")
                .load(self.ledger)
                .where(F.col("call_id") == self.call_id)
                .orderBy("batch_id")
                .collect()
            )
        except Exception as exc:  # no ledger: no batch ran (nothing new to export)
            log.debug("export %s: no batch ledger at %s (%s)", self.sink.name, self.ledger, exc)
            return result, None
        error: tuple[str, str] | None = None
        for row in rows:
            if row["error_code"] is not None:
                error = (row["error_code"], row["error_message"] or "")
                continue
            result.add(
                BatchResult(
                    written=row["written"],
                    updated=row["updated"],
                    failed=row["failed"],
                    retries=row["retries"],
                    skipped=row["skipped"],
                )
            )
            if row["errors_path"]:
                result.errors_path = row["errors_path"]
        return result, error


def _await(query: StreamingQuery, writer: _BatchWriter, sink: str, checkpoint: str) -> None:
    """Wait for the query; a batch's own error is raised as itself."""
    try:
        query.awaitTermination()
    except Exception as exc:
        if writer.raised is not None:
            raise writer.raised from exc
        raise ExportError(
            f"export to '{sink}' failed in batch processing: {_first_line(exc)}",
            hint="rerun the same export: it resumes from the checkpoint " + checkpoint,
            retryable=True,
        ) from exc
    finally:
        if query.isActive:
            query.stop()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__


def _write_failures(
    spark: SparkSession, batch: BatchResult, ctx: BatchContext, errors_path: str
) -> None:
    """Append the rejected rows' keys and errors to a Delta table, once per batch."""
    from fmf_spark.errors import error_struct
    from fmf_spark.schemas import EXPORT_FAILURES_SCHEMA

    rows = [
        (
            ctx.run_id,
            ctx.batch_id,
            f.key,
            "error",
            error_struct(f.code, f.message, f.retryable),
        )
        for f in batch.failures
    ]
    (
        spark.createDataFrame(rows, EXPORT_FAILURES_SCHEMA)
        .write.format("delta")
        .mode("append")
        .option("txnAppId", f"fmf-errors-{ctx.stream_id}")
        .option("txnVersion", ctx.batch_id)
        .save(errors_path)
    )
