"""OpenDocument text, spreadsheet and presentation (``.odt``, ``.ods``, ``.odp``).

Their ``content.xml`` is read with lxml (BSD), which is already a dependency; ``odfpy``
(Apache-2.0/GPL/LGPL, last released 2020) builds its own DOM of the same XML and would
add a dependency and a slower tree for nothing a reader needs. Kept: headings (outline
level), lists with their levels (numbered or bulleted from the list style), tables
(repeated and spanned cells, the cell's displayed text), links, footnotes as ``[^n]``;
a spreadsheet's sheets and a presentation's slides (with notes) are its pages.
Metadata from ``meta.xml``: title, author, dates.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fmf_spark._deps import require
from fmf_spark.config.processing import ProcessingConfig
from fmf_spark.processing.base import Loaded, LoaderSpec, LoadFunction, register_loader
from fmf_spark.processing.formats.docx import join_blocks
from fmf_spark.processing.loaders import join_pages, markdown_table, open_package, trim_rows
from fmf_spark.processing.text import ParseFailure, normalize

ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODP = "application/vnd.oasis.opendocument.presentation"

_NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "presentation": "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0",
    "style": "urn:oasis:names:tc:opendocument:xmlns:style:1.0",
    "svg": "urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0",
    "xlink": "http://www.w3.org/1999/xlink",
    "dc": "http://purl.org/dc/elements/1.1/",
    "meta": "urn:oasis:names:tc:opendocument:xmlns:meta:1.0",
}
T = f"{{{_NS['text']}}}"
TB = f"{{{_NS['table']}}}"
D = f"{{{_NS['draw']}}}"
P = f"{{{_NS['presentation']}}}"
OFFICE = f"{{{_NS['office']}}}"
#: how many times a repeated empty row or column is written out at most
_MAX_REPEAT = 256


@dataclass
class _Context:
    #: list style name -> levels (1-based) that are numbered
    numbered: dict[str, set[int]]
    notes: list[str] = field(default_factory=list)


def _list_styles(*roots: Any) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for root in roots:
        if root is None:
            continue
        for ls in root.iter(T + "list-style"):
            levels = {
                int(lvl.get(T + "level") or 1) for lvl in ls.iter(T + "list-level-style-number")
            }
            out[ls.get(f"{{{_NS['style']}}}name") or ""] = levels
    return out


def _inline(el: Any, ctx: _Context) -> str:
    parts = [el.text or ""]
    for child in el:
        tag = child.tag
        if tag == T + "s":
            parts.append(" " * int(child.get(T + "c") or 1))
        elif tag == T + "tab":
            parts.append("\t")
        elif tag == T + "line-break":
            parts.append("\n")
        elif tag == T + "a":
            inner = _inline(child, ctx).strip()
            href = child.get(f"{{{_NS['xlink']}}}href") or ""
            parts.append(f"[{inner}]({href})" if inner and href.startswith("http") else inner)
        elif tag == T + "note":
            citation = (child.findtext(T + "note-citation") or str(len(ctx.notes) + 1)).strip()
            body = child.find(T + "note-body")
            text = " ".join(t for _, t in _blocks(body, ctx) if t) if body is not None else ""
            ctx.notes.append(f"[^{citation}]: {text}")
            parts.append(f"[^{citation}]")
        elif tag in (OFFICE + "annotation", OFFICE + "annotation-end", T + "bookmark-ref"):
            pass
        elif tag == D + "frame":
            title = child.findtext(f"{{{_NS['svg']}}}title") or child.findtext(
                f"{{{_NS['svg']}}}desc"
            )
            if title and title.strip():
                parts.append(f"![{title.strip()}]()")
        else:
            parts.append(_inline(child, ctx))
        parts.append(child.tail or "")
    return "".join(parts)


def _list(el: Any, ctx: _Context, style: str, depth: int) -> Iterator[tuple[str, str]]:
    style = el.get(T + "style-name") or style
    numbered = depth + 1 in ctx.numbered.get(style, set())
    n = 0
    for item in el:
        if item.tag not in (T + "list-item", T + "list-header"):
            continue
        n += 1
        marker = f"{n}." if numbered else "-"
        first = True
        for child in item:
            if child.tag == T + "list":
                yield from _list(child, ctx, style, depth + 1)
            elif child.tag in (T + "p", T + "h"):
                text = " ".join(_inline(child, ctx).split())
                if text:
                    lead = f"{marker} " if first else "  "
                    yield "list", "  " * depth + lead + text
                    first = False


def _cells(row: Any, ctx: _Context) -> list[str]:
    cells: list[str] = []
    for cell in row:
        if cell.tag not in (TB + "table-cell", TB + "covered-table-cell"):
            continue
        repeat = int(cell.get(TB + "number-columns-repeated") or 1)
        text = "" if cell.tag == TB + "covered-table-cell" else _cell_text(cell, ctx)
        cells.extend([text] * (repeat if text else min(repeat, _MAX_REPEAT)))
    return cells


def _cell_text(cell: Any, ctx: _Context) -> str:
    lines = [" ".join(_inline(p, ctx).split()) for p in cell.iter(T + "p", T + "h")]
    return "\n".join(line for line in lines if line)


def table_rows(table: Any, ctx: _Context) -> list[list[str]]:
    """A table's rows (repeats written out, blank rows dropped, padding trimmed)."""
    rows: list[list[str]] = []
    for row in table.iter(TB + "table-row"):
        if row.getparent() is not table and row.getparent().getparent() is not table:
            continue  # a nested table's rows (a row sits in the table or a row group)
        cells = _cells(row, ctx)
        if not any(c.strip() for c in cells):
            continue
        repeat = int(row.get(TB + "number-rows-repeated") or 1)
        rows.extend([cells] * min(repeat, _MAX_REPEAT))
    return trim_rows(rows)


def _blocks(container: Any, ctx: _Context) -> Iterator[tuple[str, str]]:
    for child in container:
        tag = child.tag
        if tag == T + "h":
            level = int(child.get(T + "outline-level") or 1)
            text = " ".join(_inline(child, ctx).split())
            if text:
                yield "heading", "#" * min(level, 6) + " " + text
        elif tag == T + "p":
            yield "text", _inline(child, ctx).strip()
        elif tag == T + "list":
            yield from _list(child, ctx, "", 0)
        elif tag == TB + "table":
            yield "table", markdown_table(table_rows(child, ctx))
        elif (
            tag in (T + "section", T + "index-body", D + "text-box", T + "table-of-content")
            or tag == D + "frame"
        ):
            yield from _blocks(child, ctx)


def _coordinate(value: str | None) -> float:
    match = re.match(r"-?[\d.]+", value or "")
    return float(match.group(0)) if match else 0.0


def _slide(number: int, page: Any, ctx: _Context) -> str:
    frames = sorted(
        (f for f in page if f.tag in (D + "frame", D + "custom-shape", D + "g")),
        key=lambda f: (
            _coordinate(f.get(f"{{{_NS['svg']}}}y")),
            _coordinate(f.get(f"{{{_NS['svg']}}}x")),
        ),
    )
    title = ""
    blocks: list[tuple[str, str]] = []
    for frame in frames:
        kind = frame.get(P + "class")
        text = join_blocks(list(_blocks(frame, ctx)))
        if kind == "title" and not title:
            title = " ".join(text.split())
        elif text:
            blocks.append(("text", text))
    notes = page.find(P + "notes")
    heading = f"## Slide {number}: {title}" if title else f"## Slide {number}"
    out = [heading, join_blocks(blocks)]
    if notes is not None:
        note_text = join_blocks(
            [
                ("text", join_blocks(list(_blocks(f, ctx))))
                for f in notes
                if f.get(P + "class") == "notes"
            ]
        )
        if note_text:
            out.append("### Notes\n\n" + note_text)
    return normalize("\n\n".join(part for part in out if part))


def _metadata(meta_root: Any) -> dict[str, str]:
    if meta_root is None:
        return {}
    out = {}
    for key, path in (
        ("title", "office:meta/dc:title"),
        ("author", "office:meta/meta:initial-creator"),
        ("last_modified_by", "office:meta/dc:creator"),
        ("created", "office:meta/meta:creation-date"),
        ("modified", "office:meta/dc:date"),
    ):
        value = meta_root.findtext(path, namespaces=_NS)
        if value and value.strip():
            out[key] = value.strip()
    return out


def _load(data: bytes, cfg: ProcessingConfig, expected: str) -> Loaded:
    etree = require("lxml.etree", "processing")
    with open_package(data, cfg, expected) as zf:
        names = set(zf.namelist())
        try:
            content = etree.fromstring(zf.read("content.xml"), etree.XMLParser(huge_tree=True))
            styles = etree.fromstring(zf.read("styles.xml")) if "styles.xml" in names else None
            meta_root = etree.fromstring(zf.read("meta.xml")) if "meta.xml" in names else None
        except KeyError:
            raise ParseFailure(
                f"{expected}: no content.xml in the package", code="processing.corrupt"
            ) from None
        except etree.XMLSyntaxError as exc:
            raise ParseFailure(f"{expected}: {exc}", code="processing.corrupt") from None
    ctx = _Context(_list_styles(content, styles))
    meta = _metadata(meta_root)
    body = content.find(f"{OFFICE}body")
    if body is None:
        raise ParseFailure(f"{expected}: no office:body", code="processing.corrupt")
    sheet_root = body.find(f"{OFFICE}spreadsheet")
    deck = body.find(f"{OFFICE}presentation")
    if sheet_root is not None:
        sheets: list[str] = []
        names_list = []
        for table in sheet_root.iter(TB + "table"):
            name = table.get(TB + "name") or f"Sheet{len(sheets) + 1}"
            names_list.append(name)
            rows = table_rows(table, ctx)
            body_md = markdown_table(rows)
            sheets.append(f"## Sheet: {name}\n\n{body_md}" if body_md else f"## Sheet: {name}")
        meta["sheets"] = ",".join(names_list)
        text, starts = join_pages([normalize(s) for s in sheets])
        return Loaded(text, pages=len(sheets), page_starts=starts, metadata=meta)
    if deck is not None:
        slides = [_slide(i, page, ctx) for i, page in enumerate(deck.iter(D + "page"), start=1)]
        meta["slides"] = str(len(slides))
        text, starts = join_pages(slides)
        return Loaded(text, pages=len(slides), page_starts=starts, metadata=meta)
    office_text = body.find(f"{OFFICE}text")
    text = join_blocks(list(_blocks(office_text if office_text is not None else body, ctx)))
    if ctx.notes:
        text += "\n\n" + "\n".join(ctx.notes)
    return Loaded(text, metadata=meta)


def _mimetype_sniff(mimetype: str) -> Any:
    def sniff(zf: Any) -> bool:
        try:
            return bool(zf.read("mimetype").decode("ascii", "replace").strip() == mimetype)
        except KeyError:
            return False

    return sniff


def _loader(name: str) -> LoadFunction:
    def load(data: bytes, cfg: ProcessingConfig) -> Loaded:
        return _load(data, cfg, name)

    return load


for _type, _exts in ((ODT, ("odt", "ott")), (ODS, ("ods", "ots")), (ODP, ("odp", "otp"))):
    register_loader(
        LoaderSpec(_type, _loader(_exts[0].upper()), _exts, zip_sniff=_mimetype_sniff(_type))
    )
