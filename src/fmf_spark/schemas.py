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

Requires pyspark (imported by the Spark code paths only, never by ``fmf --help``).
"""

from __future__ import annotations

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

__all__ = [
    "CHUNKS_SCHEMA",
    "DOCUMENTS_SCHEMA",
    "ERROR_STRUCT",
    "FILES_SCHEMA",
    "METADATA_MAP",
    "OUTPUTS_SCHEMA",
    "REQUESTS_SCHEMA",
    "STATUS_ERROR",
    "STATUS_OK",
    "STATUS_SKIPPED",
]
