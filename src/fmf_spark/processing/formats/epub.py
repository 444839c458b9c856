"""EPUB e-books: the zip's OPF spine, each XHTML chapter through the HTML converter.

``ebooklib`` is AGPL-3.0, so the package is read here: ``META-INF/container.xml``
names the OPF file, whose ``spine`` orders the chapters and whose Dublin Core
metadata gives title, author, language and date. Chapters are the pages.
"""

from __future__ import annotations

import posixpath
from typing import Any
from urllib.parse import unquote

from fmf_spark._deps import require
from fmf_spark.config.processing import ProcessingConfig
from fmf_spark.processing.base import Loaded, LoaderSpec, register_loader
from fmf_spark.processing.loaders import join_pages, load_html, open_package
from fmf_spark.processing.text import ParseFailure, normalize

EPUB = "application/epub+zip"
_NS = {
    "c": "urn:oasis:names:tc:opendocument:xmlns:container",
    "opf": "http://www.idpf.org/2007/opf",
    "dc": "http://purl.org/dc/elements/1.1/",
}


def load_epub(data: bytes, cfg: ProcessingConfig) -> Loaded:
    """An EPUB as markdown, one page per chapter of its spine."""
    etree = require("lxml.etree", "processing")
    with open_package(data, cfg, "EPUB") as zf:
        try:
            container = etree.fromstring(zf.read("META-INF/container.xml"))
            opf_path = container.find(".//c:rootfile", _NS).get("full-path")
            opf = etree.fromstring(zf.read(opf_path))
        except (KeyError, AttributeError, TypeError, etree.XMLSyntaxError) as exc:
            raise ParseFailure(
                f"EPUB: no readable package file ({exc})", code="processing.corrupt"
            ) from None
        base = posixpath.dirname(opf_path)
        manifest: dict[str, Any] = {
            item.get("id"): item for item in opf.iterfind(".//opf:manifest/opf:item", _NS)
        }
        chapters = []
        for ref in opf.iterfind(".//opf:spine/opf:itemref", _NS):
            item = manifest.get(ref.get("idref"))
            if item is None or "html" not in (item.get("media-type") or ""):
                continue
            href = posixpath.normpath(posixpath.join(base, unquote(item.get("href") or "")))
            try:
                page = load_html(zf.read(href)).text
            except KeyError:
                continue  # a spine entry the zip lacks: the rest of the book still reads
            if page.strip():
                chapters.append(normalize(page))
    meta = {}
    for key, tag in (
        ("title", "title"),
        ("author", "creator"),
        ("language", "language"),
        ("date", "date"),
    ):
        value = opf.findtext(f".//dc:{tag}", namespaces=_NS)
        if value and value.strip():
            meta[key] = value.strip()
    meta["chapters"] = str(len(chapters))
    text, starts = join_pages(chapters)
    return Loaded(text, pages=len(chapters), page_starts=starts, metadata=meta)


def _zip_sniff(zf: Any) -> bool:
    try:
        return bool(zf.read("mimetype").strip() == b"application/epub+zip")
    except KeyError:
        return False


register_loader(LoaderSpec(EPUB, load_epub, ("epub",), zip_sniff=_zip_sniff))
