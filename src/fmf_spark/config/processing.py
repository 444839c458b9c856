"""Config models of the ``processing`` section: loaders, OCR, chunking."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fmf_spark.config.base import StrictModel


class OcrConfig(StrictModel):
    enabled: bool = Field(default=True, description="OCR images and image-only PDF pages.")
    languages: str = Field(default="eng", description="Tesseract language codes, '+'-joined.")
    tesseract_cmd: str | None = Field(default=None, description="Path of the tesseract binary.")


class ChunkingConfig(StrictModel):
    strategy: Literal["tokens", "markdown", "page"] = "markdown"
    max_tokens: int = Field(default=512, gt=0)
    overlap_tokens: int = Field(default=64, ge=0)
    encoding: Literal["o200k_base", "cl100k_base"] = Field(
        default="o200k_base", description="OpenAI encoding used to count tokens."
    )


class ProcessingConfig(StrictModel):
    max_file_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    parse_timeout_s: float = Field(default=60.0, gt=0, description="Time limit to parse one file.")
    max_compression_ratio: float = Field(
        default=100.0, gt=1, description="XLSX/zip bomb guard: uncompressed/compressed."
    )
    ocr: OcrConfig = Field(default_factory=OcrConfig)
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)
