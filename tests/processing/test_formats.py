"""The document formats enterprises keep: each built here with its own library, parsed,
and its whole markdown compared; child documents (attachments, archive members) and
their limits; legacy and encrypted Office files."""

from __future__ import annotations

import email.policy
import hashlib
import shutil
import zipfile
from email.message import EmailMessage

import pytest

from fmf_spark.config.processing import ProcessingConfig
from fmf_spark.processing import parse_file
from fmf_spark.processing.parse import ChildDocument, ParsedDocument, expand_children
from fmf_spark.processing.synthetic import pdf_bytes
from fmf_spark.processing.synthetic_office import (
    docx_bytes,
    eml_bytes,
    epub_bytes,
    msg_bytes,
    odf_bytes,
    ole_bytes,
    pptx_bytes,
    tiff_bytes,
    zip_bytes,
)
from tests.processing.helpers import encrypt_office

CFG = ProcessingConfig(max_file_bytes=20 * 1024 * 1024)
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

REVIEW_DOCX_MD = (
    "ACME Confidential\n\n"
    "# Supplier review\n\n"
    "The review covers **three** suppliers.\n\n"
    "## Findings\n\n"
    "- Northwind delivered on time\n"
    "  - two late shipments in May\n"
    "- Globex needs an improvement plan\n\n"
    "## Next steps\n\n"
    "1. Renew the Northwind contract\n"
    "2. Audit Globex in Q4\n\n"
    "| Supplier | Supplier | Score |\n|---|---|---|\n"
    "| Northwind | EU | 9 |\n"
    "| Northwind | US | 7 |"
)


def _review_docx() -> bytes:
    return docx_bytes(
        table=[["Supplier", "Region", "Score"], ["Northwind", "EU", "9"], ["", "US", "7"]],
        header="ACME Confidential",
    )


def _ok(data: bytes, path: str, cfg: ProcessingConfig = CFG) -> ParsedDocument:
    doc = parse_file(data, path, cfg)
    assert doc.status == "ok", doc.error
    return doc


def _children(doc: ParsedDocument, path: str, cfg: ProcessingConfig = CFG) -> list[ChildDocument]:
    return list(expand_children(doc, path, f"file:///in/{path}", cfg))


def _summary(kids: list[ChildDocument]) -> list[tuple[str, int, str | None, str, str | None]]:
    return [
        (k.path, k.depth, k.doc.content_type, k.doc.status, (k.doc.error or {}).get("code"))
        for k in kids
    ]


# --- Word and PowerPoint --------------------------------------------------------------------


def test_docx_headings_nested_lists_merged_cells_header_once() -> None:
    doc = _ok(_review_docx(), "review.docx")
    assert doc.content_type == DOCX
    assert doc.text == REVIEW_DOCX_MD
    assert {k: doc.metadata[k] for k in ("title", "author", "headers")} == {
        "title": "Supplier review",
        "author": "Procurement team",
        "headers": "1",
    }


def test_docx_recognised_without_extension() -> None:
    doc = _ok(_review_docx(), "inbox/attachment-1")
    assert (doc.content_type, doc.text) == (DOCX, REVIEW_DOCX_MD)


def test_pptx_slides_are_pages_with_notes_and_tables() -> None:
    data = pptx_bytes(
        [
            {
                "title": "Q3 review",
                "bullets": ["Revenue up", (1, "EU +4%"), "Costs flat"],
                "notes": "Mention the EU numbers.",
            },
            {"title": "Suppliers", "table": [["name", "score"], ["Northwind", 9]]},
        ]
    )
    doc = _ok(data, "deck.pptx")
    slide1 = (
        "## Slide 1: Q3 review\n\n- Revenue up\n  - EU +4%\n- Costs flat\n\n"
        "### Notes\n\nMention the EU numbers."
    )
    slide2 = "## Slide 2: Suppliers\n\n| name | score |\n|---|---|\n| Northwind | 9 |"
    assert doc.content_type == PPTX
    assert doc.text == f"{slide1}\n\n{slide2}"
    assert doc.pages == 2
    assert doc.metadata["page_starts"] == f"0,{len(slide1) + 2}"
    assert doc.metadata["slides"] == "2"


@pytest.mark.parametrize(
    ("name", "code"),
    [("locked.docx", "processing.encrypted"), ("locked.pptx", "processing.encrypted")],
)
def test_password_protected_office_files(name: str, code: str) -> None:
    plain = _review_docx() if name.endswith("docx") else pptx_bytes([{"title": "x"}])
    doc = parse_file(encrypt_office(plain), name, CFG)
    assert doc.status == "error" and doc.error is not None
    assert doc.error["code"] == code
    assert doc.content_type == (DOCX if name.endswith("docx") else PPTX)


@pytest.mark.parametrize(
    ("name", "streams", "content_type", "conversion"),
    [
        (
            "old.doc",
            {"WordDocument": b"w" * 600, "1Table": b"t" * 5000},
            "application/msword",
            "docx",
        ),
        ("old.xls", {"Workbook": b"b" * 5000}, "application/vnd.ms-excel", "xlsx"),
        ("old.ppt", {"PowerPoint Document": b"p" * 700}, "application/vnd.ms-powerpoint", "pptx"),
        ("renamed.docx", {"WordDocument": b"w" * 600}, "application/msword", "docx"),
    ],
)
def test_legacy_binary_office_names_the_conversion(
    name: str, streams: dict[str, bytes], content_type: str, conversion: str
) -> None:
    doc = parse_file(ole_bytes(streams), name, CFG)
    assert doc.content_type == content_type
    assert doc.error is not None and doc.error["code"] == "processing.legacy_format"
    assert (
        f"convert it to .{conversion} (soffice --headless --convert-to {conversion}"
        in (doc.error["message"])
    )


# --- e-mail ---------------------------------------------------------------------------------


def test_eml_headers_body_and_attachments_as_children() -> None:
    review = _review_docx()
    summary = pdf_bytes(["Summary page\nTotal 4521"])
    data = eml_bytes(
        body="Hello team,\n\nthe review is attached. Caf\u00e9 at 10.\n\nRegards,\nAna",
        attachments=[
            ("review.docx", review, DOCX),
            ("../../summary.pdf", summary, "application/pdf"),
        ],
    )
    doc = _ok(data, "mail/review.eml")
    assert doc.content_type == "message/rfc822"
    assert doc.text == (
        "# Q3 supplier review\n\n"
        "From: Ana Lima <ana@acme.example>\n"
        "To: procurement@acme.example\n"
        "Cc: Bob <bob@acme.example>\n"
        "Date: Tue, 01 Dec 2026 09:30:00 +0100\n\n"
        "Hello team,\n\nthe review is attached. Café at 10.\n\nRegards,\nAna"
    )
    assert "Received" not in doc.text and "DKIM" not in doc.text
    assert {k: v for k, v in doc.metadata.items() if k != "detected_by"} == {
        "subject": "Q3 supplier review",
        "from": "Ana Lima <ana@acme.example>",
        "to": "procurement@acme.example",
        "cc": "Bob <bob@acme.example>",
        "date": "2026-12-01T09:30:00+01:00",
        "message_id": "<review-42@acme.example>",
        "body": "plain",
        "attachments": "2",
    }
    kids = _children(doc, "mail/review.eml")
    assert _summary(kids) == [
        ("mail/review.eml!/review.docx", 1, DOCX, "ok", None),
        ("mail/review.eml!/summary.pdf", 1, "application/pdf", "ok", None),
    ]
    assert [k.doc.text for k in kids] == [REVIEW_DOCX_MD, "Summary page\nTotal 4521"]
    assert [k.doc.doc_id for k in kids] == [
        hashlib.sha256(review).hexdigest(),
        hashlib.sha256(summary).hexdigest(),
    ]
    assert {(k.parent_doc_id, k.attachment_name) for k in kids} == {
        (doc.doc_id, "review.docx"),
        (doc.doc_id, "summary.pdf"),
    }
    assert kids[0].uri == "file:///in/mail/review.eml!/review.docx"
    assert kids[0].doc.metadata["parent_doc_id"] == doc.doc_id


def test_eml_html_only_body_and_attached_email() -> None:
    inner = eml_bytes(subject="Original", body="First message.")
    msg = EmailMessage()
    msg["From"] = "bob@acme.example"
    msg["To"] = "ana@acme.example"
    msg["Subject"] = "Fwd: Original"
    msg["Date"] = "Wed, 02 Dec 2026 08:00:00 +0000"
    msg.set_content(
        "<html><body><p>See <b>below</b>:</p><ul><li>one</li><li>two</li></ul></body></html>",
        subtype="html",
        charset="iso-8859-1",
    )
    msg.add_attachment(
        email.message_from_bytes(inner, policy=email.policy.default), filename="original.eml"
    )
    doc = _ok(msg.as_bytes(), "fwd.eml")
    assert doc.text == (
        "# Fwd: Original\n\nFrom: bob@acme.example\nTo: ana@acme.example\n"
        "Date: Wed, 02 Dec 2026 08:00:00 +0000\n\nSee **below**:\n\n- one\n- two"
    )
    assert doc.metadata["body"] == "html"
    kids = _children(doc, "fwd.eml")
    assert _summary(kids) == [("fwd.eml!/original.eml", 1, "message/rfc822", "ok", None)]
    assert kids[0].doc.text is not None and kids[0].doc.text.endswith("First message.")


def test_eml_recognised_by_its_headers_without_extension() -> None:
    doc = _ok(eml_bytes(), "export/0001")
    assert doc.content_type == "message/rfc822"


def test_outlook_msg_with_attachment() -> None:
    data = msg_bytes(
        "Q3 review",
        "Hello,\r\nsee attached.",
        attachments=[("notes.txt", b"Renewal due in March.")],
    )
    doc = _ok(data, "mail/review.msg")
    assert doc.content_type == "application/vnd.ms-outlook"
    assert doc.text == (
        "# Q3 review\n\nFrom: Ana Lima <ana@acme.example>\nTo: Procurement\n"
        "Date: 2025-11-30T15:10:00+00:00\n\nHello,\nsee attached."
    )
    kids = _children(doc, "mail/review.msg")
    assert _summary(kids) == [("mail/review.msg!/notes.txt", 1, "text/plain", "ok", None)]
    assert kids[0].doc.text == "Renewal due in March."


# --- archives and their limits --------------------------------------------------------------


def test_nested_zip_members_are_children_depth_limited() -> None:
    level3 = zip_bytes({"deep.txt": b"three levels down"})
    level2 = zip_bytes({"notes.md": b"# Notes", "inner.zip": level3})
    data = zip_bytes(
        {
            "readme.txt": b"top level",
            "sub/level2.zip": level2,
            "../escape.txt": b"x",
            "/etc/passwd": b"x",
            "C:\\windows\\evil.txt": b"x",
            "folder/": b"",
            "__MACOSX/._readme.txt": b"resource fork",
        }
    )
    cfg = ProcessingConfig(max_depth=2)
    doc = _ok(data, "bundle.zip", cfg)
    assert doc.text == (
        "# Archive\n\n| member | bytes |\n|---|---|\n"
        "| readme.txt | 9 |\n"
        f"| sub/level2.zip | {len(level2)} |\n"
        "| ../escape.txt | 1 |\n| /etc/passwd | 1 |\n| C:\\windows\\evil.txt | 1 |"
    )
    kids = _children(doc, "bundle.zip", cfg)
    assert _summary(kids) == [
        ("bundle.zip!/readme.txt", 1, "text/plain", "ok", None),
        ("bundle.zip!/sub/level2.zip", 1, "application/zip", "ok", None),
        ("bundle.zip!/sub/level2.zip!/notes.md", 2, "text/markdown", "ok", None),
        ("bundle.zip!/sub/level2.zip!/inner.zip", 2, "application/zip", "ok", None),
        (
            "bundle.zip!/sub/level2.zip!/inner.zip!/deep.txt",
            3,
            None,
            "error",
            "processing.too_deep",
        ),
        ("bundle.zip!/../escape.txt", 1, None, "error", "processing.unsafe_path"),
        ("bundle.zip!//etc/passwd", 1, None, "error", "processing.unsafe_path"),
        ("bundle.zip!/C:\\windows\\evil.txt", 1, None, "error", "processing.unsafe_path"),
    ]
    by_path = {k.path: k for k in kids}
    inner = by_path["bundle.zip!/sub/level2.zip!/inner.zip"]
    assert inner.parent_doc_id == by_path["bundle.zip!/sub/level2.zip"].doc.doc_id
    assert by_path["bundle.zip!/sub/level2.zip!/notes.md"].doc.text == "# Notes"


def test_zip_bomb_refused_at_the_top_and_nested() -> None:
    bomb = zip_bytes({"zeros.txt": b"\0" * (20 * 1024 * 1024)})
    err = parse_file(bomb, "bomb.zip", CFG).error
    assert err is not None and err["code"] == "processing.zip_bomb"
    # stored (not deflated) inside another archive: the outer ratio is 1, the inner one not
    outer = zip_bytes({"ok.txt": b"fine", "bomb.zip": bomb}, compression=zipfile.ZIP_STORED)
    doc = _ok(outer, "outer.zip")
    assert _summary(_children(doc, "outer.zip")) == [
        ("outer.zip!/ok.txt", 1, "text/plain", "ok", None),
        ("outer.zip!/bomb.zip", 1, "application/zip", "error", "processing.zip_bomb"),
    ]


def test_children_count_and_total_bytes_limits() -> None:
    members = {f"m{i}.txt": f"member {i}".encode() for i in range(5)}
    cfg = ProcessingConfig(max_children=2)
    doc = _ok(zip_bytes(members), "many.zip", cfg)
    kids = _children(doc, "many.zip", cfg)
    assert [k.attachment_name for k in kids] == ["m0.txt", "m1.txt"]
    assert doc.metadata["children_skipped"] == "3"
    cfg = ProcessingConfig(max_expanded_bytes=20)
    doc = _ok(zip_bytes(members), "many.zip", cfg)
    assert _summary(_children(doc, "many.zip", cfg)) == [
        ("many.zip!/m0.txt", 1, "text/plain", "ok", None),
        ("many.zip!/m1.txt", 1, "text/plain", "ok", None),
        ("many.zip!/m2.txt", 1, None, "error", "processing.zip_bomb"),
        ("many.zip!/m3.txt", 1, None, "error", "processing.zip_bomb"),
        ("many.zip!/m4.txt", 1, None, "error", "processing.zip_bomb"),
    ]


# --- OpenDocument, RTF, EPUB ----------------------------------------------------------------

_LIST_STYLE = (
    '<text:list-style style:name="L1"><text:list-level-style-number text:level="1"/>'
    '<text:list-level-style-bullet text:level="2"/></text:list-style>'
)


def test_odt() -> None:
    body = (
        '<text:h text:outline-level="1">Plan</text:h>'
        '<text:p>Intro with <text:a xlink:href="https://x.example">a link</text:a>,'
        '<text:s text:c="2"/>a note<text:note><text:note-citation>1</text:note-citation>'
        "<text:note-body><text:p>See annex.</text:p></text:note-body></text:note>.</text:p>"
        '<text:h text:outline-level="2">Steps</text:h>'
        '<text:list text:style-name="L1"><text:list-item><text:p>first</text:p>'
        "<text:list><text:list-item><text:p>inner</text:p></text:list-item></text:list>"
        "</text:list-item><text:list-item><text:p>second</text:p></text:list-item></text:list>"
        '<table:table table:name="T"><table:table-row><table:table-cell><text:p>a</text:p>'
        "</table:table-cell><table:table-cell><text:p>b</text:p></table:table-cell>"
        "</table:table-row><table:table-row><table:table-cell><text:p>1</text:p>"
        "</table:table-cell><table:table-cell><text:p>2</text:p></table:table-cell>"
        "</table:table-row></table:table>"
    )
    doc = _ok(odf_bytes("text", body, _LIST_STYLE, "Plan doc"), "plan.odt")
    assert doc.content_type == "application/vnd.oasis.opendocument.text"
    assert doc.text == (
        "# Plan\n\nIntro with [a link](https://x.example),  a note[^1].\n\n## Steps\n\n"
        "1. first\n  - inner\n2. second\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "[^1]: See annex."
    )
    assert (doc.metadata["title"], doc.metadata["author"]) == ("Plan doc", "Ana Lima")


def test_ods_repeated_cells_and_sheets_as_pages() -> None:
    def cell(text: str) -> str:
        return f"<table:table-cell><text:p>{text}</text:p></table:table-cell>"

    empty_row = '<table:table-row table:number-rows-repeated="1048570"><table:table-cell table:number-columns-repeated="1024"/></table:table-row>'
    body = (
        '<table:table table:name="Data"><table:table-row>'
        + cell("k")
        + cell("v")
        + '<table:table-cell table:number-columns-repeated="1000"/></table:table-row>'
        + "<table:table-row>"
        + cell("x")
        + cell("13")
        + "</table:table-row>"
        + empty_row
        + '</table:table><table:table table:name="Notes"><table:table-row>'
        + cell("note")
        + "</table:table-row></table:table>"
    )
    doc = _ok(odf_bytes("spreadsheet", body), "book.ods")
    first = "## Sheet: Data\n\n| k | v |\n|---|---|\n| x | 13 |"
    assert doc.text == f"{first}\n\n## Sheet: Notes\n\n| note |\n|---|"
    assert (doc.pages, doc.metadata["page_starts"]) == (2, f"0,{len(first) + 2}")


def test_odp_slides_with_notes() -> None:
    page = (
        '<draw:page draw:name="p1">'
        '<draw:frame presentation:class="outline" svg:y="5cm" svg:x="1cm"><draw:text-box>'
        "<text:list><text:list-item><text:p>point A</text:p></text:list-item>"
        "<text:list-item><text:p>point B</text:p></text:list-item></text:list>"
        "</draw:text-box></draw:frame>"
        '<draw:frame presentation:class="title" svg:y="1cm" svg:x="1cm"><draw:text-box>'
        "<text:p>Hello deck</text:p></draw:text-box></draw:frame>"
        '<presentation:notes><draw:frame presentation:class="notes"><draw:text-box>'
        "<text:p>Say hi</text:p></draw:text-box></draw:frame></presentation:notes></draw:page>"
    )
    doc = _ok(odf_bytes("presentation", page + page.replace("Hello deck", "Second")), "d.odp")
    slide = "## Slide {n}: {t}\n\n- point A\n- point B\n\n### Notes\n\nSay hi"
    assert doc.text == (slide.format(n=1, t="Hello deck") + "\n\n" + slide.format(n=2, t="Second"))
    assert doc.pages == 2


def test_rtf() -> None:
    data = (
        rb"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Arial;}}{\colortbl;\red255\green0\blue0;}"
        rb"\f0\fs24 Hello \b world\b0 .\par Caf\'e9 \u8364? ok\par}"
    )
    doc = _ok(data, "letter.rtf")
    assert (doc.content_type, doc.text) == ("application/rtf", "Hello world.\nCafé € ok")


def test_epub_chapters_in_spine_order() -> None:
    data = epub_bytes(
        "Handbook",
        [("Chapter A", "<p>alpha text</p>"), ("Chapter B", "<p>beta <em>text</em></p>")],
    )
    doc = _ok(data, "handbook.epub")
    # the spine lists B before A: reading order is the spine's, not the manifest's
    assert doc.text == "# Chapter B\n\nbeta *text*\n\n# Chapter A\n\nalpha text"
    assert doc.pages == 2
    assert {k: doc.metadata[k] for k in ("title", "author", "language", "chapters")} == {
        "title": "Handbook",
        "author": "Ana Lima",
        "language": "en",
        "chapters": "2",
    }


# --- structured text ------------------------------------------------------------------------


def test_json_as_structured_markdown() -> None:
    data = (
        b'{"name": "acme", "active": true, "owner": null, "tags": ["a", "b"],'
        b' "people": [{"n": "x", "age": 3}, {"n": "y", "age": 4}],'
        b' "address": {"city": "Lyon", "geo": {"lat": 45.76}}}'
    )
    assert _ok(data, "org.json").text == (
        "- **name**: acme\n- **active**: true\n- **owner**: null\n\n"
        "# tags\n\n- a\n- b\n\n"
        "# people\n\n| n | age |\n|---|---|\n| x | 3 |\n| y | 4 |\n\n"
        "# address\n\n- **city**: Lyon\n\n## geo\n\n- **lat**: 45.76"
    )


def test_ndjson_one_record_per_line() -> None:
    flat = _ok(b'{"a":1,"b":"x"}\n\n{"a":2,"c":true}\n', "events.ndjson")
    assert flat.text == "| a | b | c |\n|---|---|---|\n| 1 | x |  |\n| 2 |  | true |"
    nested = _ok(b'{"id":1,"tags":["p","q"]}\n[1,2]\nnot json\n', "mixed.jsonl")
    assert nested.text == '- id: 1; tags: ["p", "q"]\n- [1, 2]'
    assert (nested.metadata["records"], nested.metadata["invalid_lines"]) == ("2", "1")
    bad = parse_file(b"{broken", "x.json", CFG)
    assert bad.error is not None and bad.error["code"] == "processing.corrupt"


def test_xml_records_as_tables_entities_not_expanded() -> None:
    data = (
        b'<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        b'<!DOCTYPE orders [<!ENTITY boom "expanded">]>\n'
        b'<orders source="erp"><order id="1"><item>pen</item><qty>2</qty></order>'
        b'<order id="2"><item>caf\xe9</item><qty>1</qty></order>'
        b"<note>&boom;hi</note><customer><name>Acme</name><address><city>Lyon</city>"
        b"</address></customer></orders>"
    )
    assert _ok(data, "orders.xml").text == (
        "# orders (source=erp)\n\n## order\n\n| id | item | qty |\n|---|---|---|\n"
        "| 1 | pen | 2 |\n| 2 | café | 1 |\n\n"
        "- **note**: hi\n\n## customer\n\n- **name**: Acme\n\n### address\n\n- **city**: Lyon"
    )


def test_rst_and_org_read_as_text() -> None:
    rst = _ok(b"Title\n=====\n\n* item\n", "guide.rst")
    org = _ok(b"* Heading\n** Sub\n", "notes.org")
    assert (rst.content_type, rst.text) == ("text/x-rst", "Title\n=====\n\n* item")
    assert (org.content_type, org.text) == ("text/x-org", "* Heading\n** Sub")


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr is not installed")
def test_multipage_tiff_through_ocr() -> None:
    doc = _ok(tiff_bytes(["First page text", "Second page text"]), "scan.tif")
    assert (doc.content_type, doc.text, doc.pages) == (
        "image/tiff",
        "First page text\n\nSecond page text",
        2,
    )
    assert doc.metadata["page_starts"] == "0,17"


def test_docx_text_box_text_kept() -> None:
    import io

    import docx
    from docx.oxml import parse_xml

    document = docx.Document()
    document.add_paragraph("Before the box.")
    box = parse_xml(
        '<w:p xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
        'xmlns:v="urn:schemas-microsoft-com:vml"><w:r><w:t>Callout:</w:t></w:r><w:r><w:pict>'
        "<v:shape><v:textbox><w:txbxContent><w:p><w:r><w:t>Deadline is Friday</w:t></w:r>"
        "</w:p></w:txbxContent></v:textbox></v:shape></w:pict></w:r></w:p>"
    )
    document.element.body.insert(1, box)
    out = io.BytesIO()
    document.save(out)
    assert _ok(out.getvalue(), "box.docx").text == "Before the box.\n\nCallout: Deadline is Friday"


def test_page_strategy_cuts_at_slides_and_sheets() -> None:
    from fmf_spark.config.processing import ChunkingConfig
    from fmf_spark.processing import chunk_text
    from fmf_spark.processing.synthetic import xlsx_bytes

    cfg = ChunkingConfig(strategy="page", max_tokens=200, overlap_tokens=0)
    deck = _ok(pptx_bytes([{"title": "One", "bullets": ["a"]}, {"title": "Two"}]), "d.pptx")
    book = _ok(xlsx_bytes({"North": [["k", "v"], [1, 2]], "South": [["k"], [3]]}), "b.xlsx")
    for doc, pages in (
        (deck, ["## Slide 1: One\n\n- a", "## Slide 2: Two"]),
        (
            book,
            [
                "## Sheet: North\n\n| k | v |\n|---|---|\n| 1 | 2 |",
                "## Sheet: South\n\n| k |\n|---|\n| 3 |",
            ],
        ),
    ):
        starts = [int(s) for s in doc.metadata["page_starts"].split(",")]
        chunks = chunk_text(doc.doc_id, doc.text or "", cfg, starts)
        assert [(c.text, c.metadata["page"]) for c in chunks] == [(pages[0], "1"), (pages[1], "2")]
