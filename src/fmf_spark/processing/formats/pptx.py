"""PowerPoint (``.pptx``) to markdown with python-pptx (MIT): one page per slide.

Each slide is ``## Slide N: <title>``, then its shapes in reading order (top to
bottom, then left to right; groups opened): body placeholders as bulleted lists with
their levels, other text boxes as paragraphs, tables as markdown tables, picture alt
text, and the speaker notes under ``### Notes``. Slides are the document's pages
(``page_starts``), so the chunker's ``page`` strategy cuts at slides.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from fmf_spark._deps import require
from fmf_spark.config.processing import ProcessingConfig
from fmf_spark.processing.base import Loaded, LoaderSpec, register_loader
from fmf_spark.processing.formats.docx import core_metadata
from fmf_spark.processing.loaders import join_pages, markdown_table, open_package
from fmf_spark.processing.text import ParseFailure, normalize

PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

# placeholder types whose paragraphs are bullets: BODY (2), OBJECT (7)
_BULLETED = {2, 7}
# TITLE (1), CENTER_TITLE (3): the slide title, taken once
_TITLES = {1, 3}


def _kind(shape: Any) -> int | None:
    """A shape's MSO_SHAPE_TYPE; None for a kind python-pptx does not name (it raises)."""
    try:
        kind = shape.shape_type
    except NotImplementedError:
        return None
    return None if kind is None else int(kind)


def _ordered(shapes: Any) -> Iterator[Any]:
    """Shapes in reading order, group shapes opened."""

    def key(shape: Any) -> tuple[int, int]:
        return (shape.top or 0, shape.left or 0)

    for shape in sorted(shapes, key=key):
        if _kind(shape) == 6:  # MSO_SHAPE_TYPE.GROUP
            yield from _ordered(shape.shapes)
        else:
            yield shape


def _placeholder_type(shape: Any) -> int | None:
    if not shape.is_placeholder:
        return None
    try:
        return int(shape.placeholder_format.type)
    except (AttributeError, ValueError):
        return None


def _text_frame(frame: Any, bulleted: bool) -> str:
    lines = []
    for para in frame.paragraphs:
        text = "".join(run.text for run in para.runs) or para.text
        text = text.replace("\v", " ").strip()
        if not text:
            continue
        if bulleted:
            lines.append("  " * para.level + "- " + text)
        else:
            lines.append(text)
    return "\n".join(lines) if bulleted else "\n\n".join(lines)


def _slide(number: int, slide: Any) -> str:
    title_shape = slide.shapes.title
    title = title_shape.text_frame.text.strip() if title_shape is not None else ""
    blocks = [f"## Slide {number}: {title}".rstrip(": ") if title else f"## Slide {number}"]
    for shape in _ordered(slide.shapes):
        kind = _placeholder_type(shape)
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        if getattr(shape, "has_table", False) and shape.has_table:
            rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
            blocks.append(markdown_table(rows))
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            text = _text_frame(shape.text_frame, kind in _BULLETED)
            if kind in _TITLES and text:
                text = "### " + text.replace("\n", " ")
            blocks.append(text)
        elif _kind(shape) == 13:  # MSO_SHAPE_TYPE.PICTURE
            alt = (shape._element.nvPicPr.cNvPr.get("descr") or "").strip()
            if alt:
                blocks.append(f"![{alt}]()")
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        text = notes.text.strip() if notes is not None else ""
        if text:
            blocks.append("### Notes\n\n" + text)
    return normalize("\n\n".join(b for b in blocks if b.strip()))


def load_pptx(data: bytes, cfg: ProcessingConfig) -> Loaded:
    """A ``.pptx`` file as markdown, one page per slide."""
    open_package(data, cfg, "PPTX").close()
    pptx = require("pptx", "processing")
    try:
        prs = pptx.Presentation(io.BytesIO(data))
        slides = [_slide(i, slide) for i, slide in enumerate(prs.slides, start=1)]
    except Exception as exc:  # python-pptx raises PackageNotFoundError, KeyError, lxml errors
        raise ParseFailure(
            f"PPTX: {type(exc).__name__}: {exc}", code="processing.corrupt"
        ) from None
    text, starts = join_pages(slides)
    meta = core_metadata(prs.core_properties)
    meta["slides"] = str(len(slides))
    return Loaded(text, pages=len(slides), page_starts=starts, metadata=meta)


def _zip_sniff(zf: Any) -> bool:
    return "ppt/presentation.xml" in zf.namelist()


register_loader(LoaderSpec(PPTX, load_pptx, ("pptx", "pptm", "ppsx", "potx"), zip_sniff=_zip_sniff))
