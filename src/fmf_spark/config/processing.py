"""Config models of the ``processing`` section: loaders, OCR, chunking."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fmf_spark.config.base import StrictModel


class OcrConfig(StrictModel):
    enabled: bool = Field(default=True, description="OCR images and image-only PDF pages.")
    languages: str = Field(default="eng", description="Tesseract language codes, '+'-joined.")
    tesseract_cmd: str | None = Field(default=None, description="Path of the tesseract binary.")
    threads: int = Field(
        default=1,
        ge=1,
        description="OMP_THREAD_LIMIT for tesseract. Spark already runs one task per core; "
        "tesseract's own threads on top of that made OCR 7x slower on a 2-core machine.",
    )
    detect_orientation: bool = Field(
        default=True,
        description="Run tesseract's orientation detection (OSD) first and OCR the page "
        "upright; a scan rotated 90/180/270 degrees otherwise reads as garbage.",
    )


class ChunkingConfig(StrictModel):
    strategy: Literal["tokens", "markdown", "page"] = "markdown"
    max_tokens: int = Field(default=512, gt=0)
    overlap_tokens: int = Field(default=64, ge=0)
    encoding: Literal["o200k_base", "cl100k_base"] = Field(
        default="o200k_base", description="OpenAI encoding used to count tokens."
    )


class ProcessingConfig(StrictModel):
    max_file_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    cache: bool = Field(
        default=True,
        description="fmf run: keep each file's parse under <artefacts>/_cache/processed and "
        "reuse it while the file's source, URI, size, modification time and ETag, the "
        "processing settings and the fmf version are unchanged.",
    )
    parse_timeout_s: float = Field(default=60.0, gt=0, description="Time limit to parse one file.")
    max_compression_ratio: float = Field(
        default=100.0, gt=1, description="XLSX/zip bomb guard: uncompressed/compressed."
    )
    max_depth: int = Field(
        default=3,
        ge=0,
        description="How deep child documents (e-mail attachments, archive members) are "
        "expanded: 1 = a file's own children; members nested deeper become "
        "`processing.too_deep` error rows. 0 expands none.",
    )
    max_children: int = Field(
        default=1000,
        ge=0,
        description="Child documents taken from one file; the rest are counted in the "
        "parent's `children_skipped` metadata.",
    )
    max_expanded_bytes: int = Field(
        default=1024 * 1024 * 1024,
        gt=0,
        description="Bytes of all child documents of one file together (archives in "
        "archives included); past it, members become `processing.zip_bomb` error rows.",
    )
    ocr: OcrConfig = Field(default_factory=OcrConfig)
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)
