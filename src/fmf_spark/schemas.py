"""The DataFrame contracts between the layers, declared once.

Every stage adds columns and none drops the keys. Every row carries its own outcome:
a failed row has ``status='error'`` and an ``error`` struct (``code``, ``message``,
``retryable``); it is never dropped and never crashes the job.

- **files** (connectors): where the bytes came from, and the bytes.
- **documents** (processing): files + ``doc_id`` (sha256 of content), type, markdown text.
- **chunks**: pieces of a document's text with offsets and real token counts.
- **outputs** (chains/inference): one row per model call, keyed by ``request_id``.
- **requests** (inference, ``artefacts/<run_id>/requests``): one row per call made in the
  run, with when it started, was admitted and sent, ended, and got 429s (the run report's
  request timeline).

And the frames inside a stage: the **listing** a connector ships to its readers, the
**fused** rows of ``process`` (documents and chunks in one pass), the **inference
results** one task returns, and the **export failures** a sink rejected.

Requires pyspark (imported by the Spark code paths only, never by ``fmf --help``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

if TYPE_CHECKING:
    from pyspark.sql import Column

STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_SKIPPED = "skipped"

ERROR_STRUCT = StructType(
    [
        StructField("code", StringType(), True),
        StructField("message", StringType(), True),
        StructField("retryable", BooleanType(), True),
    ]
)

METADATA_MAP = MapType(StringType(), StringType(), True)

FILES_SCHEMA = StructType(
    [
        StructField("source", StringType(), False),
        StructField("uri", StringType(), False),
        StructField("path", StringType(), False),
        StructField("size", LongType(), True),
        StructField("modified", TimestampType(), True),
        StructField("etag", StringType(), True),
        StructField("content", BinaryType(), True),
        # a file that could not be read (too large, vanished, denied) is still a row
        StructField("status", StringType(), False),
        StructField("error", ERROR_STRUCT, True),
    ]
)

DOCUMENTS_SCHEMA = StructType(
    [
        StructField("source", StringType(), False),
        StructField("uri", StringType(), False),
        StructField("path", StringType(), False),
        StructField("size", LongType(), True),
        StructField("modified", TimestampType(), True),
        StructField("etag", StringType(), True),
        StructField("doc_id", StringType(), False),
        StructField("content_type", StringType(), True),
        StructField("text", StringType(), True),
        StructField("pages", IntegerType(), True),
        StructField("metadata", METADATA_MAP, True),
        StructField("status", StringType(), False),
        StructField("error", ERROR_STRUCT, True),
        # a child document (e-mail attachment, archive member) names its parent's doc_id
        # and its own name there; both null for a file
        StructField("parent_doc_id", StringType(), True),
        StructField("attachment_name", StringType(), True),
    ]
)

CHUNKS_SCHEMA = StructType(
    [
        StructField("doc_id", StringType(), False),
        StructField("chunk_id", StringType(), False),
        StructField("chunk_index", IntegerType(), False),
        StructField("text", StringType(), False),
        StructField("char_start", LongType(), False),
        StructField("char_end", LongType(), False),
        StructField("token_count", IntegerType(), False),
        StructField("metadata", METADATA_MAP, True),
    ]
)

OUTPUTS_SCHEMA = StructType(
    [
        StructField("request_id", StringType(), False),
        StructField("doc_id", StringType(), True),
        StructField("chunk_id", StringType(), True),
        StructField("step", StringType(), False),
        StructField("prompt_id", StringType(), True),
        StructField("prompt_version", StringType(), True),
        StructField("prompt_hash", StringType(), True),
        StructField("model", StringType(), True),
        StructField("output_text", StringType(), True),
        StructField("output_json", StringType(), True),
        StructField("prompt_tokens", LongType(), True),
        StructField("completion_tokens", LongType(), True),
        StructField("cost_usd", DoubleType(), True),
        StructField("latency_ms", LongType(), True),
        StructField("attempts", IntegerType(), True),
        StructField("status", StringType(), False),
        StructField("error", ERROR_STRUCT, True),
    ]
)

#: one row per model call made in a run (``artefacts/<run_id>/requests``): its outcome and
#: when it started, was sent, ended and got 429s (the run report's request timeline)
REQUESTS_SCHEMA = StructType(
    [
        StructField("request_id", StringType(), False),
        StructField("doc_id", StringType(), True),
        StructField("step", StringType(), False),
        StructField("model", StringType(), True),
        StructField("status", StringType(), False),
        StructField("error_code", StringType(), True),
        StructField("attempts", IntegerType(), True),
        StructField("latency_ms", LongType(), True),
        StructField("prompt_tokens", LongType(), True),
        StructField("completion_tokens", LongType(), True),
        StructField("cost_usd", DoubleType(), True),
        # first attempt started (before the limiter's wait)
        StructField("started_at", TimestampType(), True),
        # the answered attempt was admitted by the limiter and sent
        StructField("sent_at", TimestampType(), True),
        StructField("ended_at", TimestampType(), True),
        StructField("rate_limited", IntegerType(), True),
        StructField("rate_limited_at", ArrayType(TimestampType(), True), True),
    ]
)

#: what a connector lists on the driver and its readers open on the executors: the
#: files' metadata columns, plus ``id`` (the connector's handle: S3 key, Graph item id)
LISTING_SCHEMA = StructType(
    [
        *FILES_SCHEMA.fields[:3],
        StructField("id", StringType(), True),
        *FILES_SCHEMA.fields[3:6],
    ]
)

#: the chunk-only columns of the fused rows (``doc_id``, ``text``, ``metadata`` are shared)
FUSED_CHUNK_COLUMNS = ("chunk_id", "chunk_index", "char_start", "char_end", "token_count")

#: ``process``'s one pass: a ``kind`` column, then DOCUMENTS_SCHEMA, then the chunk
#: columns (nullable here: a ``document`` row leaves them empty). A ``chunk`` row fills
#: ``doc_id``, ``text``, ``metadata`` and the chunk columns; ``path`` and the other
#: non-null document columns repeat its document's.
FUSED_SCHEMA = StructType(
    [
        StructField("kind", StringType(), False),
        *DOCUMENTS_SCHEMA.fields,
        *[
            StructField(f.name, f.dataType, True)
            for f in CHUNKS_SCHEMA.fields
            if f.name in FUSED_CHUNK_COLUMNS
        ],
    ]
)

#: the outputs columns one inference task returns per distinct request (joined back to
#: the input rows by ``request_id``); all nullable, as a task builds them
INFERENCE_RESULT_COLUMNS = (
    "request_id",
    "output_text",
    "output_json",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_ms",
    "attempts",
    "status",
    "error",
)
INFERENCE_RESULT_SCHEMA = StructType(
    [
        StructField(f.name, f.dataType, True)
        for f in OUTPUTS_SCHEMA.fields
        if f.name in INFERENCE_RESULT_COLUMNS
    ]
)

#: the timing columns a task adds to each result (``observability.telemetry``'s call
#: observer); kept in the run's ``requests`` table, dropped from the outputs
INFERENCE_TIMING_COLUMNS = ("started_at", "sent_at", "ended_at", "rate_limited", "rate_limited_at")
#: what one inference task returns: the results, then the call's timings
TIMED_INFERENCE_RESULT_SCHEMA = StructType(
    [
        *INFERENCE_RESULT_SCHEMA.fields,
        *[f for f in REQUESTS_SCHEMA.fields if f.name in INFERENCE_TIMING_COLUMNS],
    ]
)

#: the rows a sink rejected, appended per batch to ``<run>/export_errors/<sink>``
EXPORT_FAILURES_SCHEMA = StructType(
    [
        StructField("run_id", StringType(), False),
        StructField("batch_id", LongType(), False),
        StructField("key", StringType(), False),
        StructField("status", StringType(), False),
        StructField("error", ERROR_STRUCT, False),
    ]
)


def error_column(code: str, message: Column | str, retryable: bool) -> Column:
    """An ``error`` struct column (:data:`ERROR_STRUCT`) for rows failed in Spark itself.

    The Spark-side twin of :func:`fmf_spark.errors.error_struct`: ``message`` is a
    column or a literal text.
    """
    from pyspark.sql import functions as F

    text = F.lit(message) if isinstance(message, str) else message
    return F.struct(
        F.lit(code).alias("code"), text.alias("message"), F.lit(retryable).alias("retryable")
    )


__all__ = [
    "CHUNKS_SCHEMA",
    "DOCUMENTS_SCHEMA",
    "ERROR_STRUCT",
    "EXPORT_FAILURES_SCHEMA",
    "FILES_SCHEMA",
    "FUSED_CHUNK_COLUMNS",
    "FUSED_SCHEMA",
    "INFERENCE_RESULT_COLUMNS",
    "INFERENCE_RESULT_SCHEMA",
    "INFERENCE_TIMING_COLUMNS",
    "LISTING_SCHEMA",
    "METADATA_MAP",
    "OUTPUTS_SCHEMA",
    "REQUESTS_SCHEMA",
    "STATUS_ERROR",
    "STATUS_OK",
    "STATUS_SKIPPED",
    "TIMED_INFERENCE_RESULT_SCHEMA",
    "error_column",
]
