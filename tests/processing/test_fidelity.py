"""Regression tests for fidelity defects of the loaders found on real public documents.

Each test builds the document that showed the defect and compares the whole output.
Each failed on the loaders before their fix (f41d8a4).
"""

from __future__ import annotations

import io
import os
import shutil
import stat
from pathlib import Path

import pytest

from fmf_spark.config.processing import OcrConfig, ProcessingConfig
from fmf_spark.processing import parse_file

CFG = ProcessingConfig(max_file_bytes=20 * 1024 * 1024)
needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is not installed"
)


def _text(data: bytes, path: str, cfg: ProcessingConfig = CFG) -> str:
    doc = parse_file(data, path, cfg)
    assert doc.status == "ok", doc.error
    assert doc.text is not None
    return doc.text


# --- HTML -----------------------------------------------------------------------------------


def test_html_with_xml_declaration_and_its_encoding() -> None:
    """SEC filings start with an XML declaration; lxml refused it in a str."""
    html = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        "<html><head><title>10-K</title></head><body><h1>Annual report</h1>"
        "<p>Caf\u00e9 revenue rose 5\u00a0%.</p></body></html>"
    ).encode("iso-8859-1")
    doc = parse_file(html, "filing.htm", CFG)
    assert doc.status == "ok", doc.error
    assert doc.text == "# Annual report\n\nCafé revenue rose 5 %."
    assert doc.metadata["encoding"] == "iso-8859-1"


def test_html_nested_table_once() -> None:
    """A table in a cell was escaped inside the cell, then its rows repeated outside."""
    html = b"""<html><body><table>
    <tr><th>Item</th><th>Detail</th></tr>
    <tr><td>Fees</td><td><table><tr><td>base</td><td>10</td></tr><tr><td>extra</td><td>2</td></tr></table></td></tr>
    <tr><td>Term</td><td>24 months</td></tr></table></body></html>"""
    assert _text(html, "t.html") == (
        "| Item | Detail |\n|---|---|\n| Fees | base; 10 / extra; 2 |\n| Term | 24 months |"
    )


def test_html_list_directly_inside_a_list() -> None:
    html = b"<html><body><ul><li>fruit</li><ul><li>apple</li><li>pear</li></ul><li>bread</li></ul></body></html>"
    assert _text(html, "l.html") == "- fruit\n  - apple\n  - pear\n- bread"


def test_html_img_alt_inside_inline_elements() -> None:
    html = (
        b'<html><body><p>Signed by <a href="https://x.example/ceo"><img alt="the CEO" src="s.png"></a>'
        b' on <span><img alt="company seal"></span> 1 May.</p></body></html>'
    )
    assert _text(html, "i.html") == (
        "Signed by [![the CEO]()](https://x.example/ceo) on ![company seal]() 1 May."
    )


# --- text and TSV ---------------------------------------------------------------------------


def test_control_character_between_words_keeps_the_boundary() -> None:
    filler = "Plain words follow on this line.\n" * 10
    data = ("Cause and\x02effect, tab\x0bstop; end\x1f\n" + filler).encode()
    assert _text(data, "c.txt") == "Cause and effect, tab stop; end\n" + filler.rstrip("\n")


def test_tsv_is_a_table() -> None:
    data = b"name\tnotes\nNorthwind\tlate, twice\nGlobex\ton time\n"
    doc = parse_file(data, "suppliers.tsv", CFG)
    assert doc.status == "ok", doc.error
    assert doc.text == (
        "| name | notes |\n|---|---|\n| Northwind | late, twice |\n| Globex | on time |"
    )
    assert doc.content_type == "text/tab-separated-values"


# --- XLSX -----------------------------------------------------------------------------------


def _workbook(fill) -> bytes:  # type: ignore[no-untyped-def]
    from openpyxl import Workbook

    wb = Workbook()
    fill(wb)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_xlsx_number_formats() -> None:
    import datetime

    def fill(wb) -> None:  # type: ignore[no-untyped-def]
        ws = wb.active
        ws.title = "Figures"
        ws.append(["item", "units", "price", "share", "total", "day"])
        ws.append(["pens", 13.0, 2.5, 0.125, 1234567.891, datetime.datetime(2026, 12, 1)])
        ws.append(["ink", 7.0, 10.0, 0.5, -20.0, datetime.datetime(2026, 12, 2, 14, 30)])
        for row in (2, 3):
            ws.cell(row, 3).number_format = "0.00"
            ws.cell(row, 4).number_format = "0.0%"
            ws.cell(row, 5).number_format = "#,##0.00"
        ws.cell(2, 6).number_format = "yyyy-mm-dd"
        ws.cell(3, 6).number_format = "yyyy-mm-dd hh:mm"

    assert _text(_workbook(fill), "f.xlsx") == (
        "## Sheet: Figures\n\n"
        "| item | units | price | share | total | day |\n|---|---|---|---|---|---|\n"
        "| pens | 13 | 2.50 | 12.5% | 1,234,567.89 | 2026-12-01 |\n"
        "| ink | 7 | 10.00 | 50.0% | -20.00 | 2026-12-02 14:30 |"
    )


def test_xlsx_title_rows_blank_rows_and_two_tables_on_a_sheet() -> None:
    def fill(wb) -> None:  # type: ignore[no-untyped-def]
        ws = wb.active
        ws.title = "Report"
        rows = [
            ["Quarterly supplier report"],
            ["Prepared by procurement"],
            [],
            ["supplier", "orders", "late"],
            ["Northwind", 40, 2],
            [],
            ["Globex", 12, 5],
            [],
            [],
            ["region", "spend"],
            ["EU", 1200],
            ["US", 900],
        ]
        for row in rows:
            ws.append(row)

    assert _text(_workbook(fill), "r.xlsx") == (
        "## Sheet: Report\n\n"
        "Quarterly supplier report\n\nPrepared by procurement\n\n"
        "| supplier | orders | late |\n|---|---|---|\n| Northwind | 40 | 2 |\n| Globex | 12 | 5 |\n\n"
        "| region | spend |\n|---|---|\n| EU | 1200 |\n| US | 900 |"
    )


def test_xlsx_empty_workbook_is_not_ok() -> None:
    doc = parse_file(_workbook(lambda wb: None), "empty.xlsx", CFG)
    assert doc.status == "error"
    assert doc.error is not None and doc.error["code"] == "processing.no_text"


def test_xlsx_password_protected_is_encrypted() -> None:
    from tests.processing.helpers import encrypt_office

    plain = _workbook(lambda wb: wb.active.append(["secret", 1]))
    doc = parse_file(encrypt_office(plain), "locked.xlsx", CFG)
    assert doc.status == "error"
    assert doc.error is not None and doc.error["code"] == "processing.encrypted"
    assert doc.content_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- OCR ------------------------------------------------------------------------------------


@needs_tesseract
def test_ocr_runs_tesseract_with_one_thread(tmp_path: Path) -> None:
    """tesseract's OpenMP threads fought Spark's tasks (7x slower on 2 cores)."""
    from fmf_spark.processing.synthetic import text_image

    log = tmp_path / "env.log"
    wrapper = tmp_path / "tesseract"
    wrapper.write_text(
        f'#!/bin/sh\necho "OMP_THREAD_LIMIT=$OMP_THREAD_LIMIT" >> {log}\n'
        f'exec {shutil.which("tesseract")} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    cfg = ProcessingConfig(ocr=OcrConfig(tesseract_cmd=str(wrapper)))
    saved = os.environ.pop("OMP_THREAD_LIMIT", None)
    try:
        assert _text(text_image("Invoice total 4521")[0], "scan.png", cfg) == "Invoice total 4521"
    finally:
        if saved is not None:
            os.environ["OMP_THREAD_LIMIT"] = saved
    assert set(log.read_text().splitlines()) == {"OMP_THREAD_LIMIT=1"}


@needs_tesseract
@pytest.mark.parametrize("angle", [90, 180, 270])
def test_ocr_turns_a_sideways_scan_upright(angle: int) -> None:
    """A page scanned sideways was OCR'd as it lay: garbage with status ok."""
    from PIL import Image

    from fmf_spark.processing.synthetic import text_image

    png, _, _ = text_image(
        "Invoice total 4521\nPaid in full by the customer\nThank you for your business"
    )
    turned = io.BytesIO()
    Image.open(io.BytesIO(png)).rotate(angle, expand=True, fillcolor=255).save(turned, "PNG")
    assert _text(turned.getvalue(), "scan.png") == (
        "Invoice total 4521\nPaid in full by the customer\nThank you for your business"
    )


# --- PDF ------------------------------------------------------------------------------------


def _pdf(content: bytes, font: bytes = b"/BaseFont /Helvetica /Encoding /WinAnsiEncoding") -> bytes:
    """One page drawing ``content``, with font F1 as given (a plain PDF writer)."""
    from fmf_spark.processing.synthetic import _pdf_document

    data = _pdf_document([(content, {})], 612, 842)
    return data.replace(b"/BaseFont /Helvetica /Encoding /WinAnsiEncoding", font)


def _glyphs_twice(text: str, x: float = 56.0) -> bytes:
    """Each glyph drawn twice, 0.4 pt apart: how some generators fake bold."""
    widths = {"T": 6.1, "o": 6.1, "t": 3.1, "a": 6.1, "l": 2.4, "d": 6.1, "u": 6.1, "e": 6.1}
    ops = [b"BT /F1 11 Tf"]
    for c in text:
        if c != " ":
            for dx in (0.0, 0.4):
                ops.append(b"1 0 0 1 %.2f 780 Tm (%s) Tj" % (x + dx, c.encode()))
        x += widths.get(c, 3.1)
    ops.append(b"ET")
    return b"\n".join(ops)


def test_pdf_fake_bold_glyphs_once() -> None:
    content = _glyphs_twice("Total due") + b"\nBT /F1 11 Tf 56 760 Td (Paid in full) Tj ET"
    assert _text(_pdf(content), "bold.pdf") == "Total due\nPaid in full"


def test_pdf_letter_spaced_monospace_as_words() -> None:
    """Each glyph placed with a TJ adjustment (tracking) came out as "l a y o u t"."""

    def spaced(words: str) -> bytes:
        runs = [b" ".join(b"(%s) -400" % c.encode() for c in word) for word in words.split()]
        return b"[" + b" (  ) ".join(runs) + b"] TJ"

    content = b"BT /F1 11 Tf 56 780 Td " + spaced("layout engine") + b" 0 -20 Td (a b c) Tj ET"
    assert _text(_pdf(content, b"/BaseFont /Courier"), "mono.pdf") == "layout engine\na b c"


def test_pdf_minus_drawn_by_a_tex_symbol_font() -> None:
    """TeX's CMSY font draws the minus at code 0; its Differences name it /C0."""
    font = (
        b"/BaseFont /CMSY10 /Encoding << /Type /Encoding /BaseEncoding /WinAnsiEncoding "
        b"/Differences [0 /C0] >>"
    )
    content = b"BT /F1 11 Tf 56 780 Td (Balance: \\00042.50) Tj ET"
    assert _text(_pdf(content, font), "minus.pdf") == "Balance: \u221242.50"
