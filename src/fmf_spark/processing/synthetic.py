"""Small synthetic documents of every supported type, built in code.

Used by the shipped samples (``samples/docs``), the tests and the benchmarks, so all
three exercise the same bytes. Nothing here is needed to run a pipeline. The PDF writer
is a minimal PDF 1.4 emitter (text in Helvetica, or one JPEG image per page), enough
for pypdf to read back exactly what was written.
"""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Sequence
from typing import Any

WORDS = [
    "revenue",
    "forecast",
    "quarter",
    "margin",
    "supplier",
    "contract",
    "invoice",
    "delivery",
    "region",
    "growth",
    "risk",
    "audit",
    "policy",
    "customer",
    "churn",
    "pricing",
    "discount",
    "volume",
    "logistics",
    "warehouse",
    "compliance",
    "budget",
    "headcount",
    "roadmap",
    "launch",
    "partner",
    "renewal",
    "backlog",
    "incident",
    "review",
]


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _pdf_document(
    page_objects: list[tuple[bytes, dict[str, bytes]]], width: int, height: int
) -> bytes:
    """Assemble a PDF from (content stream, {resource name: object body}) per page."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled below
    pages_id = add(b"")
    font_id = add(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    kids = []
    for content, xobjects in page_objects:
        content_id = add(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
        xrefs = b" ".join(
            b"/%s %d 0 R" % (name.encode(), add(body)) for name, body in xobjects.items()
        )
        resources = b"<< /Font << /F1 %d 0 R >> /XObject << %s >> >>" % (font_id, xrefs)
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Resources %s /Contents %d 0 R >>"
                % (pages_id, width, height, resources, content_id)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id
    objects[pages_id - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(
        b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, catalog, xref)
    )
    return out.getvalue()


def pdf_bytes(pages: Sequence[str]) -> bytes:
    """A text PDF: one page per string, one line per ``\\n`` (Latin-1 text)."""
    page_objects: list[tuple[bytes, dict[str, bytes]]] = []
    for page in pages:
        lines = [b"BT /F1 11 Tf 14 TL 56 780 Td"]
        for line in page.split("\n"):
            lines.append(b"(%s) Tj T*" % _pdf_escape(line).encode("cp1252", "replace"))
        lines.append(b"ET")
        page_objects.append((b"\n".join(lines), {}))
    return _pdf_document(page_objects, 612, 842)


def image_pdf_bytes(jpeg: bytes, width: int, height: int) -> bytes:
    """An image-only PDF (a scan): one page showing one JPEG, no text layer."""
    image = (
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Filter /DCTDecode /Length %d >>\nstream\n"
        % (width, height, len(jpeg))
        + jpeg
        + b"\nendstream"
    )
    content = b"q %d 0 0 %d 0 0 cm /Im1 Do Q" % (width, height)
    return _pdf_document([(content, {"Im1": image})], width, height)


def encrypted_pdf_bytes(text: str, password: str = "s3cret") -> bytes:
    """A text PDF protected by a user password (cannot be opened without it)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes([text]))))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def text_image(text: str, fmt: str = "PNG", size: int = 36) -> tuple[bytes, int, int]:
    """Black text on white, large enough for tesseract; returns (bytes, width, height)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=size)
    lines = text.split("\n")
    width = max(int(font.getlength(line)) for line in lines) + 80
    height = (size + 16) * len(lines) + 80
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((40, 40 + i * (size + 16)), line, fill=0, font=font)
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue(), width, height


def xlsx_bytes(sheets: dict[str, Sequence[Sequence[Any]]]) -> bytes:
    """A workbook with one sheet per entry (rows; the first is the header)."""
    from openpyxl import Workbook

    wb = Workbook()
    default = wb.active
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(list(row))
    if default is not None:
        wb.remove(default)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def zip_bomb_xlsx(uncompressed_mb: int = 20) -> bytes:
    """A file that looks like a workbook and inflates to ``uncompressed_mb`` of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"\0" * (uncompressed_mb * 1024 * 1024))
    return out.getvalue()


def parquet_bytes(columns: dict[str, list[Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.table(columns), out)
    return out.getvalue()


# --- a mixed corpus for the benchmarks -------------------------------------------------------


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 22))]
    return " ".join(words).capitalize() + "."


def markdown_doc(rng: random.Random, target_chars: int) -> str:
    parts, size, section = [], 0, 0
    while size < target_chars:
        section += 1
        block = [f"## Section {section}", ""]
        for _ in range(rng.randint(1, 4)):
            block.append(" ".join(_sentence(rng) for _ in range(rng.randint(2, 8))))
            block.append("")
        if rng.random() < 0.3:
            block.extend(f"- {_sentence(rng)}" for _ in range(rng.randint(2, 5)))
            block.append("")
        text = "\n".join(block)
        parts.append(text)
        size += len(text)
    return "# Report\n\n" + "\n".join(parts)


def html_doc(rng: random.Random, target_chars: int) -> str:
    body, size = [], 0
    while size < target_chars:
        para = f"<h2>{rng.choice(WORDS).title()}</h2><p>{' '.join(_sentence(rng) for _ in range(5))}</p>"
        if rng.random() < 0.2:
            para += (
                "<table><tr><th>item</th><th>qty</th></tr>"
                + "".join(
                    f"<tr><td>{rng.choice(WORDS)}</td><td>{rng.randint(1, 99)}</td></tr>"
                    for _ in range(5)
                )
                + "</table>"
            )
        body.append(para)
        size += len(para)
    return (
        "<!doctype html><html><head><title>Page</title><script>var t = 1;</script></head><body>"
        "<nav><a href='/'>Home</a></nav><main>"
        + "".join(body)
        + "</main><footer>(c)</footer></body></html>"
    )


def csv_doc(rng: random.Random, target_chars: int) -> str:
    rows = ["region,product,units,price"]
    size = 0
    while size < target_chars:
        row = f"{rng.choice(WORDS)},{rng.choice(WORDS)},{rng.randint(1, 999)},{rng.uniform(1, 500):.2f}"
        rows.append(row)
        size += len(row) + 1
    return "\n".join(rows) + "\n"


def write_corpus(
    root: str, total_bytes: int, seed: int = 7, file_bytes: int = 256 * 1024
) -> dict[str, int]:
    """Write a mixed corpus (md, txt, html, csv, xlsx, pdf) of about ``total_bytes``.

    Returns the number of files per extension. Text-like files are about ``file_bytes``
    each; every 50th file is a small XLSX or PDF.
    """
    import os

    rng = random.Random(seed)
    os.makedirs(root, exist_ok=True)
    written, counts, i = 0, dict[str, int](), 0
    while written < total_bytes:
        i += 1
        kind = ("md", "txt", "html", "csv")[i % 4]
        if i % 50 == 0:
            kind = "xlsx" if i % 100 == 0 else "pdf"
        if kind == "md":
            data = markdown_doc(rng, file_bytes).encode()
        elif kind == "txt":
            data = "\n\n".join(_sentence(rng) for _ in range(file_bytes // 90)).encode()
        elif kind == "html":
            data = html_doc(rng, file_bytes).encode()
        elif kind == "csv":
            data = csv_doc(rng, file_bytes // 2).encode()
        elif kind == "xlsx":
            data = xlsx_bytes(
                {"Data": [["a", "b", "c"], *[[rng.choice(WORDS), j, j * 1.5] for j in range(300)]]}
            )
        else:
            data = pdf_bytes(["\n".join(_sentence(rng) for _ in range(40)) for _ in range(3)])
        sub = os.path.join(root, f"part{i % 16:02d}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"doc{i:06d}.{kind}"), "wb") as fh:
            fh.write(data)
        written += len(data)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


SAMPLE_README = """# Supplier onboarding guide

This guide explains how **Acme Corp** onboards a new supplier.

## Steps

1. Collect the supplier's legal name, tax id and bank details.
2. Run the sanctions and credit checks.
3. Sign the master services agreement.

## Payment terms

Standard terms are net 45 days. Early payment discount: 2% within 10 days.
Contact procurement@acme.example for exceptions.
"""

SAMPLE_NOTES = """Meeting notes - Q3 supplier review

Attendees: finance, procurement, legal.

Decisions:
- Renew the logistics contract with Northwind for 24 months at 3% lower rates.
- Put Globex on a 90-day improvement plan after two late deliveries.

Risks: currency exposure on EUR invoices; single supplier for packaging.
"""

SAMPLE_HTML = """<!doctype html>
<html><head><title>Returns policy</title><script>window.analytics = {id: 42};</script></head>
<body><nav><a href="/">Home</a> | <a href="/help">Help</a></nav>
<main><h1>Returns policy</h1>
<p>Customers may return unused items within <b>30 days</b> of delivery.</p>
<h2>Exceptions</h2>
<ul><li>Custom orders are final.</li><li>Software licences cannot be returned once activated.</li></ul>
<table><tr><th>Item</th><th>Window</th></tr><tr><td>Hardware</td><td>30 days</td></tr>
<tr><td>Accessories</td><td>14 days</td></tr></table></main>
<footer>(c) Acme Corp</footer></body></html>
"""

SAMPLE_CSV = """invoice,supplier,amount_eur,due_date,status
INV-1001,Northwind,12500.00,2026-07-15,paid
INV-1002,Globex,8300.50,2026-07-30,overdue
INV-1003,Initech,450.00,2026-08-05,open
"""


def write_samples(root: str) -> list[str]:
    """Write the small sample set shipped in ``samples/docs`` (one file per type)."""
    import os

    os.makedirs(root, exist_ok=True)
    files: dict[str, bytes] = {
        "supplier_onboarding.md": SAMPLE_README.encode(),
        "q3_meeting_notes.txt": SAMPLE_NOTES.encode(),
        "returns_policy.html": SAMPLE_HTML.encode(),
        "invoices.csv": SAMPLE_CSV.encode(),
        "budget_2026.xlsx": xlsx_bytes(
            {
                "Budget": [
                    ["department", "q1", "q2", "q3", "q4"],
                    ["Finance", 120000, 118000, 121500, 125000],
                    ["Procurement", 86000, 90000, 88500, 92000],
                ],
                "Assumptions": [["item", "value"], ["inflation", "3.1%"], ["EUR/USD", 1.08]],
            }
        ),
        "contract_summary.pdf": pdf_bytes(
            [
                "Master services agreement - summary\nParties: Acme Corp and Northwind Logistics.\n"
                "Term: 24 months from 1 September 2026.",
                "Pricing: 3% below the 2025 rate card.\nTermination: 90 days written notice.\n"
                "Liability cap: 12 months of fees.",
            ]
        ),
    }
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as fh:
            fh.write(data)
    return sorted(files)


if __name__ == "__main__":  # python -m fmf_spark.processing.synthetic samples/docs
    import sys

    print("\n".join(write_samples(sys.argv[1] if len(sys.argv) > 1 else "samples/docs")))
