"""The Spark side of processing: pandas UDF factories over the pure-Python stages.

Both are ``DataFrame -> DataFrame`` transforms built on ``mapInPandas`` (the iterator
form): the output schema is declared once (:mod:`fmf_spark.schemas`), per-partition
set-up (tokenizer tables, config) happens once before the loop, and every input row
gives an output row (parse) or its chunks (chunk), failures included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from fmf_spark.config.processing import ChunkingConfig, ProcessingConfig
from fmf_spark.processing.chunking import chunk_text
from fmf_spark.processing.parse import doc_id_for, parse_file

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame

_PASSTHROUGH = ("source", "uri", "path", "size", "modified", "etag")


def parse_partition(
    cfg: ProcessingConfig,
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The ``mapInPandas`` function of :func:`parse_documents` (FILES -> DOCUMENTS)."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import pandas as pd

        from fmf_spark.schemas import DOCUMENTS_SCHEMA

        columns = DOCUMENTS_SCHEMA.fieldNames()
        for batch in batches:
            rows: list[dict[str, Any]] = []
            for rec in batch.to_dict("records"):
                row = {k: rec[k] for k in _PASSTHROUGH}
                if rec["status"] != "ok":
                    # the connector could not read it: keep its error, never drop the row
                    row.update(
                        doc_id=doc_id_for(None, rec["uri"]),
                        content_type=None,
                        text=None,
                        pages=None,
                        metadata={},
                        status=rec["status"],
                        error=rec["error"],
                    )
                else:
                    doc = parse_file(rec["content"], rec["path"], cfg, rec["uri"])
                    row.update(
                        doc_id=doc.doc_id,
                        content_type=doc.content_type,
                        text=doc.text,
                        pages=doc.pages,
                        metadata=doc.metadata,
                        status=doc.status,
                        error=doc.error,
                    )
                rows.append(row)
            frame = pd.DataFrame(rows, columns=columns)
            frame["size"] = frame["size"].astype("Int64")
            frame["pages"] = frame["pages"].astype("Int32")
            yield frame

    return run


def parse_documents(files_df: DataFrame, processing_cfg: ProcessingConfig) -> DataFrame:
    """Parse a FILES_SCHEMA DataFrame into DOCUMENTS_SCHEMA (one row per file).

    Args:
        files_df: the output of a connector's ``to_dataframe``.
        processing_cfg: limits, OCR and loader settings.

    Returns:
        Documents with markdown ``text``; files that could not be read or parsed keep
        their row with ``status='error'`` and an ``error`` struct.

    Example:
        >>> files = get_connector("samples", cfg).to_dataframe(spark)  # doctest: +SKIP
        >>> docs = parse_documents(files, cfg.processing)  # doctest: +SKIP
    """
    from fmf_spark.schemas import DOCUMENTS_SCHEMA

    return files_df.mapInPandas(parse_partition(processing_cfg), DOCUMENTS_SCHEMA)


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
