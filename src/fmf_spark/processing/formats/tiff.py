"""TIFF images (``.tif``/``.tiff``), multi-page, through OCR: one page per frame."""

from __future__ import annotations

import io

from fmf_spark._deps import require
from fmf_spark.config.processing import ProcessingConfig
from fmf_spark.processing import text as types
from fmf_spark.processing.base import Loaded, LoaderSpec, register_loader
from fmf_spark.processing.loaders import join_pages, ocr_image
from fmf_spark.processing.text import ParseFailure, normalize


def load_tiff(data: bytes, cfg: ProcessingConfig) -> Loaded:
    """OCR every frame of a TIFF; the frames are the document's pages."""
    if not cfg.ocr.enabled:
        raise ParseFailure(
            "OCR is disabled (processing.ocr.enabled)", code="processing.ocr_disabled"
        )
    image_mod = require("PIL.Image", "ocr")
    try:
        image = image_mod.open(io.BytesIO(data))
        frames = []
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            out = io.BytesIO()
            frame = image.convert("RGB") if image.mode not in ("L", "RGB", "1") else image
            frame.save(out, format="PNG")
            frames.append(out.getvalue())
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError on broken files
        raise ParseFailure(
            f"TIFF: {type(exc).__name__}: {exc}", code="processing.corrupt"
        ) from None
    pages = [normalize(ocr_image(frame, cfg.ocr, cfg.parse_timeout_s)) for frame in frames]
    text, starts = join_pages(pages)
    return Loaded(text, pages=len(pages), page_starts=starts, metadata={"ocr": "true"})


register_loader(LoaderSpec(types.TIFF, load_tiff, ("tif", "tiff")))
