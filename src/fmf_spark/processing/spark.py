"""The Spark side of processing: pandas UDF factories over the pure-Python stages.

Both are ``DataFrame -> DataFrame`` transforms built on ``mapInPandas`` (the iterator
form): the output schema is declared once (:mod:`fmf_spark.schemas`), per-partition
set-up (tokenizer tables, config, plug-in loaders) happens once before the loop, and
every input row gives an output row (parse) or its chunks (chunk), failures included.
A file with child documents (e-mail attachments, archive members) also gives a row per
child, right after its own, with ``parent_doc_id`` and ``attachment_name`` set.

Loaders are found by content type in the worker's registry, so the config's
``plugins:`` modules are imported in each worker before it parses (``plugins``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fmf_spark.config.processing import ChunkingConfig, ProcessingConfig
from fmf_spark.processing.chunking import chunk_text
from fmf_spark.processing.parse import (
    ChildDocument,
    ParsedDocument,
    doc_id_for,
    expand_children,
    parse_file,
)
from fmf_spark.registry import import_plugins

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from fmf_spark.connectors.base import DataConnector

_PASSTHROUGH = ("source", "uri", "path", "size", "modified", "etag")


def _document_fields(
    rec: dict[str, Any], cfg: ProcessingConfig
) -> tuple[dict[str, Any], ParsedDocument | None]:
    """The DOCUMENTS columns of one files record, and the parsed document (None when
    the connector could not read the file: its error is kept, the row never dropped)."""
    if rec["status"] != "ok":
        fields = {
            "doc_id": doc_id_for(None, rec["uri"]),
            "content_type": None,
            "text": None,
            "pages": None,
            "metadata": {},
            "status": rec["status"],
            "error": rec["error"],
            "parent_doc_id": None,
            "attachment_name": None,
        }
        return fields, None
    doc = parse_file(rec["content"], rec["path"], cfg, rec["uri"])
    return _parsed_fields(doc), doc


def _parsed_fields(doc: ParsedDocument, child: ChildDocument | None = None) -> dict[str, Any]:
    return {
        "doc_id": doc.doc_id,
        "content_type": doc.content_type,
        "text": doc.text,
        "pages": doc.pages,
        "metadata": doc.metadata,
        "status": doc.status,
        "error": doc.error,
        "parent_doc_id": None if child is None else child.parent_doc_id,
        "attachment_name": None if child is None else child.attachment_name,
    }


def _with_children(
    rec: dict[str, Any], cfg: ProcessingConfig
) -> list[tuple[dict[str, Any], ParsedDocument | None]]:
    """The DOCUMENTS rows of one files record: the file's, then its child documents'.

    Each is ``(row without kind/chunk columns, parsed document or None)``. The children
    are expanded before the file's row is built: a file that had more children than
    ``max_children`` says so in its metadata.
    """
    fields, doc = _document_fields(rec, cfg)
    own = {k: rec[k] for k in _PASSTHROUGH}
    if doc is None:
        return [({**own, **fields}, None)]
    kids = list(expand_children(doc, rec["path"], rec["uri"], cfg))
    rows: list[tuple[dict[str, Any], ParsedDocument | None]] = [({**own, **fields}, doc)]
    for kid in kids:
        row = {
            **own,
            "path": kid.path,
            "uri": kid.uri,
            "size": kid.size,
            "etag": None,
            **_parsed_fields(kid.doc, kid),
        }
        rows.append((row, kid.doc))
    return rows


def parse_partition(
    cfg: ProcessingConfig, plugins: Sequence[str] = ()
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The ``mapInPandas`` function of :func:`parse_documents` (FILES -> DOCUMENTS)."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import pandas as pd

        import_plugins(plugins)  # third-party loaders register in this worker too

        from fmf_spark.schemas import DOCUMENTS_SCHEMA

        columns = DOCUMENTS_SCHEMA.fieldNames()
        for batch in batches:
            rows: list[dict[str, Any]] = []
            for rec in batch.to_dict("records"):
                rows.extend(row for row, _ in _with_children(rec, cfg))
            frame = pd.DataFrame(rows, columns=columns)
            frame["size"] = frame["size"].astype("Int64")
            frame["pages"] = frame["pages"].astype("Int32")
            yield frame

    return run


def parse_documents(
    files_df: DataFrame, processing_cfg: ProcessingConfig, plugins: Sequence[str] = ()
) -> DataFrame:
    """Parse a FILES_SCHEMA DataFrame into DOCUMENTS_SCHEMA (a row per file and child).

    Args:
        files_df: the output of a connector's ``to_dataframe``.
        processing_cfg: limits, OCR and loader settings.
        plugins: modules registering more loaders (the config's ``plugins:``).

    Returns:
        Documents with markdown ``text``; files that could not be read or parsed keep
        their row with ``status='error'`` and an ``error`` struct; child documents
        (attachments, archive members, to ``processing.max_depth``) follow their
        parent's row, linked by ``parent_doc_id``.

    Example:
        >>> files = get_connector("samples", cfg).to_dataframe(spark)  # doctest: +SKIP
        >>> docs = parse_documents(files, cfg.processing)  # doctest: +SKIP
    """
    from fmf_spark.schemas import DOCUMENTS_SCHEMA

    return files_df.mapInPandas(parse_partition(processing_cfg, plugins), DOCUMENTS_SCHEMA)


def chunk_partition(
    cfg: ChunkingConfig,
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The ``mapInPandas`` function of :func:`chunk_documents` (DOCUMENTS -> CHUNKS)."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import pandas as pd

        from fmf_spark.processing.tokens import token_counter
        from fmf_spark.schemas import CHUNKS_SCHEMA

        token_counter(cfg.encoding)  # load the BPE tables once per partition
        columns = CHUNKS_SCHEMA.fieldNames()
        for batch in batches:
            rows: list[tuple[Any, ...]] = []
            for rec in batch.to_dict("records"):
                meta = dict(rec["metadata"] or {})
                starts = meta.get("page_starts")
                page_starts = [int(s) for s in starts.split(",")] if starts else None
                base = {"path": rec["path"]}
                if rec.get("content_type"):
                    base["content_type"] = rec["content_type"]
                for c in chunk_text(rec["doc_id"], rec["text"] or "", cfg, page_starts, base):
                    rows.append(
                        (
                            c.doc_id,
                            c.chunk_id,
                            c.chunk_index,
                            c.text,
                            c.char_start,
                            c.char_end,
                            c.token_count,
                            c.metadata,
                        )
                    )
            if rows:
                yield pd.DataFrame(rows, columns=columns)

    return run


def chunk_documents(documents_df: DataFrame, chunking_cfg: ChunkingConfig) -> DataFrame:
    """Chunk the ``status='ok'`` documents into CHUNKS_SCHEMA rows.

    Args:
        documents_df: a DOCUMENTS_SCHEMA DataFrame (error rows are skipped).
        chunking_cfg: strategy, token budget, overlap and encoding.

    Example:
        >>> chunks = chunk_documents(docs, cfg.processing.chunking)  # doctest: +SKIP
    """
    from pyspark.sql import functions as F

    from fmf_spark.schemas import CHUNKS_SCHEMA, STATUS_OK

    ok = documents_df.where(F.col("status") == STATUS_OK).select(
        "doc_id", "path", "content_type", "text", "metadata"
    )
    return ok.mapInPandas(chunk_partition(chunking_cfg), CHUNKS_SCHEMA)


# --- the fused pass of `process`: read + parse + chunk in one Python worker ----------------

#: a document emits its chunks' rows in the same Arrow batch; flush past this many chars
_FUSED_BATCH_CHARS = 32 * 1024 * 1024


def fused_schema() -> StructType:
    """The rows of the fused pass (:data:`fmf_spark.schemas.FUSED_SCHEMA`)."""
    from fmf_spark.schemas import FUSED_SCHEMA

    return FUSED_SCHEMA


def _chunk_base(path: str, content_type: str | None) -> dict[str, str]:
    base = {"path": path}
    if content_type:
        base["content_type"] = content_type
    return base


def _page_starts(metadata: dict[str, str] | None) -> list[int] | None:
    starts = (metadata or {}).get("page_starts")
    return [int(s) for s in starts.split(",")] if starts else None


def fused_partition(
    connector: DataConnector,
    cfg: ProcessingConfig,
    plugins: Sequence[str] = (),
    schema: StructType | None = None,
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The ``mapInPandas`` function of :func:`read_parse_chunk` (listing -> fused rows).

    One Python pass per file: open it with the connector, parse it, chunk the text.
    The bytes and the text never cross to the JVM and back between the stages, which
    is what three chained ``mapInPandas`` cost (each one a worker, an Arrow copy each
    way and a pandas round trip per row).

    ``schema``: the fused schema plus a ``source_key`` column (the parse cache of
    :func:`fmf_spark.processing.pipeline.process`): every row of a file carries the
    ``source_key`` of its listing row.
    """

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import pandas as pd

        from fmf_spark.connectors.base import info_from_record, prepare_on_executor, read_resource
        from fmf_spark.processing.tokens import token_counter

        prepare_on_executor(connector)
        import_plugins(plugins)  # third-party loaders register in this worker too
        token_counter(cfg.chunking.encoding)  # load the BPE tables once per partition
        columns = (schema or fused_schema()).fieldNames()
        keyed = "source_key" in columns
        # every row names every column: a key left out would reach Arrow as NaN, which
        # the struct and map converters reject
        empty = dict.fromkeys(columns)
        rows: list[dict[str, Any]] = []
        chars = 0
        for batch in batches:
            for rec in batch.to_dict("records"):
                first = len(rows)
                read = read_resource(connector, info_from_record(rec))
                for row, doc in _with_children(read, cfg):
                    rows.append({**empty, **row, "kind": "document"})
                    if doc is None or doc.status != "ok":
                        continue
                    text = doc.text or ""
                    chars += 2 * len(text)  # the document and (about) its chunks
                    base = _chunk_base(row["path"], doc.content_type)
                    fixed = {
                        **empty,
                        "kind": "chunk",
                        "source": row["source"],
                        "uri": row["uri"],
                        "path": row["path"],
                        "status": doc.status,
                    }
                    starts = _page_starts(doc.metadata)
                    for c in chunk_text(doc.doc_id, text, cfg.chunking, starts, base):
                        rows.append(
                            {
                                **fixed,
                                "doc_id": c.doc_id,
                                "chunk_id": c.chunk_id,
                                "chunk_index": c.chunk_index,
                                "text": c.text,
                                "char_start": c.char_start,
                                "char_end": c.char_end,
                                "token_count": c.token_count,
                                "metadata": c.metadata,
                            }
                        )
                if keyed:
                    for row in rows[first:]:
                        row["source_key"] = rec["source_key"]
                if chars >= _FUSED_BATCH_CHARS:
                    yield _fused_frame(pd, rows, columns)
                    rows, chars = [], 0
        if rows:
            yield _fused_frame(pd, rows, columns)

    return run


def _fused_frame(pd: Any, rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    frame["modified"] = pd.to_datetime(frame["modified"], utc=True)
    for name, dtype in (
        ("size", "Int64"),
        ("pages", "Int32"),
        ("chunk_index", "Int32"),
        ("char_start", "Int64"),
        ("char_end", "Int64"),
        ("token_count", "Int32"),
    ):
        frame[name] = frame[name].astype(dtype)
    return frame


def read_parse_chunk(
    spark: SparkSession,
    connector: DataConnector,
    selector: str | Sequence[str] | None,
    processing_cfg: ProcessingConfig,
    plugins: Sequence[str] = (),
) -> DataFrame:
    """List on the driver; read, parse and chunk on the executors in one Python pass.

    The same rows as ``chunk_documents(parse_documents(connector.to_dataframe(...)))``
    and its documents, fused (see :func:`split_fused`): what :func:`process` runs.

    Args:
        spark: the session.
        connector: the connector (its ``list`` runs here, ``open`` on the executors).
        selector: glob(s) narrowing the connector's include list, or None.
        processing_cfg: limits, loaders and chunking.
        plugins: modules registering more loaders (the config's ``plugins:``).

    Returns:
        One DataFrame in :func:`fused_schema`; persist it before reading it twice.
    """
    from fmf_spark.connectors.base import listing_dataframe

    listing = listing_dataframe(spark, connector.list(selector))
    return listing.mapInPandas(fused_partition(connector, processing_cfg, plugins), fused_schema())


def split_fused(fused: DataFrame) -> tuple[DataFrame, DataFrame]:
    """The documents (DOCUMENTS_SCHEMA) and chunks (CHUNKS_SCHEMA) of a fused DataFrame.

    Chunk columns are nullable in the fused rows (documents leave them empty); a
    ``coalesce`` with a literal gives them back their non-null type, and is never taken
    on a chunk row.
    """
    from pyspark.sql import functions as F

    from fmf_spark.schemas import CHUNKS_SCHEMA, DOCUMENTS_SCHEMA

    docs = fused.where(F.col("kind") == "document").select(*DOCUMENTS_SCHEMA.fieldNames())
    chunks = fused.where(F.col("kind") == "chunk")
    defaults = {"text": "", "chunk_id": "", "chunk_index": 0, "char_start": 0, "char_end": 0}
    defaults["token_count"] = 0
    cols = []
    for field in CHUNKS_SCHEMA.fields:
        col = F.col(field.name)
        if not field.nullable and field.name in defaults:
            col = F.coalesce(col, F.lit(defaults[field.name]).cast(field.dataType))
        cols.append(col.alias(field.name))
    return docs, chunks.select(*cols)
