"""The processing layer: files to markdown documents to token-budgeted chunks.

Spark transforms (pandas UDFs, iterator form): :func:`parse_documents`,
:func:`chunk_documents`, and :func:`process` which writes both Delta tables. The same
work without Spark, one item at a time: :func:`parse_file`, :func:`chunk_text`,
:func:`count_tokens` (real OpenAI encodings, offline).

Importing this package does not import pyspark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fmf_spark.processing.chunking import Chunk, chunk_id_for, chunk_text
from fmf_spark.processing.parse import ParsedDocument, parse_file
from fmf_spark.processing.tokens import count_tokens

if TYPE_CHECKING:
    from fmf_spark.processing.pipeline import ProcessResult, process
    from fmf_spark.processing.spark import chunk_documents, parse_documents

_LAZY = {
    "parse_documents": "fmf_spark.processing.spark",
    "chunk_documents": "fmf_spark.processing.spark",
    "process": "fmf_spark.processing.pipeline",
    "ProcessResult": "fmf_spark.processing.pipeline",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fmf_spark.processing' has no attribute {name!r}")


__all__ = [
    "Chunk",
    "ParsedDocument",
    "ProcessResult",
    "chunk_documents",
    "chunk_id_for",
    "chunk_text",
    "count_tokens",
    "parse_documents",
    "parse_file",
    "process",
]
