"""Delta sink: append, or MERGE upsert by ``key_fields``, to a path or a catalog table.

Idempotence of one micro-batch: every write carries ``txnAppId = fmf-<stream id>`` and
``txnVersion = batch_id`` (DataFrameWriter options for append; the session confs
``spark.databricks.delta.write.txnAppId``/``txnVersion`` for MERGE). Delta records the
pair in the commit; a replayed batch with a version it has already committed for that
app id is skipped by Delta itself. The stream id is the streaming query id, stored in
the checkpoint: a *new* checkpoint gets a new app id, so its batches 0, 1, 2... are
never mistaken for the old checkpoint's and silently skipped.

Schema evolution is opt-in (``schema_evolution: true``): ``mergeSchema`` for append,
``spark.databricks.delta.schema.autoMerge.enabled`` for MERGE. Without it a batch whose
columns differ from the target fails with ``export.schema_mismatch``.

Only SQL and the DataFrame API (``DESCRIBE HISTORY``, ``MERGE INTO`` from a temp view),
no ``delta.tables.DeltaTable``: the Python ``DeltaTable`` needs the JVM on a classic
session and a Delta Connect plugin on the server under Spark Connect, while SQL works
on classic and Connect sessions, Spark 3.5 and 4.x alike.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from fmf_spark.config.base import Location
from fmf_spark.config.exporters import ExporterConfig
from fmf_spark.errors import ExportConflict, ExportError, ExportSchemaMismatch
from fmf_spark.exporters.base import BatchContext, BatchResult, register_exporter

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from fmf_spark.config.secrets import SecretResolver

EXPORTER_TYPE = "delta"
_TXN_APP = "spark.databricks.delta.write.txnAppId"
_TXN_VERSION = "spark.databricks.delta.write.txnVersion"
_AUTO_MERGE = "spark.databricks.delta.schema.autoMerge.enabled"
_MAX_CONFLICT_RETRIES = 3


class DeltaTargetConfig(ExporterConfig):
    """A Delta table by path or by catalog name (the Delta and Fabric sinks)."""

    path: Location | None = None
    table: str | None = Field(default=None, description="Catalog table name instead of a path.")
    mode: Literal["append", "merge"] = "merge"
    schema_evolution: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> DeltaTargetConfig:
        if (self.path is None) == (self.table is None):
            raise ValueError("set exactly one of path or table")
        return self


class DeltaExporterConfig(DeltaTargetConfig):
    type: Literal["delta"] = "delta"


class DeltaExporter:
    """Writes micro-batches to a Delta table (see the module docstring)."""

    def __init__(self, name: str, cfg: DeltaTargetConfig) -> None:
        self.name = name
        self.cfg = cfg

    @property
    def target(self) -> str:
        return self.cfg.path or self.cfg.table or ""

    @property
    def _ref(self) -> str:
        """The table in SQL: ``delta.`path``` or the catalog name."""
        if self.cfg.path is not None:
            return "delta.`{}`".format(self.cfg.path.replace("`", "``"))
        return self.cfg.table or ""

    def precheck(self) -> None:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
        if spark is None or not self._exists(spark):
            return  # created by the first batch
        missing = [k for k in self.cfg.key_fields if k not in self._target(spark).columns]
        if self.cfg.mode == "merge" and missing:
            raise ExportSchemaMismatch(
                f"sink '{self.name}': target {self.target} lacks key column(s) {missing}"
            )

    def _exists(self, spark: SparkSession) -> bool:
        if self.cfg.path is None:
            return bool(spark.catalog.tableExists(self.cfg.table or ""))
        try:
            self._last_commit(spark)
        except Exception:  # not a Delta table (yet): the first batch creates it
            return False
        return True

    def _target(self, spark: SparkSession) -> DataFrame:
        if self.cfg.path is not None:
            return spark.read.format("delta").load(self.cfg.path)
        return spark.table(self.cfg.table or "")

    def _last_commit(self, spark: SparkSession) -> tuple[int, dict[str, str]]:
        """(version, operationMetrics) of the table's newest commit."""
        row = (
            spark.sql(f"DESCRIBE HISTORY {self._ref} LIMIT 1")
            .select("version", "operationMetrics")
            .first()
        )
        if row is None:
            return -1, {}
        return int(row[0]), dict(row[1] or {})

    def _version(self, spark: SparkSession) -> int:
        return self._last_commit(spark)[0]

    def write_batch(self, df: DataFrame, ctx: BatchContext) -> BatchResult:
        spark = df.sparkSession
        app_id = f"fmf-{ctx.stream_id}"
        for attempt in range(_MAX_CONFLICT_RETRIES + 1):
            try:
                exists = self._exists(spark)
                if self.cfg.mode == "append" or not exists:
                    return self._append(df, spark, app_id, ctx.batch_id, exists)
                return self._merge(df, spark, app_id, ctx.batch_id)
            except Exception as exc:
                if _is_conflict(exc) and attempt < _MAX_CONFLICT_RETRIES:
                    continue
                raise _translate(exc, self.name, self.target) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _append(
        self, df: DataFrame, spark: SparkSession, app_id: str, version: int, existed: bool
    ) -> BatchResult:
        before = self._version(spark) if existed else -1
        writer = (
            df.write.format("delta")
            .mode("append")
            .option("txnAppId", app_id)
            .option("txnVersion", version)
        )
        if self.cfg.schema_evolution:
            writer = writer.option("mergeSchema", "true")
        if self.cfg.path is not None:
            writer.save(self.cfg.path)
        else:
            writer.saveAsTable(self.cfg.table or "")
        # counted from the commit's metrics, not by reading the batch a second time
        last, metrics = self._last_commit(spark)
        if last < 0 or (existed and last == before):
            return BatchResult(skipped=True)
        return BatchResult(written=int(metrics.get("numOutputRows", 0)))

    def _merge(self, df: DataFrame, spark: SparkSession, app_id: str, version: int) -> BatchResult:
        keys = self.cfg.key_fields
        cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
        if not self.cfg.schema_evolution:
            _check_same_columns(df, self._target(spark), self.name, self.target)
        before = self._version(spark)
        view = f"fmf_merge_{uuid.uuid4().hex}"
        df.createOrReplaceTempView(view)
        # The txn confs (and schema evolution) are read by MERGE from this batch's session.
        confs = {_TXN_APP: app_id, _TXN_VERSION: str(version)}
        if self.cfg.schema_evolution:
            confs[_AUTO_MERGE] = "true"
        for key, value in confs.items():
            spark.conf.set(key, value)
        try:
            metrics = spark.sql(
                f"MERGE INTO {self._ref} AS t USING {view} AS s ON {cond} "
                "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
            ).first()
        finally:
            for key in confs:
                spark.conf.unset(key)
            spark.catalog.dropTempView(view)
        last, commit = self._last_commit(spark)
        if last == before:
            return BatchResult(skipped=True)
        if metrics is not None and "num_inserted_rows" in metrics.asDict():
            inserted = int(metrics["num_inserted_rows"])
            updated = int(metrics["num_updated_rows"])
        else:
            # a MERGE without a metrics row (older Delta): the commit holds the counts
            inserted = int(commit.get("numTargetRowsInserted", 0))
            updated = int(commit.get("numTargetRowsUpdated", 0))
        return BatchResult(written=inserted + updated, updated=updated)


def _check_same_columns(df: DataFrame, target: DataFrame, name: str, where: str) -> None:
    src = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    dst = {f.name: f.dataType.simpleString() for f in target.schema.fields}
    if src != dst:
        extra = sorted(set(src) - set(dst))
        lacking = sorted(set(dst) - set(src))
        changed = sorted(k for k in set(src) & set(dst) if src[k] != dst[k])
        raise ExportSchemaMismatch(
            f"sink '{name}': outputs columns differ from target {where} "
            f"(new: {extra}, missing: {lacking}, type changed: {changed})",
            hint="set schema_evolution: true on the sink to add new columns",
        )


def _is_conflict(exc: BaseException) -> bool:
    return "Concurrent" in type(exc).__name__ or "ConcurrentModification" in str(exc)[:300]


def _translate(exc: Exception, name: str, target: str) -> ExportError:
    if isinstance(exc, ExportError):
        return exc
    text = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
    if _is_conflict(exc):
        return ExportConflict(f"sink '{name}': concurrent writers on {target}: {text}")
    if "schema" in text.lower() and ("mismatch" in text.lower() or "merge" in text.lower()):
        return ExportSchemaMismatch(
            f"sink '{name}': {text}", hint="set schema_evolution: true on the sink"
        )
    return ExportError(f"sink '{name}': writing {target} failed: {text}")


def _factory(name: str, cfg: DeltaExporterConfig, resolver: SecretResolver) -> DeltaExporter:
    return DeltaExporter(name, cfg)


register_exporter(EXPORTER_TYPE, DeltaExporterConfig, _factory)
