"""Small office documents built in code: Word, PowerPoint, e-mail, OLE2, ZIP, ODF, EPUB.

The tests and the format benchmark build their inputs here, with the libraries made
for each format (python-docx, python-pptx, the stdlib ``email`` and ``zipfile``), so
nothing depends on files from elsewhere. :func:`ole_bytes` is a minimal writer of OLE2
compound files (legacy Office, Outlook ``.msg``), enough for ``olefile`` to read back
exactly what was written. Nothing here is needed to run a pipeline.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

# --- Word and PowerPoint --------------------------------------------------------------------


def docx_bytes(
    title: str = "Supplier review",
    paragraphs: Sequence[str] = ("The review covers **three** suppliers.",),
    table: Sequence[Sequence[str]] | None = None,
    header: str | None = None,
    extra_paragraphs: int = 0,
) -> bytes:
    """A Word document: a title, headings, nested lists, a table with merged cells.

    ``**bold**`` in a paragraph becomes a bold run. ``table`` rows (the first is the
    header) get their first two header cells merged when there are three or more
    columns, and the first column's second and third cells merged vertically.
    """
    import docx

    doc = docx.Document()
    doc.core_properties.title = title
    doc.core_properties.author = "Procurement team"
    doc.add_heading(title, level=1)
    for text in paragraphs:
        p = doc.add_paragraph()
        for i, piece in enumerate(text.split("**")):
            if piece:
                p.add_run(piece).bold = i % 2 == 1
    doc.add_heading("Findings", level=2)
    doc.add_paragraph("Northwind delivered on time", style="List Bullet")
    doc.add_paragraph("two late shipments in May", style="List Bullet 2")
    doc.add_paragraph("Globex needs an improvement plan", style="List Bullet")
    doc.add_heading("Next steps", level=2)
    doc.add_paragraph("Renew the Northwind contract", style="List Number")
    doc.add_paragraph("Audit Globex in Q4", style="List Number")
    if table:
        t = doc.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                t.cell(r, c).text = value
        if len(table[0]) >= 3 and len(table) >= 3:
            t.cell(0, 0).merge(t.cell(0, 1)).text = table[0][0]
            t.cell(1, 0).merge(t.cell(2, 0)).text = table[1][0]
    for n in range(extra_paragraphs):
        doc.add_paragraph(f"Paragraph {n}: " + "the supplier met the agreed terms. " * 8)
    if header:
        doc.sections[0].header.paragraphs[0].text = header
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def pptx_bytes(slides: Sequence[dict[str, Any]]) -> bytes:
    """A presentation: per slide ``title``, ``bullets`` (text or (level, text)),
    ``table`` (rows) and ``notes``."""
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation()
    for spec in slides:
        slide = prs.slides.add_slide(prs.slide_layouts[1])  # title and content
        slide.shapes.title.text = spec.get("title", "")
        body = slide.placeholders[1].text_frame
        bullets = spec.get("bullets", [])
        for i, item in enumerate(bullets):
            level, text = item if isinstance(item, tuple) else (0, item)
            para = body.paragraphs[0] if i == 0 else body.add_paragraph()
            para.text = text
            para.level = level
        if not bullets:
            slide.placeholders[1]._element.getparent().remove(slide.placeholders[1]._element)
        if spec.get("table"):
            rows = spec["table"]
            shape = slide.shapes.add_table(
                len(rows), len(rows[0]), Inches(1), Inches(5), Inches(6), Inches(1.5)
            )
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    shape.table.cell(r, c).text = str(value)
        if spec.get("notes"):
            slide.notes_slide.notes_text_frame.text = spec["notes"]
    out = io.BytesIO()
    prs.save(out)
    return out.getvalue()


# --- e-mail ---------------------------------------------------------------------------------


def eml_bytes(
    subject: str = "Q3 supplier review",
    body: str = "Hello team,\n\nthe review is attached.\n\nRegards,\nAna",
    html: str | None = None,
    attachments: Sequence[tuple[str, bytes, str]] = (),
) -> bytes:
    """A multipart e-mail with transport headers (Received, DKIM) and attachments
    ``(file name, bytes, MIME type)``; the body in quoted-printable UTF-8."""
    msg = EmailMessage()
    msg["Received"] = "from mx.example.com (mx.example.com [192.0.2.1]) by mail.acme.example"
    msg["DKIM-Signature"] = "v=1; a=rsa-sha256; d=acme.example; s=sel; b=QUJDREVGR0g="
    msg["From"] = "Ana Lima <ana@acme.example>"
    msg["To"] = "procurement@acme.example"
    msg["Cc"] = "Bob <bob@acme.example>"
    msg["Date"] = "Tue, 01 Dec 2026 09:30:00 +0100"
    msg["Subject"] = subject
    msg["Message-ID"] = "<review-42@acme.example>"
    msg.set_content(body, cte="quoted-printable")
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for name, data, mime in attachments:
        maintype, subtype = mime.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


# --- OLE2 compound files (legacy Office, Outlook .msg) ----------------------------------------

_FREE, _END, _FATSECT = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
_NOSTREAM = 0xFFFFFFFF


def ole_bytes(streams: dict[str, bytes]) -> bytes:
    """An OLE2 compound file (version 3, 512-byte sectors) holding ``streams``.

    Keys are paths (``"__attach_version1.0_#00000000/__substg1.0_37010102"``): the
    storages on the way are created. Streams under 4096 bytes go to the mini stream,
    as the format requires. Siblings are chained through their right links (a valid,
    if unbalanced, directory tree).
    """
    # the directory: entry 0 is the root; storages and streams below it
    entries: list[dict[str, Any]] = [{"name": "Root Entry", "type": 5, "kids": []}]
    index: dict[str, int] = {"": 0}
    for path in sorted(streams):
        parts = path.split("/")
        for depth in range(len(parts)):
            key = "/".join(parts[: depth + 1])
            if key in index:
                continue
            parent = index["/".join(parts[:depth])]
            is_stream = depth == len(parts) - 1
            entries.append(
                {"name": parts[depth], "type": 2 if is_stream else 1, "kids": [], "data": None}
            )
            index[key] = len(entries) - 1
            entries[parent]["kids"].append(index[key])
            if is_stream:
                entries[-1]["data"] = streams[path]
    # mini stream for small streams, regular sectors for the others
    mini = bytearray()
    minifat: list[int] = []
    big: list[tuple[int, bytes]] = []
    for i, entry in enumerate(entries):
        data = entry.get("data")
        if data is None:
            continue
        if len(data) < 4096:
            entry["start"] = len(mini) // 64 if data else _END
            count = math.ceil(len(data) / 64)
            minifat.extend(range(len(minifat) + 1, len(minifat) + count))
            if count:
                minifat.append(_END)
            mini += data + b"\0" * (count * 64 - len(data))
        else:
            big.append((i, data))

    def sectors(data: bytes) -> int:
        return math.ceil(len(data) / 512)

    dir_bytes_len = math.ceil(len(entries) / 4) * 512
    minifat_bytes = b"".join(struct.pack("<I", v) for v in minifat)
    regions: list[bytes] = [b"\0" * dir_bytes_len, minifat_bytes, bytes(mini)]
    regions += [data for _, data in big]
    content = sum(sectors(r) for r in regions)
    n_fat = 1
    while n_fat * 128 < content + n_fat:
        n_fat += 1
    if n_fat > 109:
        raise ValueError("ole_bytes writes files up to about 7 MB")
    fat = [_FATSECT] * n_fat
    starts = []
    for region in regions:
        count = sectors(region)
        starts.append(len(fat) if count else _END)
        fat.extend(range(len(fat) + 1, len(fat) + count))
        if count:
            fat.append(_END)
    fat += [_FREE] * (n_fat * 128 - len(fat))
    dir_start, minifat_start, mini_start = starts[:3]
    for (i, _), start in zip(big, starts[3:], strict=True):
        entries[i]["start"] = start
    entries[0]["start"] = mini_start
    entries[0]["size"] = len(mini)

    def entry_bytes(i: int) -> bytes:
        e = entries[i]
        name = e["name"].encode("utf-16-le") + b"\0\0"
        kids = e["kids"]
        parent_kids: list[int] = next((p["kids"] for p in entries if i in p["kids"]), [])
        pos = parent_kids.index(i) if i in parent_kids else -1
        right = parent_kids[pos + 1] if 0 <= pos < len(parent_kids) - 1 else _NOSTREAM
        size = e.get("size", len(e["data"]) if e.get("data") is not None else 0)
        start = e.get("start", _END if e["type"] != 1 else 0)
        return (
            name.ljust(64, b"\0")
            + struct.pack("<HBB", len(name), e["type"], 1)
            + struct.pack("<III", _NOSTREAM, right, kids[0] if kids else _NOSTREAM)
            + b"\0" * 16
            + struct.pack("<I", 0)
            + b"\0" * 16
            + struct.pack("<IQ", start, size)
        )

    directory = b"".join(entry_bytes(i) for i in range(len(entries)))
    directory += b"\0" * (dir_bytes_len - len(directory))
    regions[0] = directory
    difat = [*range(n_fat), *([_FREE] * (109 - n_fat))]
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\0" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + b"\0" * 6
        + struct.pack(
            "<IIIIIIIII",
            0,
            n_fat,
            dir_start,
            0,
            4096,
            minifat_start,
            sectors(minifat_bytes),
            _END,
            0,
        )
        + b"".join(struct.pack("<I", v) for v in difat)
    )
    body = b"".join(struct.pack("<I", v) for v in fat)
    for region in regions:
        body += region + b"\0" * (sectors(region) * 512 - len(region))
    return header + body


def _prop_stream(prop: int, text: str) -> tuple[str, bytes]:
    return f"__substg1.0_{prop:04X}001F", text.encode("utf-16-le")


def msg_bytes(
    subject: str,
    body: str,
    sender: str = "Ana Lima",
    sender_email: str = "ana@acme.example",
    to: str = "Procurement",
    attachments: Sequence[tuple[str, bytes]] = (),
    submitted: int = 134089890000000000,
) -> bytes:
    """An Outlook ``.msg`` ([MS-OXMSG]): subject, sender, recipients, plain body, the
    submit time (a FILETIME) and attachments ``(file name, bytes)``."""
    streams: dict[str, bytes] = dict(
        [
            _prop_stream(0x0037, subject),
            _prop_stream(0x0C1A, sender),
            _prop_stream(0x0C1F, sender_email),
            _prop_stream(0x0E04, to),
            _prop_stream(0x1000, body),
        ]
    )
    # fixed-size properties: a 32-byte header, then 16 bytes each (tag, flags, value)
    props = b"\0" * 32 + struct.pack("<IIQ", (0x0039 << 16) | 0x0040, 6, submitted)
    streams["__properties_version1.0"] = props
    for n, (name, data) in enumerate(attachments):
        prefix = f"__attach_version1.0_#{n:08X}/"
        streams[prefix + "__substg1.0_3707001F"] = name.encode("utf-16-le")
        streams[prefix + "__substg1.0_37010102"] = data
        streams[prefix + "__properties_version1.0"] = b"\0" * 8 + struct.pack(
            "<IIQ", (0x3705 << 16) | 0x0003, 6, 1
        )
    return ole_bytes(streams)


# --- archives, OpenDocument, EPUB, RTF, TIFF ----------------------------------------------


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive of ``members`` (names are written as given, unsafe ones too)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2026, 12, 1, 0, 0, 0)), data, compression)
    return out.getvalue()


_ODF_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" '
    'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
    'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" '
    'xmlns:xlink="http://www.w3.org/1999/xlink" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0"'
)


def odf_bytes(kind: str, body: str, styles: str = "", title: str = "") -> bytes:
    """An OpenDocument package: ``kind`` is text, spreadsheet or presentation; ``body``
    the XML inside ``office:<kind>``; ``styles`` automatic styles (list styles)."""
    mimetype = f"application/vnd.oasis.opendocument.{kind}"
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODF_NS}>'
        f"<office:automatic-styles>{styles}</office:automatic-styles>"
        f"<office:body><office:{kind}>{body}</office:{kind}></office:body>"
        "</office:document-content>"
    )
    meta = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-meta {_ODF_NS}>'
        f"<office:meta><dc:title>{title}</dc:title>"
        "<meta:initial-creator>Ana Lima</meta:initial-creator></office:meta>"
        "</office:document-meta>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), mimetype, zipfile.ZIP_STORED)
        zf.writestr("content.xml", content)
        zf.writestr("meta.xml", meta)
        zf.writestr(
            "META-INF/manifest.xml",
            '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:'
            'manifest:1.0"/>',
        )
    return out.getvalue()


def epub_bytes(title: str, chapters: Sequence[tuple[str, str]]) -> bytes:
    """An EPUB 3 book: ``chapters`` are ``(title, XHTML body markup)`` in spine order."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip", zipfile.ZIP_STORED)
        zf.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" '
            'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
        )
        items = "".join(
            f'<item id="c{i}" href="text/ch{i}.xhtml" media-type="application/xhtml+xml"/>'
            for i in range(len(chapters))
        )
        spine = "".join(f'<itemref idref="c{i}"/>' for i in reversed(range(len(chapters))))
        zf.writestr(
            "OEBPS/content.opf",
            '<?xml version="1.0" encoding="UTF-8"?><package xmlns="http://www.idpf.org/2007/opf" '
            'version="3.0"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"<dc:title>{title}</dc:title><dc:creator>Ana Lima</dc:creator>"
            f"<dc:language>en</dc:language></metadata><manifest>{items}</manifest>"
            f"<spine>{spine}</spine></package>",
        )
        for i, (heading, markup) in enumerate(chapters):
            zf.writestr(
                f"OEBPS/text/ch{i}.xhtml",
                '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
                '<html xmlns="http://www.w3.org/1999/xhtml"><head>'
                f"<title>{heading}</title></head><body><h1>{heading}</h1>{markup}</body></html>",
            )
    return out.getvalue()


def tiff_bytes(pages: Sequence[str]) -> bytes:
    """A multi-page TIFF: one page of large black text per string."""
    from PIL import Image

    from fmf_spark.processing.synthetic import text_image

    frames = [Image.open(io.BytesIO(text_image(text)[0])) for text in pages]
    out = io.BytesIO()
    frames[0].save(out, format="TIFF", save_all=True, append_images=frames[1:])
    return out.getvalue()
