"""Loaders: one function per format, bytes to markdown text.

Libraries, chosen for licence and upkeep: ``lxml`` (BSD; HTML, fast and tolerant of
broken markup), ``openpyxl`` (MIT; XLSX in read-only streaming mode), ``pyarrow``
(Apache-2.0; Parquet), ``pypdf`` (BSD, pure Python, reads encrypted PDFs and embedded
images), ``pytesseract`` + Debian's ``tesseract-ocr`` (Apache-2.0; OCR of images and of
image-only PDF pages). No AGPL (PyMuPDF) and no GPL code.

Every loader returns a :class:`Loaded` or raises :class:`ParseFailure` with a precise
``code``; the caller turns that into an error row.
"""

from __future__ import annotations

import csv
import io
import os
import re
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any

from fmf_spark._deps import require
from fmf_spark.config.processing import OcrConfig, ProcessingConfig
from fmf_spark.processing import text as types
from fmf_spark.processing.base import Loaded, LoaderSpec, register_loader
from fmf_spark.processing.text import ParseFailure, decode_text, normalize

# --- markdown tables ------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    if "|" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("|", "\\|")
            .replace("\r\n", "<br>")
            .replace("\n", "<br>")
            .replace("\r", "<br>")
        )
    return text.strip()


def markdown_table(rows: Iterable[Sequence[Any]]) -> str:
    """Rows (the first is the header) as a GitHub-flavoured markdown table."""
    cells = [[_cell(v) for v in row] for row in rows]
    if not cells:
        return ""
    width = max(len(r) for r in cells)
    if width == 0:
        return ""
    cells = [r + [""] * (width - len(r)) for r in cells]
    header = [h or f"col{i + 1}" for i, h in enumerate(cells[0])]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * width]
    out.extend("| " + " | ".join(r) + " |" for r in cells[1:])
    return "\n".join(out)


def trim_rows(rows: list[list[Any]]) -> list[list[Any]]:
    """Drop empty trailing rows and columns (spreadsheets report a padded used range)."""

    def empty(v: Any) -> bool:
        return v is None or (isinstance(v, str) and not v.strip())

    rows = [list(r) for r in rows]
    while rows and all(empty(v) for v in rows[-1]):
        rows.pop()
    width = max(
        (max((i + 1 for i, v in enumerate(r) if not empty(v)), default=0) for r in rows), default=0
    )
    return [r[:width] for r in rows]


# --- text formats ---------------------------------------------------------------------------


def load_text(data: bytes) -> Loaded:
    text, encoding = decode_text(data)
    return Loaded(text, metadata={"encoding": encoding})


def load_csv(data: bytes, delimiter: str | None = None) -> Loaded:
    """A delimited table as a markdown table (the delimiter sniffed unless given)."""
    text, encoding = decode_text(data)
    sample = text[:16384]
    dialect: Any
    if delimiter is not None:
        dialect = csv.excel_tab if delimiter == "\t" else csv.excel
    else:
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    rows = trim_rows(rows)
    return Loaded(
        markdown_table(rows),
        metadata={"encoding": encoding, "rows": str(max(len(rows) - 1, 0))},
    )


# --- HTML -----------------------------------------------------------------------------------

# Removed before parsing: a 10 MB <script> would otherwise be parsed into one text node.
_SCRIPTS = re.compile(r"<(script|style|noscript|template|svg)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_BOILERPLATE = {
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "iframe",
    "button",
    "select",
    "object",
    "embed",
    "canvas",
    "dialog",
    "menu",
}
_BLOCKS = {
    "p",
    "div",
    "section",
    "article",
    "main",
    "blockquote",
    "figure",
    "figcaption",
    "address",
    "dd",
    "dt",
    "dl",
    "details",
    "summary",
}
_WS = re.compile(r"\s+")


class _HtmlToMarkdown:
    def __init__(self) -> None:
        self.out: list[str] = []
        #: > 0 while rendering a table cell: a table inside it is flattened into the cell
        self.in_cell = 0

    def block(self, text: str) -> None:
        text = text.strip()
        if text:
            self.out.append(text)

    def inline(self, el: Any) -> str:
        """Text of an element with inline markup (links, emphasis, code) kept light."""
        parts: list[str] = []
        if el.text:
            parts.append(el.text)
        for child in el:
            tag = child.tag if isinstance(child.tag, str) else ""
            if tag == "br":
                parts.append("\n")
            elif tag in ("strong", "b"):
                inner = self.inline(child).strip()
                parts.append(f"**{inner}**" if inner else "")
            elif tag in ("em", "i"):
                inner = self.inline(child).strip()
                parts.append(f"*{inner}*" if inner else "")
            elif tag == "code":
                parts.append(f"`{child.text_content()}`")
            elif tag == "img":
                alt = (child.get("alt") or "").strip()
                parts.append(f"![{alt}]()" if alt else "")
            elif tag == "table" and self.in_cell:
                parts.append(self.flat_table(child))
            elif tag == "a":
                inner = self.inline(child).strip()
                href = child.get("href") or ""
                parts.append(
                    f"[{inner}]({href})"
                    if href.startswith(("http", "/", "mailto:")) and inner
                    else inner
                )
            elif tag in ("ul", "ol", "table", "pre") or tag in _BLOCKS:
                parts.append("\n" + self.render_to_string(child) + "\n")
            elif tag:
                parts.append(self.inline(child))
            if child.tail:
                parts.append(child.tail)
        text = "".join(parts)
        return "\n".join(_WS.sub(" ", line).strip() for line in text.split("\n")).strip()

    def render_to_string(self, el: Any) -> str:
        sub = _HtmlToMarkdown()
        sub.render(el)
        return "\n\n".join(sub.out)

    def render(self, el: Any) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in _BOILERPLATE or not tag:
            return
        if re.fullmatch(r"h[1-6]", tag):
            self.block("#" * int(tag[1]) + " " + self.inline(el).replace("\n", " "))
        elif tag in ("ul", "ol"):
            self.block(self.list_items(el, tag == "ol", 0))
        elif tag == "table":
            self.block(self.table(el))
        elif tag == "pre":
            self.block("```\n" + el.text_content().strip("\n") + "\n```")
        elif tag == "hr":
            self.block("---")
        elif tag == "img":
            alt = el.get("alt")
            if alt:
                self.block(f"![{alt}]()")
        elif tag in _BLOCKS or tag in ("body", "html", "li", "td", "th", "span", "center", "font"):
            has_block_child = any(
                isinstance(c.tag, str)
                and (
                    c.tag in _BLOCKS
                    or c.tag in ("ul", "ol", "table", "pre", "hr")
                    or re.fullmatch(r"h[1-6]", c.tag)
                )
                for c in el
            )
            if not has_block_child:
                text = self.inline(el)
                if tag == "blockquote":
                    text = "\n".join("> " + line for line in text.split("\n"))
                self.block(text)
                return
            # mixed content: text runs become paragraphs, blocks render in order
            if el.text and el.text.strip():
                self.block(_WS.sub(" ", el.text))
            for child in el:
                self.render(child)
                if child.tail and child.tail.strip():
                    self.block(_WS.sub(" ", child.tail))
        else:
            text = self.inline(el)
            self.block(text)

    def list_items(self, el: Any, ordered: bool, depth: int) -> str:
        lines = []
        n = 0
        for li in el:
            if isinstance(li.tag, str) and li.tag in ("ul", "ol"):
                # a list directly inside a list (invalid, common): a sub-list of the item
                lines.append(self.list_items(li, li.tag == "ol", depth + 1))
                continue
            if not isinstance(li.tag, str) or li.tag != "li":
                continue
            n += 1
            nested = [c for c in li if isinstance(c.tag, str) and c.tag in ("ul", "ol")]
            for c in nested:
                li.remove(c)
            marker = f"{n}." if ordered else "-"
            text = self.inline(li).replace("\n", " ")
            lines.append("  " * depth + f"{marker} {text}")
            for c in nested:
                lines.append(self.list_items(c, c.tag == "ol", depth + 1))
        return "\n".join(line for line in lines if line.strip())

    def rows(self, el: Any) -> list[list[str]]:
        """The rows of this table, not of the tables nested in its cells."""
        rows = []
        self.in_cell += 1
        try:
            for tr in el.iter("tr"):
                if next(tr.iterancestors("table"), None) is not el:
                    continue
                cells = [
                    self.inline(td).replace("\n", " ")
                    for td in tr
                    if isinstance(td.tag, str) and td.tag in ("td", "th")
                ]
                if cells:
                    rows.append(cells)
        finally:
            self.in_cell -= 1
        return rows

    def flat_table(self, el: Any) -> str:
        """A table inside a cell: its rows on one line ("a; b / c; d")."""
        return " / ".join("; ".join(c for c in row if c) for row in self.rows(el))

    def table(self, el: Any) -> str:
        return markdown_table(self.rows(el))


_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)
_DECLARED = re.compile(
    rb"""^\s*<\?xml[^>]*encoding=["']([\w.:-]+)|<meta[^>]+charset=["']?([\w.:-]+)""", re.I
)


def _decode_html(data: bytes) -> tuple[str, str]:
    """Decode with the encoding the document declares (XML declaration, ``<meta>``).

    A BOM wins, and so do bytes that are valid UTF-8 (pages saved as UTF-8 under an
    old ``iso-8859-1`` declaration are common); a declaration that cannot decode the
    bytes is ignored. Otherwise the encoding is detected as for text.
    """
    match = None
    if not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        match = _DECLARED.search(data[:4096])
    if match:
        declared = (match.group(1) or match.group(2)).decode("ascii").lower()
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
        try:
            return data.decode(declared), declared
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_text(data)


def load_html(data: bytes) -> Loaded:
    lxml_html = require("lxml.html", "processing")
    text, encoding = _decode_html(data)
    # lxml refuses a str that carries an XML encoding declaration; it is decoded already
    text = _XML_DECLARATION.sub("", text, count=1)
    stripped = _SCRIPTS.sub("", text)
    removed = len(text) - len(stripped)
    if not stripped.strip():
        return Loaded("", metadata={"encoding": encoding, "html_removed_chars": str(removed)})
    parser = lxml_html.HTMLParser(remove_comments=True, remove_pis=True, huge_tree=True)
    try:
        root = lxml_html.document_fromstring(stripped, parser=parser)
    except Exception as exc:  # lxml raises ParserError/ValueError on hopeless markup
        raise ParseFailure(
            f"HTML: {type(exc).__name__}: {exc}", code="processing.corrupt"
        ) from None
    title = root.findtext(".//title")
    main = root.find(".//main")
    if main is None:
        main = root.find(".//article")
    body = main if main is not None else root.find(".//body")
    if body is None:
        body = root
    conv = _HtmlToMarkdown()
    conv.render(body)
    meta = {"encoding": encoding}
    if title and title.strip():
        meta["title"] = _WS.sub(" ", title).strip()
    if removed:
        meta["html_removed_chars"] = str(removed)
    return Loaded("\n\n".join(conv.out), metadata=meta)


# --- spreadsheets and tables ----------------------------------------------------------------


def check_zip(data: bytes, max_ratio: float, max_total: int) -> None:
    """Refuse zip bombs before any XML is inflated: ratio and total size limits."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        raise ParseFailure(f"not a readable zip/xlsx: {exc}", code="processing.corrupt") from None
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos) or 1
    worst = max((i.file_size / max(i.compress_size, 1) for i in infos), default=0.0)
    if total / packed > max_ratio or worst > max_ratio * 10 or total > max_total:
        raise ParseFailure(
            f"compression ratio {total / packed:.0f} (worst member {worst:.0f}), "
            f"{total} bytes uncompressed: refusing a possible zip bomb "
            f"(max_compression_ratio={max_ratio:g})",
            code="processing.zip_bomb",
        )


def max_unzipped(cfg: ProcessingConfig) -> int:
    """Bytes a zip-based document may inflate to (all members together)."""
    return max(cfg.max_file_bytes * 20, 1 << 30)


def open_package(data: bytes, cfg: ProcessingConfig, what: str) -> zipfile.ZipFile:
    """Open a zip-based document (OOXML, OpenDocument, EPUB) after the bomb checks.

    OLE2 bytes (a password-protected or legacy Office file under a modern name) get
    their precise error (``processing.encrypted``/``processing.legacy_format``).
    """
    from fmf_spark.processing.formats.ole import refuse_ole

    refuse_ole(data, what)
    check_zip(data, cfg.max_compression_ratio, max_unzipped(cfg))
    return zipfile.ZipFile(io.BytesIO(data))


def join_pages(pages: Sequence[str]) -> tuple[str, list[int]]:
    """Pages (each normalised) joined by a blank line, and where each one starts."""
    starts = []
    offset = 0
    for page in pages:
        starts.append(offset)
        offset += len(page) + 2
    return "\n\n".join(pages), starts


def load_xlsx(data: bytes, max_ratio: float, max_total: int) -> Loaded:
    """A workbook as markdown: a section per non-empty sheet (the sheets are the pages),
    values as their number formats show them, title rows as text, each table of a
    sheet its own markdown table (see :mod:`fmf_spark.processing.sheets`)."""
    from fmf_spark.processing.sheets import format_value, sheet_blocks

    check_zip(data, max_ratio, max_total)
    openpyxl = require("openpyxl")
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError, TypeError) as exc:
        raise ParseFailure(
            f"XLSX: {type(exc).__name__}: {exc}", code="processing.corrupt"
        ) from None
    sections = []
    tables = 0
    try:
        for ws in wb.worksheets:
            values: list[list[Any]] = []
            texts: list[list[str]] = []
            for row in ws.iter_rows():
                values.append([cell.value for cell in row])
                texts.append(
                    [format_value(cell.value, getattr(cell, "number_format", None)) for cell in row]
                )
            parts = []
            for block in sheet_blocks(values, texts):
                if isinstance(block, str):
                    parts.append(block)
                else:
                    tables += 1
                    parts.append(markdown_table(block))
            if parts:
                sections.append(normalize(f"## Sheet: {ws.title}\n\n" + "\n\n".join(parts)))
        names = ",".join(ws.title for ws in wb.worksheets)
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError) as exc:
        raise ParseFailure(
            f"XLSX: {type(exc).__name__}: {exc}", code="processing.corrupt"
        ) from None
    finally:
        wb.close()
    text, starts = join_pages(sections)
    return Loaded(
        text,
        pages=len(sections),
        page_starts=starts,
        metadata={"sheets": names, "tables": str(tables)},
    )


def load_parquet(data: bytes) -> Loaded:
    pq = require("pyarrow.parquet", "spark")
    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as exc:  # ArrowInvalid/OSError: not a parquet file we can read
        raise ParseFailure(
            f"Parquet: {type(exc).__name__}: {exc}", code="processing.corrupt"
        ) from None
    columns = table.column_names
    body = (
        zip(*(table.column(c).to_pylist() for c in columns), strict=True) if columns else iter(())
    )
    rows: list[Sequence[Any]] = [columns, *body]
    return Loaded(markdown_table(rows), metadata={"rows": str(table.num_rows)})


# --- images and PDF -------------------------------------------------------------------------


#: OSD's orientation confidence below which a page is read as it is
_OSD_MIN_CONFIDENCE = 1.0
#: mean word confidence under which a page may lie sideways (upright text: 90+,
#: the same page turned 90 or 180 degrees: about 45)
_LOW_WORD_CONFIDENCE = 60.0
_OSD_ROTATE = re.compile(r"Rotate:\s*(\d+)")
_OSD_CONFIDENCE = re.compile(r"Orientation confidence:\s*([\d.]+)")


def _upright(image: Any, pytesseract: Any, timeout_s: float) -> tuple[Any, int]:
    """The image turned upright by tesseract's orientation detection, and the angle.

    OSD needs some text to decide: on a page with too little of it (tesseract says
    so with an error) or a low confidence the image is read as it is.
    """
    try:
        osd = pytesseract.image_to_osd(image, timeout=max(1, int(timeout_s)))
    except (pytesseract.TesseractError, RuntimeError):
        return image, 0
    rotate = _OSD_ROTATE.search(osd)
    confidence = _OSD_CONFIDENCE.search(osd)
    angle = int(rotate.group(1)) if rotate else 0
    if angle % 360 == 0 or confidence is None or float(confidence.group(1)) < _OSD_MIN_CONFIDENCE:
        return image, 0
    # OSD's "Rotate" is clockwise; PIL rotates counter-clockwise
    return image.rotate(-angle, expand=True, fillcolor=255 if image.mode == "L" else None), angle


def _ocr(image: Any, pytesseract: Any, languages: str, timeout_s: float) -> tuple[str, float]:
    """The text of an image and tesseract's mean word confidence, from one run."""
    text, tsv = pytesseract.run_and_get_multiple_output(
        image, extensions=["txt", "tsv"], lang=languages, timeout=max(1, int(timeout_s))
    )
    confidences = []
    for line in tsv.splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) >= 12 and fields[11].strip():
            try:
                confidences.append(float(fields[10]))
            except ValueError:
                continue
    return text, sum(confidences) / len(confidences) if confidences else 100.0


def ocr_image(data: bytes, cfg: OcrConfig, timeout_s: float) -> str:
    """OCR one image with tesseract; raises ParseFailure when it cannot.

    tesseract runs with ``OMP_THREAD_LIMIT=cfg.threads`` (set in this worker's
    environment, which its subprocess inherits): Spark already runs a task per core,
    and tesseract's own OpenMP threads on top made OCR 7x slower on 2 cores. A page
    that reads with low confidence is checked for orientation and, when it lies
    sideways or upside down, read again upright (``detect_orientation``).
    """
    if not cfg.enabled:
        raise ParseFailure(
            "OCR is disabled (processing.ocr.enabled)", code="processing.ocr_disabled"
        )
    pytesseract = require("pytesseract")
    image_mod = require("PIL.Image", "ocr")
    # set on every call: pytesseract keeps it module-wide, and the next config may not name one
    pytesseract.pytesseract.tesseract_cmd = cfg.tesseract_cmd or "tesseract"
    os.environ["OMP_THREAD_LIMIT"] = str(cfg.threads)
    try:
        image = image_mod.open(io.BytesIO(data))
        image.load()
    except Exception as exc:  # PIL raises UnidentifiedImageError, OSError, SyntaxError...
        raise ParseFailure(
            f"image: {type(exc).__name__}: {exc}", code="processing.corrupt"
        ) from None
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    try:
        text, confidence = _ocr(image, pytesseract, cfg.languages, timeout_s)
        if cfg.detect_orientation and confidence < _LOW_WORD_CONFIDENCE:
            # read poorly: maybe sideways. Orientation detection is a second tesseract
            # run, so only for pages that need it
            turned, angle = _upright(image, pytesseract, timeout_s)
            if angle:
                turned_text, turned_confidence = _ocr(turned, pytesseract, cfg.languages, timeout_s)
                if turned_confidence > confidence:
                    text = turned_text
    except pytesseract.TesseractNotFoundError:
        raise ParseFailure(
            "tesseract is not installed",
            code="processing.ocr_unavailable",
            hint="apt-get install tesseract-ocr (and pip install 'fmf-spark[ocr]')",
        ) from None
    except RuntimeError as exc:  # pytesseract's timeout
        raise ParseFailure(f"OCR timed out: {exc}", code="processing.timeout") from None
    except pytesseract.TesseractError as exc:
        raise ParseFailure(f"tesseract failed: {exc}", code="processing.ocr_failed") from None
    return str(text)


def load_image(data: bytes, cfg: OcrConfig, timeout_s: float) -> Loaded:
    return Loaded(
        normalize(ocr_image(data, cfg, timeout_s)),
        pages=1,
        page_starts=[0],
        metadata={"ocr": "true"},
    )


# a run of 4+ single characters separated by single spaces: letter-spaced text
_SPACED_RUN = re.compile(r"(?<!\S)(?:\S ){3,}\S(?!\S)")
_SEGMENTS = re.compile(r" {2,}")
# TeX's math symbol fonts (OMS encoding) by code: what their code points draw
_OMS = {0: "\u2212", 1: "\u00b7", 2: "\u00d7", 3: "\u2217", 4: "\u00f7", 6: "\u00b1",
        20: "\u2264", 21: "\u2265", 24: "\u223c", 25: "\u2248", 33: "\u2192", 49: "\u221e",
        50: "\u2208", 106: "|"}  # fmt: skip
_GLYPH_BY_CODE = re.compile(r"/[A-Za-z]{0,5}(\d{1,3})$")


def _doubled(token: str) -> bool:
    """Every character twice in a row ("TToottaall"): a glyph drawn twice (fake bold)."""
    return (
        len(token) >= 2
        and len(token) % 2 == 0
        and all(token[i] == token[i + 1] for i in range(0, len(token), 2))
        and any(c.isalpha() for c in token)
    )


def _repair_line(line: str) -> str:
    tokens = line.split(" ")
    if any(len(t) >= 4 and _doubled(t) for t in tokens):
        # fake bold: a word printed twice at a small offset comes out letter by letter
        # doubled; a line with such a word has its doubled words (two letters too) halved
        tokens = [t[::2] if _doubled(t) else t for t in tokens]
        line = " ".join(tokens)
    if any(any(c.isalpha() for c in run) for run in _SPACED_RUN.findall(line)):
        # letter-spaced text (monospace, tracking): one space between letters, two or
        # more between words
        parts = []
        for segment in _SEGMENTS.split(line):
            words = segment.split(" ")
            parts.append("".join(words) if all(len(w) <= 1 for w in words) else segment)
        line = " ".join(parts)
    return line


def repair_pdf_text(text: str) -> str:
    r"""Undo two artefacts of text extraction: fake-bold doubled glyphs and letter-spacing.

    Example:
        >>> repair_pdf_text("TToottaall dduuee:: 12\nl a y o u t   e n g i n e")
        'Total due: 12\nlayout engine'
    """
    return "\n".join(_repair_line(line) for line in text.split("\n"))


def _glyph_names(page: Any) -> dict[str, str]:
    """Glyph names pypdf leaves in the text ("/C0") for fonts whose ``Differences``
    name glyphs it does not know, and what to put instead.

    In a TeX math symbol font (``CMSY``, OMS encoding) the code says which symbol it
    is (code 0 is the minus sign); any other unknown name is dropped.
    """
    try:
        from pypdf._codecs import adobe_glyphs
    except ImportError:  # a future pypdf: keep every name we cannot check
        adobe_glyphs = {}
    out: dict[str, str] = {}
    try:
        fonts = page["/Resources"]["/Font"]
        items = [(f.get_object().get("/BaseFont", ""), f.get_object()) for f in fonts.values()]
    except (KeyError, TypeError, AttributeError):
        return out
    for base, font in items:
        try:
            encoding = font["/Encoding"].get_object()
            differences = encoding["/Differences"]
        except (KeyError, TypeError, AttributeError):
            continue
        tex_symbols = "CMSY" in str(base).upper()
        code = 0
        for item in differences:
            if isinstance(item, int):
                code = int(item)
                continue
            name = str(item)
            if name not in adobe_glyphs and not name.startswith("/uni"):
                by_code = _GLYPH_BY_CODE.match(name)
                number = int(by_code.group(1)) if by_code else code
                out.setdefault(name, _OMS.get(number, "") if tex_symbols else "")
            code += 1
    return out


def load_pdf(data: bytes, cfg: OcrConfig, timeout_s: float) -> Loaded:
    pypdf = require("pypdf")
    errors = pypdf.errors
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # many PDFs are "encrypted" with an empty user password (print/copy flags)
            try:
                opened = reader.decrypt("")
            except (errors.PdfReadError, NotImplementedError, errors.DependencyError) as exc:
                raise ParseFailure(f"encrypted PDF: {exc}", code="processing.encrypted") from None
            if not opened:
                raise ParseFailure("PDF is password-protected", code="processing.encrypted")
        pages = list(reader.pages)
    except ParseFailure:
        raise
    except (
        errors.PdfReadError,
        errors.PdfStreamError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        OSError,
    ) as exc:
        raise ParseFailure(
            f"corrupt PDF: {type(exc).__name__}: {exc}", code="processing.corrupt"
        ) from None
    texts: list[str] = []
    ocr_pages = 0
    for page in pages:
        try:
            text = page.extract_text() or ""
            for name, char in _glyph_names(page).items():
                text = text.replace(name, char)
            text = repair_pdf_text(text)
        except (
            errors.PdfReadError,
            errors.PdfStreamError,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            IndexError,
        ) as exc:
            raise ParseFailure(
                f"corrupt PDF page: {type(exc).__name__}: {exc}", code="processing.corrupt"
            ) from None
        if not text.strip() and cfg.enabled:
            images = []
            try:
                images = [img.data for img in page.images]
            except Exception as exc:  # pypdf raises many types for broken image streams
                raise ParseFailure(
                    f"PDF image: {type(exc).__name__}: {exc}", code="processing.corrupt"
                ) from None
            if images:
                text = "\n\n".join(ocr_image(img, cfg, timeout_s).strip() for img in images)
                ocr_pages += 1
        # normalised per page here, so page_starts stay exact in the final text
        texts.append(normalize(text))
    joined, starts = join_pages(texts)
    meta = {"pdf_pages": str(len(pages))}
    if ocr_pages:
        meta["ocr_pages"] = str(ocr_pages)
    return Loaded(joined, pages=len(pages), page_starts=starts, metadata=meta)


# --- registration -------------------------------------------------------------------------


def _text(data: bytes, cfg: ProcessingConfig) -> Loaded:
    return load_text(data)


def _html(data: bytes, cfg: ProcessingConfig) -> Loaded:
    return load_html(data)


def _csv(data: bytes, cfg: ProcessingConfig) -> Loaded:
    return load_csv(data)


def _tsv(data: bytes, cfg: ProcessingConfig) -> Loaded:
    return load_csv(data, "\t")


def _xlsx(data: bytes, cfg: ProcessingConfig) -> Loaded:
    from fmf_spark.processing.formats.ole import refuse_ole

    refuse_ole(data, "XLSX")
    return load_xlsx(data, cfg.max_compression_ratio, max_unzipped(cfg))


def _xlsx_sniff(zf: zipfile.ZipFile) -> bool:
    return "xl/workbook.xml" in zf.namelist()


def _parquet(data: bytes, cfg: ProcessingConfig) -> Loaded:
    return load_parquet(data)


def _pdf(data: bytes, cfg: ProcessingConfig) -> Loaded:
    return load_pdf(data, cfg.ocr, cfg.parse_timeout_s)


def _image(data: bytes, cfg: ProcessingConfig) -> Loaded:
    return load_image(data, cfg.ocr, cfg.parse_timeout_s)


# Magic bytes of these built-in types are recognised by ``text.sniff_type`` itself.
for _spec in (
    LoaderSpec(types.TEXT, _text, ("txt", "text", "log")),
    LoaderSpec(types.MARKDOWN, _text, ("md", "markdown")),
    LoaderSpec(types.RST, _text, ("rst", "rest")),
    LoaderSpec(types.ORG, _text, ("org",)),
    LoaderSpec(types.HTML, _html, ("html", "htm", "xhtml")),
    LoaderSpec(types.CSV, _csv, ("csv",)),
    LoaderSpec(types.TSV, _tsv, ("tsv", "tab")),
    LoaderSpec(types.XLSX, _xlsx, ("xlsx", "xlsm"), zip_sniff=_xlsx_sniff),
    LoaderSpec(types.PARQUET, _parquet, ("parquet",)),
    LoaderSpec(types.PDF, _pdf, ("pdf",)),
    LoaderSpec(types.PNG, _image, ("png",)),
    LoaderSpec(types.JPEG, _image, ("jpg", "jpeg")),
):
    register_loader(_spec)
