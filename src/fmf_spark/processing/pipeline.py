"""``process``: a connector's files to the ``documents`` and ``chunks`` Delta tables."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fmf_spark.spark import side_by_side
from fmf_spark.storage import join_uri

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from fmf_spark.config.models import FmfConfig
    from fmf_spark.config.secrets import SecretResolver
    from fmf_spark.connectors.base import DataConnector


@dataclass
class ProcessResult:
    """What :func:`process` wrote and how it went."""

    run_dir: str
    documents_path: str
    chunks_path: str
    documents: int
    chunks: int
    #: (content_type or "unknown", status) -> documents
    by_type_status: dict[tuple[str, str], int] = field(default_factory=dict)
    #: error code -> documents
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> int:
        return sum(n for (_, status), n in self.by_type_status.items() if status == "ok")

    @property
    def failed(self) -> int:
        return sum(n for (_, status), n in self.by_type_status.items() if status == "error")

    def summary_lines(self) -> list[str]:
        """Counts by type and status, then errors by code, for the CLI."""
        lines = [f"{'content_type':<68} {'status':<6} {'count':>6}"]
        for (ctype, status), n in sorted(self.by_type_status.items()):
            lines.append(f"{ctype:<68} {status:<6} {n:>6}")
        for code, n in sorted(self.errors.items()):
            lines.append(f"  error {code}: {n}")
        lines.append(
            f"{self.documents} documents ({self.ok} ok), {self.chunks} chunks in "
            f"{self.seconds:.1f}s -> {self.run_dir}"
        )
        return lines


@dataclass
class ParsedRows:
    """The fused rows :func:`process` writes its two tables from."""

    #: the fused rows (:func:`~fmf_spark.processing.spark.fused_schema`) of every file
    rows: DataFrame
    #: the rows parsed by this call, persisted (``unpersist`` once the tables are written)
    fresh: DataFrame | None = None
    #: appends ``fresh`` to the parse cache (one Delta commit)
    cache_append: Callable[[], None] | None = None


def _parsed_once(fused: DataFrame) -> DataFrame:
    """``fused`` persisted and counted: its files are parsed in this one job, and every
    later reader (the tables, their counts, the parse cache) reads the persisted rows.

    Disk only: on a 20 MB corpus 7.4-9.1 CPU s against 8.1-11.3 for MEMORY_AND_DISK (no
    JVM heap pressure), and safe with a 1g executor. The caller unpersists it.
    """
    from pyspark import StorageLevel

    fused = fused.persist(StorageLevel.DISK_ONLY)
    fused.count()
    return fused


def _write_table(frame: DataFrame, path: str) -> None:
    frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)


def parse_key(config: FmfConfig) -> str:
    """What a parse depends on besides the file: the processing settings (loaders,
    limits, OCR, chunking), the plug-ins and the fmf version."""
    from fmf_spark import __version__

    settings = config.processing.model_dump_json()
    text = f"{__version__}\n{settings}\n{json.dumps(list(config.plugins))}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def parse_cached(
    spark: SparkSession,
    connector: DataConnector,
    selector: str | Sequence[str] | None,
    config: FmfConfig,
    cache_path: str,
) -> ParsedRows:
    """The fused rows of the listed files, parsing only those the parse cache lacks.

    The cache (``<artefacts>/_cache/processed``, a Delta table) holds every parse's
    fused rows with two more columns: ``source_key``, a hash of the listing row
    (source, URI, size, modification time, ETag) and of :func:`parse_key`; and
    ``parse_id``, one token per :func:`process` call. A file is taken from the cache
    when one earlier parse of its key left every document of it ``ok`` (a failed parse,
    a timeout on a busy machine say, is tried again); else it is read and parsed here,
    into rows persisted on the executors' disks, which
    :attr:`ParsedRows.cache_append` appends to the cache (one Delta commit: a killed run
    leaves all of them or none) while :func:`process` writes its tables from the same
    rows: no file is parsed twice.
    """
    import uuid

    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType
    from pyspark.sql.utils import AnalysisException

    from fmf_spark.connectors.base import listing_dataframe
    from fmf_spark.processing.spark import fused_partition, fused_schema

    infos = list(connector.list(selector))
    listing = listing_dataframe(spark, infos)
    key = F.sha2(
        F.concat_ws(
            "\u0001",
            "source",
            "uri",
            F.coalesce(F.col("size").cast("string"), F.lit("")),
            F.coalesce(F.unix_micros("modified").cast("string"), F.lit("")),
            F.coalesce("etag", F.lit("")),
            F.lit(parse_key(config)),
        ),
        256,
    )
    keyed = listing.withColumn("source_key", key)
    cache: DataFrame | None = None
    try:
        table = spark.read.format("delta").load(cache_path)
        table.schema  # noqa: B018 - resolving the schema is what fails for a missing table
        cache = table
    except AnalysisException:  # no cache yet
        pass
    names = fused_schema().fieldNames()
    cached: DataFrame | None = None
    todo = keyed  # the files to parse now
    if cache is not None:
        # per key, one earlier parse that left every document ok
        parses = (
            cache.where(F.col("kind") == "document")
            .groupBy("source_key", "parse_id")
            .agg(F.min((F.col("status") == "ok").cast("int")).alias("ok"))
            .where("ok = 1")
            .groupBy("source_key")
            .agg(F.min("parse_id").alias("parse_id"))
        )
        # only the keys listed now (a semi join: the listing's size-balanced tasks stay)
        listed = parses.join(keyed.select("source_key"), "source_key", "left_semi")
        done = [(r["source_key"], r["parse_id"]) for r in listed.collect()]
        chosen = spark.createDataFrame(done, "source_key string, parse_id string")
        cached = cache.join(F.broadcast(chosen), ["source_key", "parse_id"], "left_semi")
        cached = cached.select(*names)
        if len(done) == len(infos):  # all cached: no parse, no commit
            return ParsedRows(rows=cached)
        todo = keyed.join(F.broadcast(chosen.select("source_key")), "source_key", "left_anti")
    schema = StructType([*fused_schema().fields, StructField("source_key", StringType())])
    fresh = _parsed_once(
        todo.mapInPandas(
            fused_partition(connector, config.processing, config.plugins, schema), schema
        )
    )
    parse_id = uuid.uuid4().hex

    def cache_append() -> None:
        fresh.withColumn("parse_id", F.lit(parse_id)).write.format("delta").mode("append").option(
            "mergeSchema", "true"
        ).save(cache_path)

    rows = fresh.select(*names)
    return ParsedRows(
        rows=rows if cached is None else cached.unionByName(rows),
        fresh=fresh,
        cache_append=cache_append,
    )


def process(
    spark: SparkSession,
    config: FmfConfig,
    connector_name: str,
    selector: str | Sequence[str] | None,
    run_dir: str,
    resolver: SecretResolver | None = None,
    *,
    connector: DataConnector | None = None,
    cache_path: str | None = None,
) -> ProcessResult:
    """Read, parse and chunk a connector's files; write two Delta tables under ``run_dir``.

    ``<run_dir>/documents`` and ``<run_dir>/chunks`` are overwritten (a rerun of the same
    run id replaces them). Each file is read, parsed and chunked in one Python pass on
    the executors (:func:`~fmf_spark.processing.spark.read_parse_chunk`); the fused rows
    are persisted (on local disk) so the two writes parse every file once.

    Args:
        spark: the session (passed in, never created here).
        config: the loaded config (``connectors.<name>`` and ``processing``).
        connector_name: a key of ``connectors``.
        selector: glob(s) narrowing the connector's include list, or None.
        run_dir: the run's artefact folder (local path, ``dbfs:/``, ``/Volumes``, ``s3://``).
        resolver: secret resolver for the connector; built from the config if omitted.
        connector: ``connector_name`` already built and prechecked by the caller (the
            composition root); else it is built and prechecked here.
        cache_path: a Delta table of earlier parses (the parse cache, see
            :func:`parse_cached`): files listed with the same source, URI, size,
            modification time and ETag, under the same processing settings and fmf
            version, are not read or parsed again. ``None``: parse every file.

    Example:
        >>> result = process(spark, cfg, "samples", "**/*.md", "artefacts/run1")  # doctest: +SKIP
        >>> result.by_type_status  # doctest: +SKIP
        {('text/markdown', 'ok'): 3}
    """
    from pyspark.sql import functions as F

    from fmf_spark.connectors import get_connector
    from fmf_spark.processing.spark import read_parse_chunk, split_fused

    started = time.monotonic()
    if connector is None:
        connector = get_connector(connector_name, config, resolver)
        connector.precheck()
    documents_path = join_uri(run_dir, "documents")
    chunks_path = join_uri(run_dir, "chunks")

    if cache_path is not None:
        parsed = parse_cached(spark, connector, selector, config, cache_path)
    else:
        fused = _parsed_once(
            read_parse_chunk(spark, connector, selector, config.processing, config.plugins)
        )
        parsed = ParsedRows(rows=fused, fresh=fused)
    docs, chunks = split_fused(parsed.rows)
    # the two tables, their counts and the cache's new rows all read the parsed rows,
    # not the files, and not each other: written and counted side by side
    actions: list[Callable[[], object]] = [
        lambda: _write_table(docs, documents_path),
        lambda: _write_table(chunks, chunks_path),
        lambda: (
            docs.groupBy(
                F.coalesce(F.col("content_type"), F.lit("unknown")).alias("ctype"),
                "status",
                F.col("error.code").alias("code"),
            )
            .count()
            .collect()
        ),
        chunks.count,
    ]
    if parsed.cache_append is not None:
        actions.append(parsed.cache_append)
    try:
        _, _, counts, n_chunks, *_ = side_by_side(*actions)
    finally:
        if parsed.fresh is not None:
            parsed.fresh.unpersist()
    by_type: dict[tuple[str, str], int] = {}
    errors: dict[str, int] = {}
    for row in counts:
        key = (row["ctype"], row["status"])
        by_type[key] = by_type.get(key, 0) + int(row["count"])
        if row["code"] is not None:
            errors[row["code"]] = errors.get(row["code"], 0) + int(row["count"])
    return ProcessResult(
        run_dir=run_dir,
        documents_path=documents_path,
        chunks_path=chunks_path,
        documents=sum(by_type.values()),
        chunks=int(n_chunks),
        by_type_status=by_type,
        errors=errors,
        seconds=time.monotonic() - started,
    )
