"""`fmf process` over a folder of every format enterprises keep: counts by type, no
``unsupported_type``, child documents (attachments, archive members) as their own rows
linked by ``parent_doc_id``, their chunks under their own ``doc_id``; the fused pass of
``process`` and the public transforms give the same tables."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

from fmf_spark.cli import main
from fmf_spark.config.models import FmfConfig
from fmf_spark.connectors import get_connector
from fmf_spark.processing import chunk_documents, parse_documents
from fmf_spark.processing.synthetic import pdf_bytes, xlsx_bytes
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

has_tesseract = shutil.which("tesseract") is not None
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mixed")
    review = docx_bytes(paragraphs=["Northwind renewed for **24 months**."])
    files = {
        "word/review.docx": review,
        "word/deck.pptx": pptx_bytes([{"title": "Q3", "bullets": ["up"], "notes": "say it"}]),
        "mail/review.eml": eml_bytes(
            attachments=[
                ("review.docx", review, DOCX),
                ("summary.pdf", pdf_bytes(["Summary page"]), "application/pdf"),
            ]
        ),
        "mail/outlook.msg": msg_bytes("Hi", "Body text", attachments=[("a.txt", b"note")]),
        "archive/bundle.zip": zip_bytes(
            {
                "readme.md": b"# Readme",
                "inner.zip": zip_bytes({"deep.csv": b"a,b\n1,2\n"}),
                "../evil.txt": b"x",
            }
        ),
        "odf/plan.odt": odf_bytes("text", "<text:h text:outline-level='1'>Plan</text:h>"),
        "odf/book.ods": odf_bytes(
            "spreadsheet",
            "<table:table table:name='S'><table:table-row><table:table-cell>"
            "<text:p>k</text:p></table:table-cell></table:table-row></table:table>",
        ),
        "odf/deck.odp": odf_bytes(
            "presentation",
            "<draw:page><draw:frame presentation:class='title'><draw:text-box>"
            "<text:p>T</text:p></draw:text-box></draw:frame></draw:page>",
        ),
        "text/letter.rtf": rb"{\rtf1\ansi Hello\par}",
        "text/book.epub": epub_bytes("B", [("One", "<p>x</p>")]),
        "data/org.json": b'{"a": 1}',
        "data/events.ndjson": b'{"a": 1}\n{"a": 2}\n',
        "data/orders.xml": b"<orders><order>1</order></orders>",
        "data/table.tsv": b"a\tb\n1\t2\n",
        "data/sheet.xlsx": xlsx_bytes({"S": [["a", "b"], [1, 2]]}),
        "text/guide.rst": b"Guide\n=====\n",
        "text/notes.org": b"* Notes\n",
        "legacy/old.doc": ole_bytes({"WordDocument": b"w" * 600}),
        "legacy/locked.docx": encrypt_office(review),
    }
    if has_tesseract:
        files["scans/scan.tiff"] = tiff_bytes(["Scanned page"])
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _config(root: Path, tmp: Path) -> FmfConfig:
    return FmfConfig.model_validate(
        {
            "artefacts": {"root": str(tmp / "artefacts")},
            "connectors": {"docs": {"type": "local", "root": str(root)}},
            "processing": {"max_depth": 2},
        }
    )


def test_fmf_process_mixed_folder(spark, mixed: Path, tmp_path: Path, capsys) -> None:
    config = tmp_path / "fmf.yaml"
    config.write_text(
        f"artefacts: {{root: {tmp_path / 'artefacts'}}}\n"
        f"connectors:\n  docs: {{type: local, root: {mixed}}}\n"
        "processing: {max_depth: 2}\n"
    )
    run_dir = tmp_path / "run"
    code = main(
        ["process", "--connector", "docs", "--config", str(config), "--run-dir", str(run_dir)]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "unsupported_type" not in out
    docs = spark.read.format("delta").load(str(run_dir / "documents"))
    counts: dict[tuple[str, str], int] = {}
    for row in docs.groupBy("content_type", "status").count().collect():
        counts[(row["content_type"], row["status"])] = row["count"]
    expected = {
        (DOCX, "ok"): 2,  # the file and the e-mail's attachment
        (PPTX, "ok"): 1,
        ("message/rfc822", "ok"): 1,
        ("application/vnd.ms-outlook", "ok"): 1,
        ("application/zip", "ok"): 2,
        ("application/vnd.oasis.opendocument.text", "ok"): 1,
        ("application/vnd.oasis.opendocument.spreadsheet", "ok"): 1,
        ("application/vnd.oasis.opendocument.presentation", "ok"): 1,
        ("application/rtf", "ok"): 1,
        ("application/epub+zip", "ok"): 1,
        ("application/json", "ok"): 1,
        ("application/x-ndjson", "ok"): 1,
        ("application/xml", "ok"): 1,
        ("text/tab-separated-values", "ok"): 1,
        (XLSX, "ok"): 1,
        ("text/x-rst", "ok"): 1,
        ("text/x-org", "ok"): 1,
        ("text/markdown", "ok"): 1,
        ("text/csv", "ok"): 1,
        ("text/plain", "ok"): 1,
        ("application/pdf", "ok"): 1,
        ("application/msword", "error"): 1,
        (DOCX, "error"): 1,
    }
    if has_tesseract:
        expected[("image/tiff", "ok")] = 1
    unsafe = docs.where("error.code = 'processing.unsafe_path'").count()
    assert {k: v for k, v in counts.items() if k[0] is not None} == expected
    assert counts.get((None, "error")) == unsafe == 1
    # each child row names its parent's doc_id and its name there
    by_path = {r["path"]: r for r in docs.collect()}
    path_of = {r["doc_id"]: path for path, r in by_path.items()}
    children = {
        (r["path"], path_of[r["parent_doc_id"]], r["attachment_name"])
        for r in docs.where("parent_doc_id is not null").collect()
    }
    assert children == {
        ("mail/review.eml!/review.docx", "mail/review.eml", "review.docx"),
        ("mail/review.eml!/summary.pdf", "mail/review.eml", "summary.pdf"),
        ("mail/outlook.msg!/a.txt", "mail/outlook.msg", "a.txt"),
        ("archive/bundle.zip!/readme.md", "archive/bundle.zip", "readme.md"),
        ("archive/bundle.zip!/inner.zip", "archive/bundle.zip", "inner.zip"),
        ("archive/bundle.zip!/inner.zip!/deep.csv", "archive/bundle.zip!/inner.zip", "deep.csv"),
        ("archive/bundle.zip!/../evil.txt", "archive/bundle.zip", "../evil.txt"),
    }
    assert by_path["mail/review.eml!/summary.pdf"]["text"] == "Summary page"
    assert by_path["archive/bundle.zip!/inner.zip!/deep.csv"]["text"] == (
        "| a | b |\n|---|---|\n| 1 | 2 |"
    )
    # the chunks of child documents carry their own doc_id
    chunks = spark.read.format("delta").load(str(run_dir / "chunks"))
    ok_ids = {r["doc_id"] for r in docs.where("status = 'ok'").collect()}
    assert {r["doc_id"] for r in chunks.select("doc_id").distinct().collect()} == ok_ids
    assert by_path["mail/review.eml!/summary.pdf"]["doc_id"] in {
        r["doc_id"] for r in chunks.where("text = 'Summary page'").collect()
    }


def test_process_and_public_transforms_expand_children_alike(
    spark, mixed: Path, tmp_path: Path
) -> None:
    from fmf_spark.processing import process

    cfg = _config(mixed, tmp_path)
    selector = ["mail/*", "archive/*"]
    result = process(spark, cfg, "docs", selector, str(tmp_path / "fused"))
    files = get_connector("docs", cfg).to_dataframe(spark, selector)
    docs = parse_documents(files, cfg.processing)
    assertDataFrameEqual(spark.read.format("delta").load(result.documents_path), docs)
    assertDataFrameEqual(
        spark.read.format("delta").load(result.chunks_path),
        chunk_documents(docs, cfg.processing.chunking),
    )
    assert result.documents == 3 + 7  # three files, seven child documents
