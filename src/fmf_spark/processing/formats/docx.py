"""Word (``.docx``) to markdown with python-docx (MIT).

python-docx opens the package and gives the parts (styles, numbering, headers,
footnotes, core properties); the body is walked as its XML in document order, so
paragraphs, tables and content controls come out where they stand. Kept: headings
(``Heading N``/``Title`` styles or an outline level), bulleted and numbered lists with
their levels (from the numbering definitions, also when a style carries them), bold,
italic and hyperlinks, tables (a merged cell's text repeated in every row and column
it spans, so that each row reads whole), headers and footers once,
footnotes and endnotes as ``[^n]`` references with their text at the end, image alt
text. Deleted tracked changes are left out, insertions kept.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fmf_spark._deps import require
from fmf_spark.config.processing import ProcessingConfig
from fmf_spark.processing.base import Loaded, LoaderSpec, register_loader
from fmf_spark.processing.loaders import markdown_table, open_package
from fmf_spark.processing.text import ParseFailure

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_WP_DOCPR = "{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}docPr"
_RT = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
_HEADING = re.compile(r"heading\s*([1-9])$", re.I)
# "List Bullet 2", "List Number 3": Word's styles for deeper list levels, each with its
# own numbering at level 0 (the depth is in the name and the indent, not in ilvl)
_LIST_STYLE_LEVEL = re.compile(r"list\b.*?\s([2-9])$", re.I)
_FALSE = {"0", "false", "off", "none"}


def _val(el: Any, tag: str) -> str | None:
    child = el.find(tag) if el is not None else None
    return None if child is None else child.get(W + "val")


def _on(rpr: Any, tag: str) -> bool:
    if rpr is None:
        return False
    el = rpr.find(W + tag)
    return el is not None and (el.get(W + "val") or "true").lower() not in _FALSE


@dataclass
class _Style:
    name: str
    based_on: str | None
    num: tuple[str, int] | None
    outline: int | None


@dataclass
class _Context:
    styles: dict[str, _Style]
    #: numId -> ilvl -> numFmt
    formats: dict[str, dict[int, str]]
    links: dict[str, str]
    counters: dict[tuple[str, int], int] = field(default_factory=dict)


def _styles(document: Any) -> dict[str, _Style]:
    out: dict[str, _Style] = {}
    for st in document.styles.element.iter(W + "style"):
        ppr = st.find(W + "pPr")
        num = None
        outline = None
        if ppr is not None:
            numpr = ppr.find(W + "numPr")
            if numpr is not None and _val(numpr, W + "numId") not in (None, "0"):
                num = (str(_val(numpr, W + "numId")), int(_val(numpr, W + "ilvl") or 0))
            level = _val(ppr, W + "outlineLvl")
            outline = int(level) if level is not None and level.isdigit() else None
        out[st.get(W + "styleId") or ""] = _Style(
            _val(st, W + "name") or "", _val(st, W + "basedOn"), num, outline
        )
    return out


def _numbering(document: Any) -> dict[str, dict[int, str]]:
    try:
        part = document.part.numbering_part
    except (KeyError, NotImplementedError):
        return {}
    root = part.element
    abstract: dict[str, dict[int, str]] = {}
    for an in root.iter(W + "abstractNum"):
        levels = {}
        for lvl in an.iter(W + "lvl"):
            levels[int(lvl.get(W + "ilvl") or 0)] = _val(lvl, W + "numFmt") or "decimal"
        abstract[an.get(W + "abstractNumId") or ""] = levels
    return {
        num.get(W + "numId") or "": abstract.get(_val(num, W + "abstractNumId") or "", {})
        for num in root.iter(W + "num")
    }


def _style_chain(ctx: _Context, style_id: str | None) -> Iterator[_Style]:
    seen = set()
    while style_id and style_id not in seen and style_id in ctx.styles:
        seen.add(style_id)
        style = ctx.styles[style_id]
        yield style
        style_id = style.based_on


# --- inline content -------------------------------------------------------------------------


def _segments(el: Any, ctx: _Context, link: str | None = None) -> Iterator[tuple[str, int, str]]:
    """(text, 1 bold | 2 italic flags, link) of a paragraph's runs in order."""
    for child in el:
        tag = child.tag
        if tag == W + "r":
            rpr = child.find(W + "rPr")
            style = 1 * _on(rpr, "b") | 2 * _on(rpr, "i")
            for part in child:
                ptag = part.tag
                if ptag == W + "t":
                    yield part.text or "", style, link or ""
                elif ptag == W + "tab":
                    yield "\t", 0, link or ""
                elif ptag in (W + "br", W + "cr"):
                    if part.get(W + "type") != "page":
                        yield "\n", 0, link or ""
                elif ptag == W + "noBreakHyphen":
                    yield "-", style, link or ""
                elif ptag in (W + "footnoteReference", W + "endnoteReference"):
                    prefix = "" if ptag == W + "footnoteReference" else "e"
                    yield f"[^{prefix}{part.get(W + 'id')}]", 0, ""
                elif ptag in (W + "drawing", W + "pict", W + "object"):
                    for pr in part.iter(_WP_DOCPR):
                        alt = (pr.get("descr") or pr.get("title") or "").strip()
                        if alt:
                            yield f"![{alt}]()", 0, ""
                    # text boxes (shapes, callouts): their paragraphs, inline
                    for box in part.iter(W + "txbxContent"):
                        text = " ".join(t for _, t in _blocks(box, ctx) if t)
                        if text:
                            yield f" {text} ", 0, ""
        elif tag == W + "hyperlink":
            target = ctx.links.get(child.get(R_ID) or "", "")
            yield from _segments(child, ctx, target or link)
        elif tag in (W + "del", W + "moveFrom"):
            continue
        elif tag in (W + "ins", W + "moveTo", W + "smartTag", W + "fldSimple", W + "customXml"):
            yield from _segments(child, ctx, link)
        elif tag == W + "sdt":
            content = child.find(W + "sdtContent")
            if content is not None:
                yield from _segments(content, ctx, link)


def _wrap(text: str, style: int) -> str:
    core = text.strip()
    if not core or not style:
        return text
    mark = {1: "**", 2: "*", 3: "***"}[style]
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    return f"{lead}{mark}{core}{mark}{trail}"


def _inline(p: Any, ctx: _Context, plain: bool = False) -> str:
    groups: list[tuple[str, int, str]] = []
    for text, style, link in _segments(p, ctx):
        style = 0 if plain else style
        if groups and groups[-1][1] == style and groups[-1][2] == link:
            groups[-1] = (groups[-1][0] + text, style, link)
        else:
            groups.append((text, style, link))
    out = []
    for text, style, link in groups:
        text = _wrap(text, style)
        if link and text.strip() and not plain:
            out.append(f"[{text.strip()}]({link})")
        else:
            out.append(text)
    return "".join(out).strip()


# --- blocks ---------------------------------------------------------------------------------


def _paragraph(p: Any, ctx: _Context) -> tuple[str, str]:
    """(kind, markdown) of one paragraph: kind is "list", "heading" or "text"."""
    ppr = p.find(W + "pPr")
    style_id = _val(ppr, W + "pStyle")
    numpr = ppr.find(W + "numPr") if ppr is not None else None
    num = None
    if numpr is not None and _val(numpr, W + "numId") is not None:
        num = (str(_val(numpr, W + "numId")), int(_val(numpr, W + "ilvl") or 0))
    level = None
    outline = _val(ppr, W + "outlineLvl")
    if outline is not None and outline.isdigit() and int(outline) < 9:
        level = int(outline) + 1
    for style in _style_chain(ctx, style_id):
        if level is None:
            match = _HEADING.match(style.name)
            if match:
                level = int(match.group(1))
            elif style.name.lower() == "title":
                level = 1
            elif style.outline is not None and style.outline < 9:
                level = style.outline + 1
        if num is None and style.num is not None:
            num = style.num
            deeper = _LIST_STYLE_LEVEL.match(style.name)
            if deeper and num[1] == 0:
                num = (num[0], int(deeper.group(1)) - 1)
    if level is not None:
        text = _inline(p, ctx, plain=True).replace("\n", " ")
        return ("heading", "#" * min(level, 6) + " " + text) if text else ("text", "")
    text = _inline(p, ctx)
    if num is not None and num[0] != "0" and text:
        num_id, ilvl = num
        fmt = ctx.formats.get(num_id, {}).get(ilvl, "bullet")
        for key in [k for k in ctx.counters if k[0] == num_id and k[1] > ilvl]:
            del ctx.counters[key]
        n = ctx.counters.get((num_id, ilvl), 0) + 1
        ctx.counters[(num_id, ilvl)] = n
        marker = "-" if fmt in ("bullet", "none") else f"{n}."
        return "list", "  " * ilvl + f"{marker} " + text.replace("\n", " ")
    return "text", text


def _cell_text(tc: Any, ctx: _Context) -> str:
    lines = []
    for child in tc:
        if child.tag == W + "p":
            text = _inline(child, ctx)
            if text:
                lines.append(text)
        elif child.tag == W + "tbl":
            # a table in a cell: its rows, one a line, cells separated by "; "
            lines.extend("; ".join(c for c in row if c) for row in _table_rows(child, ctx))
    return "\n".join(line for line in lines if line)


def _table_rows(tbl: Any, ctx: _Context) -> list[list[str]]:
    rows: list[list[str]] = []
    above: dict[int, str] = {}
    for tr in tbl.iter(W + "tr"):
        if tr.getparent() is not tbl:
            continue  # a nested table's rows belong to its cell
        cells: list[str] = []
        for tc in tr.iter(W + "tc"):
            if tc.getparent() is not tr:
                continue
            tcpr = tc.find(W + "tcPr")
            span = int(_val(tcpr, W + "gridSpan") or 1)
            vmerge = tcpr.find(W + "vMerge") if tcpr is not None else None
            col = len(cells)
            if vmerge is not None and vmerge.get(W + "val") in (None, "continue"):
                text = above.get(col, "")
            else:
                text = _cell_text(tc, ctx)
            for offset in range(span):
                above[col + offset] = text
            # a merged cell's text in every column it spans: each row and column reads whole
            cells.extend([text] * span)
        rows.append(cells)
    return rows


def _blocks(container: Any, ctx: _Context) -> Iterator[tuple[str, str]]:
    for child in container:
        if child.tag == W + "p":
            yield _paragraph(child, ctx)
        elif child.tag == W + "tbl":
            yield "table", markdown_table(_table_rows(child, ctx))
        elif child.tag == W + "sdt":
            content = child.find(W + "sdtContent")
            if content is not None:
                yield from _blocks(content, ctx)


def join_blocks(blocks: Iterator[tuple[str, str]] | list[tuple[str, str]]) -> str:
    """Markdown blocks joined by blank lines; consecutive list items by one newline."""
    out: list[str] = []
    previous = ""
    for kind, text in blocks:
        if not text.strip():
            continue
        if out:
            out.append("\n" if kind == "list" and previous == "list" else "\n\n")
        out.append(text)
        previous = kind
    return "".join(out)


def _part_paragraphs(document: Any, reltype: str, ctx: _Context) -> list[str]:
    from lxml import etree

    texts: list[str] = []
    for rel in document.part.rels.values():
        if rel.reltype != _RT + reltype or rel.is_external:
            continue
        root = etree.fromstring(rel.target_part.blob)
        text = join_blocks(_blocks(root, ctx))
        if text and text not in texts:
            texts.append(text)
    return texts


def _notes(document: Any, kind: str, ctx: _Context) -> list[str]:
    from lxml import etree

    out = []
    for rel in document.part.rels.values():
        if rel.reltype != _RT + kind + "s" or rel.is_external:
            continue
        root = etree.fromstring(rel.target_part.blob)
        prefix = "" if kind == "footnote" else "e"
        for note in root.iter(W + kind):
            if note.get(W + "type") in ("separator", "continuationSeparator"):
                continue
            text = " ".join(t for _, t in _blocks(note, ctx) if t).strip()
            if text:
                out.append(f"[^{prefix}{note.get(W + 'id')}]: {text}")
    return out


def core_metadata(props: Any) -> dict[str, str]:
    """Title, author, dates... of an OOXML package's core properties (non-empty ones)."""
    meta: dict[str, str] = {}
    for key, attr in (
        ("title", "title"),
        ("author", "author"),
        ("subject", "subject"),
        ("keywords", "keywords"),
        ("last_modified_by", "last_modified_by"),
        ("created", "created"),
        ("modified", "modified"),
    ):
        value = getattr(props, attr, None)
        if value:
            meta[key] = value.isoformat() if hasattr(value, "isoformat") else str(value).strip()
    return meta


def load_docx(data: bytes, cfg: ProcessingConfig) -> Loaded:
    """A ``.docx`` file as markdown; raises ``ParseFailure`` on a bad package."""
    open_package(data, cfg, "DOCX").close()
    docx = require("docx", "processing")
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises PackageNotFoundError, lxml XMLSyntaxError
        raise ParseFailure(
            f"DOCX: {type(exc).__name__}: {exc}", code="processing.corrupt"
        ) from None
    links = {rid: rel.target_ref for rid, rel in document.part.rels.items() if rel.is_external}
    ctx = _Context(_styles(document), _numbering(document), links)
    body = join_blocks(_blocks(document.element.body, ctx))
    headers = _part_paragraphs(document, "header", ctx)
    footers = _part_paragraphs(document, "footer", ctx)
    notes = _notes(document, "footnote", ctx) + _notes(document, "endnote", ctx)
    text = "\n\n".join(part for part in [*headers, body, *footers, "\n".join(notes)] if part)
    meta = core_metadata(document.core_properties)
    if headers:
        meta["headers"] = str(len(headers))
    return Loaded(text, metadata=meta)


def _zip_sniff(zf: Any) -> bool:
    return "word/document.xml" in zf.namelist()


register_loader(LoaderSpec(DOCX, load_docx, ("docx", "docm", "dotx"), zip_sniff=_zip_sniff))
