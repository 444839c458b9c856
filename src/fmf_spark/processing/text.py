"""Bytes to clean text: type detection, encoding detection and normalisation."""

from __future__ import annotations

import re
import unicodedata
import zipfile
from io import BytesIO

from fmf_spark.errors import ParseFailure

# --- content types --------------------------------------------------------------------------

TEXT = "text/plain"
MARKDOWN = "text/markdown"
HTML = "text/html"
CSV = "text/csv"
TSV = "text/tab-separated-values"
RST = "text/x-rst"
ORG = "text/x-org"
PDF = "application/pdf"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PARQUET = "application/vnd.apache.parquet"
PNG = "image/png"
JPEG = "image/jpeg"
ZIP = "application/zip"
#: an OLE2 compound file that no registered format claims (see ``LoaderSpec.ole_sniff``)
OLE2 = "application/x-ole-storage"
TIFF = "image/tiff"
OCTET = "application/octet-stream"

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

TEXT_TYPES = {TEXT, MARKDOWN, HTML, CSV, TSV, RST, ORG}
_HTML_START = re.compile(
    rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S
)


def extension_type(path: str) -> str | None:
    """The content type of a registered loader that claims the path's extension."""
    from fmf_spark.processing.base import LOADERS

    name = path.rsplit("/", 1)[-1]
    if "." not in name:
        return None
    ext = name.rsplit(".", 1)[-1].lower()
    for content_type, spec in LOADERS.items():
        if ext in spec.extensions:
            return content_type
    return None


def _registered_sniff(data: bytes) -> str | None:
    """A registered binary format recognising these bytes by their magic."""
    from fmf_spark.processing.base import LOADERS

    for content_type, spec in LOADERS.items():
        if spec.sniff is not None and spec.sniff(data):
            return content_type
    return None


def _zip_sniff(data: bytes) -> str:
    """The registered zip-based format of an archive (OOXML, ODF, EPUB), else ZIP."""
    from fmf_spark.processing.base import LOADERS

    try:
        with zipfile.ZipFile(BytesIO(data)) as zf:
            for content_type, spec in LOADERS.items():
                if spec.zip_sniff is not None and spec.zip_sniff(zf):
                    return content_type
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError):
        pass  # a broken zip: the loader its extension names reports it precisely
    return ZIP


def ole_streams(data: bytes) -> frozenset[str] | None:
    """The stream paths of an OLE2 compound file (lower case, ``/``-joined), or None."""
    try:
        import olefile
    except ImportError:
        return None
    try:
        with olefile.OleFileIO(data) as ole:
            return frozenset("/".join(p).lower() for p in ole.listdir(streams=True))
    except (OSError, ValueError, IndexError, EOFError):
        return None


def _ole_sniff(data: bytes) -> str:
    """The registered format of an OLE2 compound file (legacy Office, .msg), else OLE2."""
    from fmf_spark.processing.base import LOADERS

    streams = ole_streams(data)
    if streams is not None:
        for content_type, spec in LOADERS.items():
            if spec.ole_sniff is not None and spec.ole_sniff(streams):
                return content_type
    return OLE2


def sniff_type(data: bytes) -> str | None:
    """The content type told by magic bytes, or None for text and unknown binaries."""
    builtin = _builtin_sniff(data)
    if builtin == ZIP:
        return _zip_sniff(data)
    if builtin == OLE2:
        return _ole_sniff(data)
    if builtin is None:
        return _registered_sniff(data)
    return builtin


def _builtin_sniff(data: bytes) -> str | None:
    head = data[:16]
    if head.startswith(b"%PDF-") or b"%PDF-" in data[:1024]:
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return TIFF
    if head.startswith(b"PAR1"):
        return PARQUET
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return ZIP
    if head.startswith(OLE2_MAGIC):
        return OLE2
    return None


def detect_type(data: bytes, path: str) -> tuple[str, dict[str, str]]:
    """Content type by magic bytes first, then extension; a disagreement is noted.

    Returns:
        ``(content_type, metadata)``; metadata holds ``detected_by`` and, when the
        extension says otherwise, ``type_mismatch`` = ``"extension=<x> content=<y>"``.
    """
    by_ext = extension_type(path)
    sniffed = sniff_type(data)
    meta: dict[str, str] = {}
    if sniffed is not None:
        content_type = sniffed
        meta["detected_by"] = "magic"
        if sniffed in (ZIP, OLE2) and by_ext is not None and by_ext not in TEXT_TYPES:
            # a damaged or password-protected .docx/.xlsx (an encrypted OOXML file is an
            # OLE2 container): the loader its extension names says what is wrong
            content_type = by_ext
    elif by_ext is not None:
        content_type = by_ext
        meta["detected_by"] = "extension"
        if by_ext not in TEXT_TYPES:
            # a .pdf without a PDF header and the like: the loader reports it
            pass
        elif by_ext != HTML and _HTML_START.match(data[:4096]):
            content_type = HTML
            meta["detected_by"] = "content"
    else:
        content_type = HTML if _HTML_START.match(data[:4096]) else TEXT
        meta["detected_by"] = "content"
    if by_ext is not None and by_ext != content_type:
        meta["type_mismatch"] = f"extension={by_ext} content={content_type}"
    return content_type, meta


# --- encodings ------------------------------------------------------------------------------

_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
# charset-normalizer's guesses we trust over cp1252 (scripts cp1252 cannot spell);
# for Latin text it often names a neighbour (cp775, cp1250) and garbles the accents.
_NON_LATIN = {
    "cp1251", "koi8_r", "koi8_u", "iso8859_5", "mac_cyrillic", "cp866",
    "shift_jis", "cp932", "euc_jp", "iso2022_jp", "gb2312", "gbk", "gb18030", "big5",
    "big5hkscs", "euc_kr", "cp949", "cp1253", "iso8859_7", "cp1255", "iso8859_8",
    "cp1256", "iso8859_6", "tis_620", "cp874",
}  # fmt: skip
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _utf16_without_bom(sample: bytes) -> str | None:
    if len(sample) < 4:
        return None
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    half = len(sample) // 2
    if odd > 0.3 * half and even < 0.02 * half:
        return "utf-16-le"
    if even > 0.3 * half and odd < 0.02 * half:
        return "utf-16-be"
    return None


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode bytes to text: BOM, else UTF-8, else a detected legacy encoding.

    Raises:
        ParseFailure: ``processing.binary_content`` when the bytes are not text.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace").lstrip("\ufeff"), encoding
    sample = data[:8192]
    if b"\x00" in sample:
        encoding_guess = _utf16_without_bom(sample)
        if encoding_guess is None:
            raise ParseFailure(
                "binary content (NUL bytes) in a file named as text",
                code="processing.binary_content",
            )
        return _check_text(data.decode(encoding_guess, errors="replace")), encoding_guess
    try:
        return _check_text(data.decode("utf-8")), "utf-8"
    except UnicodeDecodeError:
        pass
    encoding = "cp1252"
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        text = ""
        encoding = ""
    if not encoding or len(data) > 24:
        from fmf_spark._deps import require

        best = require("charset_normalizer").from_bytes(data[:1_000_000]).best()
        guess = best.encoding if best is not None else None
        if guess in _NON_LATIN or (not encoding and guess is not None):
            encoding = str(guess)
            text = data.decode(encoding, errors="replace")
    if not encoding:
        encoding = "latin-1"
        text = data.decode("latin-1")
    return _check_text(text), encoding


def _check_text(text: str) -> str:
    sample = text[:65536]
    if sample and len(_CONTROL.findall(sample)) > 0.01 * len(sample) + 2:
        raise ParseFailure(
            "binary content (control characters) in a file named as text",
            code="processing.binary_content",
        )
    return text


# --- normalisation --------------------------------------------------------------------------

_TRAILING_WS = re.compile(r"[ \t]+$", re.M)
_BLANK_RUNS = re.compile(r"\n{3,}")
# a control between two visible characters separates words ("and\x02effect")
_SEPARATING_CONTROL = re.compile(r"(?<=\S)[\x00-\x08\x0b\x0e-\x1f\x7f]+(?=\S)")
_STRAY = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\u200b\ufeff]")


def normalize(text: str) -> str:
    """NFC, ``\\n`` line ends, no trailing spaces or stray controls, at most one blank line.

    Markdown survives: indentation, list markers, tables and fences are untouched;
    form feeds (page breaks) are kept.
    """
    text = unicodedata.normalize("NFC", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00a0", " ")
    text = _SEPARATING_CONTROL.sub(" ", text)
    text = _STRAY.sub("", text)
    text = _TRAILING_WS.sub("", text)
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip("\n")
