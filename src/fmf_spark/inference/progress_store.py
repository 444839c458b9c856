"""Durable progress: inference tasks commit their answers while a step runs.

The request cache (:mod:`fmf_spark.inference.cache`) is a Delta table written when a step
finishes. On its own, a driver killed in the middle of a step (pre-empted, timed out,
``kill -9``) or a Spark task retried after a failure paid again for every answer the
step had already received. With durable progress:

**What is committed, when.** Each inference task commits its successful answers
(``status='ok'``: failed requests are called again, as the cache does) while it runs,
as :data:`~fmf_spark.schemas.TIMED_INFERENCE_RESULT_SCHEMA` rows keyed by
``request_id``. Where the artefacts can be appended to (a local or shared POSIX
filesystem, :func:`can_append`), every answer is appended to the task attempt's own
log as it arrives, one JSON line in one ``write`` call: at a kill only the calls in
flight are lost. Elsewhere (object stores, the ``/dbfs`` and ``/Volumes`` mounts) the
answers go to small Parquet files: when ``inference.progress_rows`` answers are
waiting, every ``inference.progress_seconds`` (a timer thread, so a pause between
answers still commits what came before it), and when the task ends, also when it
fails; at a kill, the answers of the last interval per task are lost too.

**Where.** ``<cache root>/_progress/<step key>/part-<writer>-p<partition>-a<attempt
number>-t<task attempt id>.jsonl`` (the log) or ``...-<seq>.parquet``, beside the Delta cache
(``<artefacts>/_cache``). The step key is a hash of the request prefix (prompt hash,
model, parameters), so a rerun of the same step finds the files of the killed run; the
writer is a token of one :func:`~fmf_spark.inference.infer` call, so concurrent runs
never overwrite each other; the partition, the attempt number and the task attempt id
(unique in the Spark application, also across stage retries) make the names idempotent
per attempt. A file appears whole or not at all: a local (or FUSE: ``/dbfs``,
``/Volumes``) file is written under a hidden ``.``-name and renamed; an object store
(``s3://``) write is one PUT that is visible only once complete. Files are written with
pyarrow's own filesystems (local, S3; others through ``pyarrow.fs.FileSystem.from_uri``);
where none fits, the step runs without durable progress and says so in the log.

**Who reads.** The driver, when a step starts: the step's cache is the Delta cache
plus every progress file of the step key (a killed run's answers are served as cached,
``attempts = 0``). A retried task, or a speculative copy, reads the files its own
partition's earlier attempts wrote in this call, gives back those rows as they were,
and calls only the rest; so neither a kill nor a task retry pays twice for a committed
answer.

**Fold.** When a chain's steps have run and their outputs are saved, one
:func:`fold_progress` appends the answers of their progress files that the Delta cache
lacks (one commit for all the steps), then deletes the files it read
(a one-task Spark job: the executors reach the storage, a Spark Connect client may
not). Killed between the two, the next fold finds them in the cache already and only
deletes. Only the DataFrame API is used on the driver (Spark Connect safe).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fmf_spark.observability.logging import get_logger
from fmf_spark.storage import join_uri, local_path, parent_uri

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.fs as pafs
    from pyspark.sql import DataFrame, DataFrameReader, SparkSession
    from pyspark.sql.types import DataType, StructType

log = get_logger(__name__)

#: the folder of the progress files, beside the Delta cache table
PROGRESS_FOLDER = "_progress"


@dataclass(frozen=True)
class ProgressSpec:
    """Where and how often the tasks of one ``infer()`` call commit (pickled into them).

    Attributes:
        location: the step's progress folder (:func:`progress_location`).
        writer: a token of this ``infer()`` call: the first part of every file name.
        rows: commit when this many answers are waiting (batch mode).
        seconds: commit at least this often while answers are waiting (batch mode).
        append: commit every answer as it arrives, one line of the task's log
            (:func:`can_append`); else in batches of Parquet files.
    """

    location: str
    writer: str
    rows: int
    seconds: float
    #: append each answer to the task's log as it arrives (a plain local or shared
    #: filesystem); False: Parquet files of ``rows`` answers (stores that cannot append)
    append: bool = False


def progress_location(cache_path: str, request_prefix: str) -> str:
    """The progress folder of a step: ``<cache root>/_progress/<hash of the prefix>``.

    Example:
        >>> progress_location("artefacts/_cache/outputs", "h\\nm\\n{}\\n")  # doctest: +SKIP
        'artefacts/_cache/_progress/3f1c...'
    """
    key = hashlib.sha256(request_prefix.encode("utf-8")).hexdigest()[:16]
    return join_uri(parent_uri(cache_path), PROGRESS_FOLDER, key)


def progress_spec(
    cache_path: str, request_prefix: str, rows: int, seconds: float
) -> ProgressSpec | None:
    """The spec of one ``infer()`` call, or ``None`` when progress commits are off
    (``rows == 0``) or the location has no filesystem here."""
    if rows <= 0:
        return None
    location = progress_location(cache_path, request_prefix)
    try:
        _filesystem(location)
    except (ValueError, OSError, ImportError) as exc:
        log.warning("no durable progress for %s: %s", location, exc)
        return None
    return ProgressSpec(location, uuid.uuid4().hex[:12], rows, seconds, can_append(location))


#: FUSE mounts of Databricks that refuse appends (DBFS, Unity Catalog volumes)
_NO_APPEND_MOUNTS = ("/dbfs/", "/Volumes/")


def can_append(location: str) -> bool:
    """Whether answers can be appended one by one to a log file at ``location``: a plain
    local (or shared POSIX) filesystem. Object stores have no append (one PUT per
    commit), and the ``/dbfs`` and ``/Volumes`` mounts refuse appends: those commit
    Parquet files in batches."""
    path = local_path(location)
    return path is not None and not f"{path.absolute()}/".startswith(_NO_APPEND_MOUNTS)


# --- files ------------------------------------------------------------------------------


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem for ``uri`` and the path on it."""
    import pyarrow.fs as pafs

    if uri.startswith("dbfs:/Volumes/"):  # Unity Catalog volumes are mounted at /Volumes
        return pafs.LocalFileSystem(), uri.removeprefix("dbfs:")
    path = local_path(uri)
    if path is not None:
        return pafs.LocalFileSystem(), str(path.absolute())
    scheme, _, rest = uri.partition("://")
    if scheme in ("s3", "s3a", "s3n"):
        # the endpoint override the product's boto3 clients use (MinIO, a VPC endpoint,
        # a moto server); credentials and region come from the usual AWS chain
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            ep_scheme, _, host = endpoint.partition("://")
            fs = pafs.S3FileSystem(
                endpoint_override=host or endpoint,
                scheme=ep_scheme if host else "https",
                region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
            )
            return fs, rest.rstrip("/")
        return pafs.FileSystem.from_uri("s3://" + rest)
    return pafs.FileSystem.from_uri(uri)


def _arrow_type(dtype: DataType) -> pa.DataType:
    """The Arrow type Spark reads back as ``dtype`` (the types of the result schema)."""
    import pyarrow as pa
    from pyspark.sql import types as T

    simple: dict[type, pa.DataType] = {
        T.StringType: pa.string(),
        T.LongType: pa.int64(),
        T.IntegerType: pa.int32(),
        T.DoubleType: pa.float64(),
        T.BooleanType: pa.bool_(),
        T.TimestampType: pa.timestamp("us", tz="UTC"),
    }
    if type(dtype) in simple:
        return simple[type(dtype)]
    if isinstance(dtype, T.ArrayType):
        return pa.list_(_arrow_type(dtype.elementType))
    if isinstance(dtype, T.StructType):
        return pa.struct([pa.field(f.name, _arrow_type(f.dataType)) for f in dtype.fields])
    raise TypeError(f"no Arrow type for {dtype.simpleString()}")


def _arrow_schema(schema: StructType) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([pa.field(f.name, _arrow_type(f.dataType)) for f in schema.fields])


def _file_name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


#: the name ending of a task attempt's answer log (append mode)
LOG_SUFFIX = ".jsonl"
_TIME_FIELDS = ("started_at", "sent_at", "ended_at")


def _json_default(value: Any) -> Any:
    from datetime import datetime

    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _log_line(row: dict[str, Any]) -> bytes:
    """One answer as one line of JSON (``status`` last: a cut line never reads as ok)."""
    ordered = {k: v for k, v in row.items() if k != "status"}
    ordered["status"] = row.get("status")
    text = json.dumps(ordered, default=_json_default, ensure_ascii=False, separators=(",", ":"))
    return (text + "\n").encode("utf-8")


def _log_rows(data: bytes) -> list[dict[str, Any]]:
    """The whole answers of a log (a last line cut by a kill is skipped), timestamps
    as they were written."""
    from datetime import datetime

    rows = []
    for line in data.split(b"\n")[:-1]:  # the part after the last newline is not whole
        try:
            row = json.loads(line)
        except ValueError:
            continue
        for name in _TIME_FIELDS:
            if row.get(name) is not None:
                row[name] = datetime.fromisoformat(row[name])
        if row.get("rate_limited_at"):
            row["rate_limited_at"] = [datetime.fromisoformat(t) for t in row["rate_limited_at"]]
        rows.append(row)
    return rows


# --- the executor side ------------------------------------------------------------------


@dataclass
class TaskProgress:
    """One task's commits: buffer its answers, write them out in bounded batches.

    Made once per task by :func:`open_task_progress`; :meth:`record` is called from the
    task's call threads; :meth:`close` commits the rest (also after a failure).
    """

    spec: ProgressSpec
    partition: int
    attempt: int
    task_attempt_id: int
    _fs: Any = field(default=None, repr=False)
    _dir: str = ""
    _buffer: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _seq: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _timer: threading.Thread | None = field(default=None, repr=False)
    _warned: bool = False
    committed: int = 0

    _log_fd: int | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._fs, self._dir = _filesystem(self.spec.location)
        if self.spec.append:
            return  # every answer is written as it arrives: no batches, no timer
        self._timer = threading.Thread(target=self._tick, name="fmf-progress", daemon=True)
        self._timer.start()

    @property
    def log_name(self) -> str:
        """The name of this attempt's log (append mode): one per task attempt, so two
        attempts (a retry, a speculative copy) never append to the same file."""
        return f"{self.partition_prefix}a{self.attempt}-t{self.task_attempt_id}{LOG_SUFFIX}"

    @property
    def partition_prefix(self) -> str:
        """The start of every file name this partition writes in this call, any attempt."""
        return f"part-{self.spec.writer}-p{self.partition:05d}-"

    def recall(self) -> dict[str, dict[str, Any]]:
        """The answers earlier attempts of this partition committed, by ``request_id``."""
        import pyarrow.fs as pafs
        import pyarrow.parquet as pq

        selector = pafs.FileSelector(self._dir, allow_not_found=True)
        answers: dict[str, dict[str, Any]] = {}
        for info in self._fs.get_file_info(selector):
            name = _file_name(info.path)
            if not name.startswith(self.partition_prefix):
                continue
            if name.endswith(".parquet"):
                rows = pq.read_table(info.path, filesystem=self._fs).to_pylist()
            elif name.endswith(LOG_SUFFIX):
                with self._fs.open_input_stream(info.path) as stream:
                    rows = _log_rows(stream.read())
            else:
                continue
            for row in rows:
                answers[row["request_id"]] = row
        if answers:
            log.info(
                "task of partition %d (attempt %d): %d answers committed by earlier attempts",
                self.partition,
                self.attempt,
                len(answers),
            )
        return answers

    def record(self, row: dict[str, Any]) -> dict[str, Any]:
        """Take one result row; commit when ``spec.rows`` answers are waiting."""
        from fmf_spark.schemas import STATUS_OK

        if row.get("status") != STATUS_OK:
            return row  # failures are called again, as the cache does
        if self.spec.append:
            self._append(row)
            return row
        with self._lock:
            self._buffer.append(row)
            full = len(self._buffer) >= self.spec.rows
        if full:
            self.flush()
        return row

    def flush(self) -> None:
        """Write the waiting answers as one file (kept for the next try if it fails)."""
        with self._lock:
            if not self._buffer:
                return
            rows, self._buffer = self._buffer, []
            seq, self._seq = self._seq, self._seq + 1
        name = f"{self.partition_prefix}a{self.attempt}-t{self.task_attempt_id}-{seq:06d}.parquet"
        try:
            self._write(name, rows)
        except Exception as exc:  # storage trouble must not fail the calls: retry later
            with self._lock:
                self._buffer[:0] = rows
            if not self._warned:
                self._warned = True
                log.warning("could not commit progress to %s: %s", self._dir, exc)
            return
        with self._lock:
            self.committed += len(rows)

    def _write(self, name: str, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.fs as pafs
        import pyarrow.parquet as pq

        from fmf_spark.schemas import TIMED_INFERENCE_RESULT_SCHEMA

        table = pa.Table.from_pylist(rows, schema=_arrow_schema(TIMED_INFERENCE_RESULT_SCHEMA))
        final = f"{self._dir}/{name}"
        if isinstance(self._fs, pafs.LocalFileSystem):
            # a hidden name first (Spark and recall() skip it), then an atomic rename
            self._fs.create_dir(self._dir, recursive=True)
            tmp = f"{self._dir}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
            pq.write_table(table, tmp, filesystem=self._fs)
            self._fs.move(tmp, final)
        else:
            # an object store shows an object only once its upload completed
            pq.write_table(table, final, filesystem=self._fs)

    def _tick(self) -> None:
        while not self._stop.wait(self.spec.seconds):
            self.flush()

    def _append(self, row: dict[str, Any]) -> None:
        """Append one answer to this attempt's log: one line, one ``write`` call.

        Once ``write`` returns, the line is in the operating system's file cache: it
        survives the death of every process of the run (``kill -9``, a pre-empted
        driver, an executor lost), not a crash of the machine itself (no ``fsync``:
        the machine's local disk is gone with it on most clusters anyway)."""
        line = _log_line(row)
        with self._lock:
            try:
                if self._log_fd is None:
                    os.makedirs(self._dir, exist_ok=True)
                    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
                    self._log_fd = os.open(f"{self._dir}/{self.log_name}", flags, 0o644)
                os.write(self._log_fd, line)
            except OSError as exc:  # storage trouble must not fail the calls
                if not self._warned:
                    self._warned = True
                    log.warning("could not commit progress to %s: %s", self._dir, exc)
                return
            self.committed += 1

    def close(self) -> None:
        """Stop the timer and commit what is left."""
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
        self.flush()
        with self._lock:
            if self._log_fd is not None:
                os.close(self._log_fd)
                self._log_fd = None


def open_task_progress(spec: ProgressSpec | None) -> TaskProgress | None:
    """The progress of the running Spark task (``None`` when commits are off)."""
    if spec is None:
        return None
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if ctx is None:  # called outside a task (a unit test): one attempt of partition 0
        return TaskProgress(spec, 0, 0, 0)
    return TaskProgress(spec, ctx.partitionId(), ctx.attemptNumber(), ctx.taskAttemptId())


# --- the driver side --------------------------------------------------------------------


def _read_files(spark: SparkSession, location: str) -> DataFrame | None:
    """The progress files of a step (TIMED_INFERENCE_RESULT_SCHEMA + ``file``), or ``None``
    when there is no folder."""
    from pyspark.sql import functions as F
    from pyspark.sql.utils import AnalysisException

    from fmf_spark.schemas import TIMED_INFERENCE_RESULT_SCHEMA

    def reader(glob: str) -> DataFrameReader:
        return spark.read.schema(TIMED_INFERENCE_RESULT_SCHEMA).option("pathGlobFilter", glob)

    try:
        batches = reader("*.parquet").parquet(location)
        logs = reader(f"*{LOG_SUFFIX}").json(location)
        logs.schema  # noqa: B018 - resolving the relation is what fails for a missing folder
    except AnalysisException:
        return None
    return (
        batches.select("*", F.col("_metadata.file_path").alias("file"))
        # a line cut by a kill reads as nulls: never as an answer
        .unionByName(logs.select("*", F.col("_metadata.file_path").alias("file")))
    )


def _answers(files: DataFrame) -> DataFrame:
    """One successful answer per ``request_id`` (INFERENCE_RESULT_SCHEMA), the latest."""
    from pyspark.sql import functions as F

    from fmf_spark.schemas import INFERENCE_RESULT_SCHEMA, STATUS_OK

    columns = INFERENCE_RESULT_SCHEMA.fieldNames()
    latest = (
        files.where(F.col("status") == STATUS_OK)
        .groupBy("request_id")
        .agg(F.max_by(F.struct(*columns), F.col("ended_at")).alias("answer"))
    )
    return latest.select("answer.*")


def with_progress(
    spark: SparkSession, cached: DataFrame | None, spec: ProgressSpec | None
) -> DataFrame | None:
    """The step's cache: the Delta cache's answers plus those of its progress files."""
    if spec is None:
        return cached
    files = _read_files(spark, spec.location)
    if files is None:
        return cached
    committed = _answers(files)
    if cached is None:
        return committed
    return cached.unionByName(committed).dropDuplicates(["request_id"])


def fold_progress(
    spark: SparkSession,
    cache_path: str,
    steps: Mapping[str, Mapping[str, str]],
    fresh: DataFrame | None = None,
) -> int:
    """Move the progress files of one or more steps into the Delta cache, in one commit;
    return how many files were folded.

    Appends the answers the cache lacks (``doc_id``/``chunk_id`` null: an answer is
    shared by every row with its request), then deletes the files read. Idempotent: run
    again after a kill in the middle, it appends nothing and deletes what is left.

    Args:
        spark: the session.
        cache_path: the Delta cache table.
        steps: by each step's request prefix (which names its progress folder), the
            step's OUTPUTS_SCHEMA constants: ``step``, ``prompt_id``,
            ``prompt_version``, ``prompt_hash``, ``model``.
        fresh: the steps' saved answers of this run (OUTPUTS_SCHEMA), appended in the
            same commit where the cache lacks them.
    """
    from pyspark.sql import functions as F

    from fmf_spark.inference.cache import read_cache
    from fmf_spark.schemas import OUTPUTS_SCHEMA

    columns = OUTPUTS_SCHEMA.fieldNames()
    parts = [] if fresh is None else [fresh.select(*columns)]
    names: list[str] = []
    for prefix, constants in steps.items():
        location = progress_location(cache_path, prefix)
        files = _read_files(spark, location)
        read = (
            []
            if files is None
            else sorted(r["file"] for r in files.select("file").distinct().collect())
        )
        if files is None or not read:
            continue
        names += read
        answers = _answers(files.where(F.col("file").isin(read)))
        values = {**constants, "doc_id": None, "chunk_id": None}
        parts.append(
            answers.select(
                *[
                    (F.lit(values[f.name]) if f.name in values else F.col(f.name))
                    .cast(f.dataType)
                    .alias(f.name)
                    for f in OUTPUTS_SCHEMA.fields
                ]
            )
        )
    if not parts:
        return 0
    rows = parts[0]
    for part in parts[1:]:
        rows = rows.unionByName(part)
    rows = rows.dropDuplicates(["request_id"])
    cached = read_cache(spark, cache_path)
    if cached is not None:
        rows = rows.join(cached.select("request_id"), "request_id", "left_anti")
    rows.write.format("delta").mode("append").save(cache_path)
    if names:
        _delete(spark, names)
        log.info(
            "folded %d progress files of %d steps under %s into the cache",
            len(names),
            len(steps),
            join_uri(parent_uri(cache_path), PROGRESS_FOLDER),
        )
    return len(names)


def _delete_batch(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    import pandas as pd

    for batch in batches:
        errors: list[str | None] = []
        for uri in batch["path"]:
            try:
                fs, path = _filesystem(uri)
                fs.delete_file(path)
                errors.append(None)
            except FileNotFoundError:
                errors.append(None)  # a fold killed after deleting it
            except Exception as exc:  # reported by the driver, the fold goes on
                errors.append(f"{type(exc).__name__}: {exc}")
        yield pd.DataFrame({"path": batch["path"], "error": errors})


def _delete(spark: SparkSession, paths: list[str]) -> None:
    """Delete files from a one-task Spark job (executors reach the storage)."""
    listed = spark.createDataFrame([(p,) for p in paths], "path string").coalesce(1)
    failed = listed.mapInPandas(_delete_batch, "path string, error string").where(
        "error is not null"
    )
    # the whole job runs (no limit: that could stop the task before its last delete)
    for row in failed.collect()[:5]:
        log.warning("could not delete progress file %s: %s", row["path"], row["error"])
