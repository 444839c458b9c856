"""Redshift and PostgreSQL sinks: load a staging table, then MERGE by key, in one transaction.

One micro-batch is one transaction on the driver's connection::

    BEGIN;
    CREATE TABLE IF NOT EXISTS <target> (... PRIMARY KEY (<key_fields>));   -- first batch
    CREATE TEMP TABLE <stage> (<batch columns>);
    COPY <stage> ...;            -- Redshift: FROM 's3://<staging>/...' FORMAT AS PARQUET
                                 -- PostgreSQL: FROM STDIN, rows streamed from the executors
    MERGE INTO <target> USING <stage> ON <keys>
        WHEN MATCHED THEN UPDATE SET ... WHEN NOT MATCHED THEN INSERT ...;
    COMMIT;                      -- the temporary stage disappears with the session

A failure anywhere before COMMIT rolls everything back: the target is unchanged, and
the rerun (same checkpoint, same batch id, same rows) does the whole batch again.
MERGE by key makes a replayed batch leave the target as if written once.

Serialization conflicts (SQLSTATE 40001, Redshift's "Serializable isolation
violation"; deadlocks 40P01; a concurrent insert of the same key 23505) roll back and
retry the transaction up to ``max_conflict_retries`` times, then fail with
``export.conflict``. A failed COPY reports the load error detail (PostgreSQL: the
line and column from the error context; Redshift: ``sys_load_error_detail``).

Redshift staging: executors write the batch as Parquet to
``s3://<staging_bucket>/<staging_prefix>/<run_id>/<sink>/<stream>/batch-<id>/`` (the S3
sink's writer), the COPY uses ``iam_role``; the staged objects are deleted after the
commit. PostgreSQL: rows come to the driver one partition at a time
(``toLocalIterator``), so the driver holds at most one partition.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from fmf_spark._deps import require
from fmf_spark.config.base import SecretRef
from fmf_spark.config.exporters import ExporterConfig
from fmf_spark.errors import (
    ConfigError,
    ExportAuthError,
    ExportConflict,
    ExportError,
    ExportSchemaMismatch,
)
from fmf_spark.exporters.base import BatchContext, BatchResult, failpoint, register_exporter
from fmf_spark.exporters.frames import flatten_structs
from fmf_spark.exporters.objects import ObjectTarget, PartitionWriter
from fmf_spark.observability.logging import get_logger
from fmf_spark.observability.redaction import redact, register_secret

if TYPE_CHECKING:
    from pydantic import SecretStr
    from pyspark.sql import DataFrame
    from pyspark.sql.types import DataType

    from fmf_spark.config.secrets import SecretResolver

log = get_logger(__name__)

#: SQLSTATEs that mean "another transaction got in the way; try again"
CONFLICT_STATES = {"40001", "40P01", "23505"}


class RedshiftExporterConfig(ExporterConfig):
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

    def stage(self) -> ObjectTarget:
        """Where a Redshift batch is staged: Parquet objects COPY reads."""
        return ObjectTarget(
            self.staging_bucket or "",
            "parquet",
            "snappy",
            region=self.staging_region,
            endpoint_url=self.staging_endpoint_url,
        )


def sql_type(dtype: DataType, dialect: str) -> str:
    """The column type for a (flat) Spark type."""
    from pyspark.sql.types import (
        BooleanType,
        DateType,
        DoubleType,
        FloatType,
        IntegerType,
        LongType,
        ShortType,
        TimestampType,
    )

    if isinstance(dtype, LongType):
        return "BIGINT"
    if isinstance(dtype, IntegerType | ShortType):
        return "INTEGER"
    if isinstance(dtype, DoubleType):
        return "DOUBLE PRECISION"
    if isinstance(dtype, FloatType):
        return "REAL"
    if isinstance(dtype, BooleanType):
        return "BOOLEAN"
    if isinstance(dtype, TimestampType):
        return "TIMESTAMPTZ" if dialect == "postgres" else "TIMESTAMP"
    if isinstance(dtype, DateType):
        return "DATE"
    # Redshift's TEXT is VARCHAR(256); LLM outputs are longer
    return "TEXT" if dialect == "postgres" else "VARCHAR(65535)"


class SqlMergeExporter:
    """Staging table + MERGE on Redshift or PostgreSQL (see the module docstring)."""

    def __init__(self, name: str, cfg: RedshiftExporterConfig, password: SecretStr | None) -> None:
        self.name = name
        self.cfg = cfg
        self.dialect = cfg.type  # "redshift" | "postgres"
        self._password = password
        self._checked_schema = False
        if self.dialect == "redshift" and (not cfg.staging_bucket or not cfg.iam_role):
            raise ConfigError(
                f"sink '{name}': Redshift needs staging_bucket and iam_role for COPY",
                hint="or use type: postgres for a PostgreSQL database",
            )

    # --- connection ---------------------------------------------------------------------

    def connect(self) -> Any:
        psycopg = require("psycopg")
        password = self._password.get_secret_value() if self._password is not None else None
        register_secret(password)
        try:
            return psycopg.connect(
                host=self.cfg.host,
                port=self.cfg.port,
                dbname=self.cfg.database,
                user=self.cfg.user,
                password=password,
                sslmode=self.cfg.sslmode,
                connect_timeout=self.cfg.connect_timeout_s,
                application_name="fmf_spark",
                autocommit=False,
            )
        except psycopg.OperationalError as exc:
            text = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
            cls = ExportAuthError if "password" in text or "authentication" in text else ExportError
            raise cls(
                f"sink '{self.name}': cannot connect to {self.cfg.host}:{self.cfg.port}/"
                f"{self.cfg.database} as {self.cfg.user}: {text}"
            ) from None

    def precheck(self) -> None:
        with self.connect() as conn:
            conn.execute("SELECT 1")
        if self.dialect == "redshift":
            self.cfg.stage().check(f"sink '{self.name}'")

    # --- SQL ----------------------------------------------------------------------------

    def _ident(self, *parts: str) -> Any:
        return require("psycopg.sql").Identifier(*parts)

    @property
    def target(self) -> Any:
        return self._ident(self.cfg.schema_name, self.cfg.table)

    def create_target_sql(self, columns: list[tuple[str, str]]) -> Any:
        sql = require("psycopg.sql")
        cols = [sql.SQL("{} {}").format(self._ident(c), sql.SQL(t)) for c, t in columns]
        key = sql.SQL(", ").join(self._ident(k) for k in self.cfg.key_fields)
        return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))").format(
            self.target, sql.SQL(", ").join(cols), key
        )

    def merge_sql(self, stage: str, columns: list[str]) -> Any:
        sql = require("psycopg.sql")
        keys = self.cfg.key_fields
        on = sql.SQL(" AND ").join(sql.SQL("t.{c} = s.{c}").format(c=self._ident(k)) for k in keys)
        updates = sql.SQL(", ").join(
            sql.SQL("{c} = s.{c}").format(c=self._ident(c)) for c in columns if c not in keys
        )
        names = sql.SQL(", ").join(self._ident(c) for c in columns)
        values = sql.SQL(", ").join(sql.SQL("s.{}").format(self._ident(c)) for c in columns)
        return sql.SQL(
            "MERGE INTO {target} AS t USING {stage} AS s ON {on} "
            "WHEN MATCHED THEN UPDATE SET {updates} "
            "WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})"
        ).format(
            target=self.target,
            stage=self._ident(stage),
            on=on,
            updates=updates,
            names=names,
            values=values,
        )

    def copy_from_s3_sql(self, stage: str, s3_uri: str) -> Any:
        sql = require("psycopg.sql")
        return sql.SQL("COPY {} FROM {} IAM_ROLE {} FORMAT AS PARQUET").format(
            self._ident(stage), sql.Literal(s3_uri), sql.Literal(self.cfg.iam_role or "")
        )

    # --- one batch ----------------------------------------------------------------------

    def write_batch(self, df: DataFrame, ctx: BatchContext) -> BatchResult:
        flat = flatten_structs(df)
        columns = [(f.name, sql_type(f.dataType, self.dialect)) for f in flat.schema.fields]
        names = [c for c, _ in columns]
        staged_uri = None
        if self.dialect == "redshift":
            staged_uri = self._stage_to_s3(flat, ctx)
        retries = 0
        try:
            for attempt in range(self.cfg.max_conflict_retries + 1):
                try:
                    written, updated = self._transaction(flat, ctx, columns, names, staged_uri)
                    return BatchResult(written=written, updated=updated, retries=retries)
                except ExportConflict:
                    if attempt >= self.cfg.max_conflict_retries:
                        raise
                    retries += 1
                    log.warning(
                        "sink %s batch %d: serialization conflict, retry %d",
                        self.name,
                        ctx.batch_id,
                        retries,
                    )
        finally:
            if staged_uri is not None:
                self._drop_staged(staged_uri)
        raise AssertionError("unreachable")  # pragma: no cover

    def _transaction(
        self,
        flat: DataFrame,
        ctx: BatchContext,
        columns: list[tuple[str, str]],
        names: list[str],
        staged_uri: str | None,
    ) -> tuple[int, int]:
        psycopg = require("psycopg")
        sql = require("psycopg.sql")
        stage = f"fmf_stage_{ctx.batch_id}"
        conn = self.connect()
        try:
            with conn.transaction():
                if self.dialect == "postgres":
                    conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                conn.execute(self.create_target_sql(columns))
                self._check_schema(conn, columns)
                cols = sql.SQL(", ").join(
                    sql.SQL("{} {}").format(self._ident(c), sql.SQL(t)) for c, t in columns
                )
                conn.execute(sql.SQL("CREATE TEMP TABLE {} ({})").format(self._ident(stage), cols))
                if staged_uri is not None:
                    self._copy_from_s3(conn, stage, staged_uri)
                else:
                    self._copy_from_stdin(conn, stage, names, flat)
                failpoint("sql.after_copy", sink=self.name, batch_id=ctx.batch_id)
                staged = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(self._ident(stage))
                ).fetchone()[0]
                on = sql.SQL(" AND ").join(
                    sql.SQL("t.{c} = s.{c}").format(c=self._ident(k)) for k in self.cfg.key_fields
                )
                matched = conn.execute(
                    sql.SQL("SELECT count(*) FROM {} AS s JOIN {} AS t ON {}").format(
                        self._ident(stage), self.target, on
                    )
                ).fetchone()[0]
                conn.execute(self.merge_sql(stage, names))
                conn.execute(sql.SQL("DROP TABLE {}").format(self._ident(stage)))
            return int(staged), int(matched)
        except psycopg.Error as exc:
            state = getattr(exc, "sqlstate", None) or ""
            text = redact(_pg_message(exc))
            if state in CONFLICT_STATES or "serializable isolation violation" in text.lower():
                raise ExportConflict(
                    f"sink '{self.name}' batch {ctx.batch_id}: {text}",
                    hint="another writer touched the same rows; rerun the export",
                ) from None
            raise ExportError(f"sink '{self.name}' batch {ctx.batch_id}: {text}") from None
        finally:
            conn.close()

    def _check_schema(self, conn: Any, columns: list[tuple[str, str]]) -> None:
        if self._checked_schema:
            return
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            (self.cfg.schema_name, self.cfg.table),
        ).fetchall()
        existing = {r[0] for r in rows}
        missing = [c for c, _ in columns if c not in existing]
        if missing:
            raise ExportSchemaMismatch(
                f"sink '{self.name}': table {self.cfg.schema_name}.{self.cfg.table} lacks "
                f"column(s) {missing}",
                hint="ALTER TABLE ... ADD COLUMN, or export to a new table",
            )
        self._checked_schema = True

    def _copy_from_stdin(self, conn: Any, stage: str, names: list[str], flat: DataFrame) -> None:
        sql = require("psycopg.sql")
        psycopg = require("psycopg")
        stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
            self._ident(stage), sql.SQL(", ").join(self._ident(c) for c in names)
        )
        try:
            with conn.cursor() as cur, cur.copy(stmt) as copy:
                for row in _local_rows(flat):
                    copy.write_row(row)
        except psycopg.Error as exc:
            raise ExportError(
                f"sink '{self.name}': COPY into the staging table failed: {redact(_pg_message(exc))}",
                code="export.load_failed",
            ) from None

    def _copy_from_s3(self, conn: Any, stage: str, uri: str) -> None:
        psycopg = require("psycopg")
        try:
            conn.execute(self.copy_from_s3_sql(stage, uri))
        except psycopg.Error as exc:
            detail = self._load_error_detail()
            raise ExportError(
                f"sink '{self.name}': COPY from {uri} failed: {redact(_pg_message(exc))}"
                + (f"; load errors: {detail}" if detail else ""),
                code="export.load_failed",
            ) from None

    def _load_error_detail(self) -> str:
        """The latest Redshift load errors, read on a fresh connection (the failed
        transaction cannot run queries)."""
        try:
            with self.connect() as conn:
                rows = conn.execute(
                    "SELECT line_number, column_name, error_code, error_message "
                    "FROM sys_load_error_detail ORDER BY start_time DESC LIMIT 3"
                ).fetchall()
        except Exception as exc:  # the detail is best effort; the COPY error is raised anyway
            return f"(load error detail unavailable: {type(exc).__name__})"
        return "; ".join(f"line {r[0]} column {r[1]}: [{r[2]}] {r[3]}".strip() for r in rows)

    # --- Redshift staging on S3 --------------------------------------------------------

    def stage_prefix(self, ctx: BatchContext) -> str:
        return (
            f"{self.cfg.staging_prefix.strip('/')}/{ctx.run_id}/{self.name}/"
            f"{ctx.stream_id}/batch-{ctx.batch_id:05d}"
        )

    def _stage_to_s3(self, flat: DataFrame, ctx: BatchContext) -> str:
        """Write the batch as Parquet under the staging prefix; return its s3:// URI."""
        stage = self.cfg.stage()
        prefix = self.stage_prefix(ctx)
        self._drop_staged(f"s3://{stage.bucket}/{prefix}/")  # leftovers of a crashed attempt
        PartitionWriter(stage, prefix, ctx.batch_id).run(flat)
        return f"s3://{stage.bucket}/{prefix}/"

    def _drop_staged(self, uri: str) -> None:
        stage = self.cfg.stage()
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        what = f"sink '{self.name}': removing staged objects"
        target = ObjectTarget(bucket, region=stage.region, endpoint_url=stage.endpoint_url)
        target.delete(list(target.keys(prefix, what)), what)


def _local_rows(df: DataFrame) -> Iterator[tuple[Any, ...]]:
    # one partition at a time on the driver, never the whole batch
    for row in df.toLocalIterator(prefetchPartitions=False):
        yield tuple(row)


def _pg_message(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    context = getattr(diag, "context", None) if diag is not None else None
    detail = getattr(diag, "message_detail", None) if diag is not None else None
    text = primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    state = getattr(exc, "sqlstate", None)
    parts = [f"[{state}] {text}" if state else text]
    if detail:
        parts.append(f"detail: {detail}")
    if context:
        parts.append(f"context: {' '.join(context.split())[:300]}")
    return "; ".join(parts)


def _factory(name: str, cfg: RedshiftExporterConfig, resolver: SecretResolver) -> SqlMergeExporter:
    password = None if cfg.password is None else resolver.resolve(cfg.password)
    return SqlMergeExporter(name, cfg, password)


register_exporter("redshift", RedshiftExporterConfig, _factory)
register_exporter("postgres", RedshiftExporterConfig, _factory)
