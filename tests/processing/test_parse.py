"""Loaders, normalisation, type detection and every bad input, without Spark."""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from fmf_spark.config.processing import OcrConfig, ProcessingConfig
from fmf_spark.processing import parse as parse_mod
from fmf_spark.processing import parse_file
from fmf_spark.processing.parse import ParseTimeout, time_limit
from fmf_spark.processing.synthetic import (
    encrypted_pdf_bytes,
    image_pdf_bytes,
    parquet_bytes,
    pdf_bytes,
    text_image,
    xlsx_bytes,
    zip_bomb_xlsx,
)
from fmf_spark.processing.text import detect_type, normalize

CFG = ProcessingConfig(max_file_bytes=20 * 1024 * 1024)
needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is not installed"
)


def _ok(data: bytes, path: str, cfg: ProcessingConfig = CFG):
    doc = parse_file(data, path, cfg)
    assert doc.status == "ok", doc.error
    assert doc.doc_id == hashlib.sha256(data).hexdigest()
    return doc


def _error(data: bytes | None, path: str, cfg: ProcessingConfig = CFG) -> dict:
    doc = parse_file(data, path, cfg)
    assert doc.status == "error" and doc.text is None
    assert doc.error is not None
    return doc.error


def test_markdown_and_text_kept_with_normalisation() -> None:
    raw = "# Titre\r\n\r\n\r\n\r\nCafe\u0301 au lait   \r\n\n- item\n  - nested\u00a0x\n\n| a | b |\n|---|---|\n".encode()
    doc = _ok(raw, "notes/a.md")
    assert doc.content_type == "text/markdown"
    assert doc.text == "# Titre\n\nCafé au lait\n\n- item\n  - nested x\n\n| a | b |\n|---|---|"
    assert doc.metadata == {"detected_by": "extension", "encoding": "utf-8"}
    assert normalize(doc.text) == doc.text  # idempotent


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [("cp1252", b""), ("utf-16", b""), ("utf-16-le", b"\xff\xfe"), ("utf-8-sig", b"")],
)
def test_encodings_detected(encoding: str, bom: bytes) -> None:
    text = "Grüße aus Köln – “Preis” 5 € pro Stück, naïve façade.\nZweite Zeile."
    doc = _ok(bom + text.encode(encoding), "legacy.txt")
    assert doc.text == text
    expected = {"cp1252": "cp1252", "utf-16": "utf-16-le", "utf-16-le": "utf-16-le"}
    assert doc.metadata["encoding"] == expected.get(encoding, "utf-8-sig")


def test_html_boilerplate_stripped_structure_kept() -> None:
    html = b"""<!doctype html><html><head><title>Policy</title><style>p{}</style></head><body>
    <nav><a href="/">Home</a></nav><header>Site header</header>
    <main><h1>Returns</h1><p>Return within <b>30 days</b>, see <a href="https://x.example/r">terms</a>.</p>
    <h2>Lists</h2><ol><li>first</li><li>second<ul><li>inner</li></ul></li></ol>
    <table><tr><th>Item</th><th>Days</th></tr><tr><td>Hardware</td><td>30</td></tr><tr><td>A|B</td><td>14</td></tr></table>
    <pre>code  block</pre></main><footer>(c) 2026</footer><script>track()</script></body></html>"""
    doc = _ok(html, "p.html")
    assert doc.text == (
        "# Returns\n\nReturn within **30 days**, see [terms](https://x.example/r).\n\n"
        "## Lists\n\n1. first\n2. second\n  - inner\n\n"
        "| Item | Days |\n|---|---|\n| Hardware | 30 |\n| A\\|B | 14 |\n\n```\ncode  block\n```"
    )
    assert doc.metadata["title"] == "Policy"


def test_html_with_ten_megabytes_of_script() -> None:
    script = (
        "<script>"
        + ("var a = 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx';\n" * 170_000)
        + "</script>"
    )
    data = f"<html><body><h1>Big</h1>{script}<p>after the script</p></body></html>".encode()
    assert len(data) > 10 * 1024 * 1024
    doc = _ok(data, "big.html")
    assert doc.text == "# Big\n\nafter the script"
    assert int(doc.metadata["html_removed_chars"]) > 10_000_000


def test_csv_parquet_xlsx_as_markdown_tables() -> None:
    csv_doc = _ok(b'name;qty\napple;3\n"pear; green";5\n', "c.csv")
    assert csv_doc.text == "| name | qty |\n|---|---|\n| apple | 3 |\n| pear; green | 5 |"
    pq_doc = _ok(parquet_bytes({"k": [1, 2], "v": ["x", None]}), "t.parquet")
    assert pq_doc.text == "| k | v |\n|---|---|\n| 1 | x |\n| 2 |  |"
    assert pq_doc.content_type == "application/vnd.apache.parquet"
    book = xlsx_bytes(
        {
            "Sales": [["region", "units"], ["north", 10], ["south", 12.5]],
            "Notes": [["text"], ["multi\nline"]],
        }
    )
    xl = _ok(book, "b.xlsx")
    assert xl.text == (
        "## Sheet: Sales\n\n| region | units |\n|---|---|\n| north | 10 |\n| south | 12.5 |\n\n"
        "## Sheet: Notes\n\n| text |\n|---|\n| multi<br>line |"
    )
    assert xl.metadata["sheets"] == "Sales,Notes"


def test_pdf_text_per_page() -> None:
    doc = _ok(pdf_bytes(["Page one\nline two", "Page (two)"]), "r.pdf")
    assert doc.text == "Page one\nline two\n\nPage (two)"
    assert doc.pages == 2
    assert doc.metadata["page_starts"] == "0,19"


@needs_tesseract
def test_ocr_png_jpeg_and_image_only_pdf() -> None:
    png, _, _ = text_image("Invoice total 4521\nPaid in full")
    doc = _ok(png, "scan.png")
    assert (doc.text, doc.content_type, doc.pages) == (
        "Invoice total 4521\nPaid in full",
        "image/png",
        1,
    )
    jpg, w, h = text_image("Scanned contract page", fmt="JPEG")
    assert _ok(jpg, "scan.jpg").text == "Scanned contract page"
    pdf = _ok(image_pdf_bytes(jpg, w, h), "scan.pdf")
    assert pdf.text == "Scanned contract page"
    assert pdf.metadata["ocr_pages"] == "1"


def test_ocr_disabled_is_an_explicit_error() -> None:
    png, _, _ = text_image("hello")
    cfg = ProcessingConfig(ocr=OcrConfig(enabled=False))
    assert _error(png, "scan.png", cfg)["code"] == "processing.ocr_disabled"
    jpg, w, h = text_image("scan", fmt="JPEG")
    assert _error(image_pdf_bytes(jpg, w, h), "scan.pdf", cfg)["code"] == "processing.no_text"


def test_missing_tesseract_is_an_explicit_error() -> None:
    png, _, _ = text_image("hello")
    cfg = ProcessingConfig(ocr=OcrConfig(tesseract_cmd="/nonexistent/tesseract"))
    err = _error(png, "scan.png", cfg)
    assert err["code"] == "processing.ocr_unavailable"


@pytest.mark.parametrize(
    ("name", "data", "path", "code"),
    [
        ("corrupt pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog", "bad.pdf", "processing.corrupt"),
        (
            "encrypted pdf",
            encrypted_pdf_bytes("secret plans"),
            "locked.pdf",
            "processing.encrypted",
        ),
        (
            "truncated xlsx",
            xlsx_bytes({"S": [["a"], [1]]})[:1500],
            "cut.xlsx",
            "processing.corrupt",
        ),
        ("xlsx zip bomb", zip_bomb_xlsx(20), "bomb.xlsx", "processing.zip_bomb"),
        ("binary junk .txt", os.urandom(4096), "junk.txt", "processing.binary_content"),
        ("empty file", b"", "empty.md", "processing.empty"),
        ("unknown binary", b"\x00\x01\x02\x03" * 100, "blob.bin", "processing.binary_content"),
        ("bad image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "bad.png", "processing.corrupt"),
    ],
)
def test_bad_inputs_become_error_rows(name: str, data: bytes, path: str, code: str) -> None:
    err = _error(data, path)
    assert err["code"] == code, (name, err)
    assert err["retryable"] is False


def test_over_size_limit_and_no_content() -> None:
    err = _error(b"x" * 2048, "big.txt", ProcessingConfig(max_file_bytes=1024))
    assert err == {
        "code": "processing.too_large",
        "message": "2048 bytes is over processing.max_file_bytes=1024",
        "retryable": False,
    }
    doc = parse_file(None, "gone.txt", CFG, uri="file:///gone.txt")
    assert doc.doc_id == hashlib.sha256(b"uri:file:///gone.txt").hexdigest()
    assert doc.error is not None and doc.error["code"] == "processing.no_content"


def test_type_by_content_and_mismatch_noted() -> None:
    content_type, meta = detect_type(pdf_bytes(["x"]), "report.txt")
    assert content_type == "application/pdf"
    assert meta == {
        "detected_by": "magic",
        "type_mismatch": "extension=text/plain content=application/pdf",
    }
    assert detect_type(b"<!DOCTYPE html><html><p>x", "page")[0] == "text/html"
    assert detect_type(b"plain words", "README")[0] == "text/plain"
    doc = _ok(pdf_bytes(["mislabelled"]), "mislabelled.txt")
    assert doc.text == "mislabelled" and "type_mismatch" in doc.metadata


def test_time_limit_interrupts_a_runaway_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ParseTimeout), time_limit(0.05):
        while True:
            pass

    def spin(content_type: str, data: bytes, cfg: ProcessingConfig):
        while True:
            pass

    monkeypatch.setattr(parse_mod, "_load", spin)
    err = _error(b"hello", "a.txt", ProcessingConfig(parse_timeout_s=0.05))
    assert err["code"] == "processing.timeout"
