"""parse_documents / chunk_documents on Spark, process() to Delta, and `fmf process`."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from fmf_spark.cli import main
from fmf_spark.config.models import FmfConfig
from fmf_spark.config.processing import ChunkingConfig
from fmf_spark.connectors import get_connector
from fmf_spark.processing import (
    chunk_documents,
    chunk_id_for,
    chunk_text,
    parse_documents,
    parse_file,
    process,
)
from fmf_spark.processing.synthetic import (
    encrypted_pdf_bytes,
    parquet_bytes,
    pdf_bytes,
    text_image,
    write_samples,
    zip_bomb_xlsx,
)
from fmf_spark.schemas import CHUNKS_SCHEMA, DOCUMENTS_SCHEMA

has_tesseract = shutil.which("tesseract") is not None


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every supported type, plus bad inputs and a file over the connector's limit."""
    root = tmp_path_factory.mktemp("docs")
    write_samples(str(root))  # md, txt, html, csv, xlsx, pdf
    (root / "bad").mkdir()
    (root / "bad" / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type")
    (root / "bad" / "locked.pdf").write_bytes(encrypted_pdf_bytes("secret"))
    (root / "bad" / "bomb.xlsx").write_bytes(zip_bomb_xlsx(5))
    (root / "bad" / "junk.txt").write_bytes(os.urandom(2048))
    (root / "bad" / "empty.md").write_bytes(b"")
    (root / "bad" / "huge.txt").write_bytes(b"a " * 150_000)  # over the 200 kB limit below
    (root / "legacy.txt").write_bytes("Prix: 5 € – café".encode("cp1252"))
    (root / "table.parquet").write_bytes(parquet_bytes({"id": [1, 2], "name": ["a", "b"]}))
    (root / "scan.png").write_bytes(text_image("Invoice total 4521")[0])
    (root / "report_two_pages.pdf").write_bytes(pdf_bytes(["First page", "Second page"]))
    return root


def _config(root: Path, tmp: Path) -> FmfConfig:
    return FmfConfig.model_validate(
        {
            "artefacts": {"root": str(tmp / "artefacts")},
            "connectors": {"docs": {"type": "local", "root": str(root), "max_file_bytes": 200_000}},
            "processing": {
                "chunking": {"strategy": "markdown", "max_tokens": 64, "overlap_tokens": 8}
            },
        }
    )


def test_parse_documents_matches_the_plain_function(spark, folder: Path, tmp_path: Path) -> None:
    cfg = _config(folder, tmp_path)
    files = get_connector("docs", cfg).to_dataframe(spark, ["*.md", "*.csv", "bad/*"])
    docs = parse_documents(files, cfg.processing)
    assert docs.schema == DOCUMENTS_SCHEMA
    expected = []
    for rec in files.collect():
        base = {k: rec[k] for k in ("source", "uri", "path", "size", "modified", "etag")}
        if rec["status"] != "ok":
            expected.append(
                Row(
                    **base,
                    doc_id=hashlib.sha256(f"uri:{rec['uri']}".encode()).hexdigest(),
                    content_type=None,
                    text=None,
                    pages=None,
                    metadata={},
                    status="error",
                    error=rec["error"],
                    parent_doc_id=None,
                    attachment_name=None,
                )
            )
            continue
        d = parse_file(rec["content"], rec["path"], cfg.processing, rec["uri"])
        expected.append(
            Row(
                **base,
                doc_id=d.doc_id,
                content_type=d.content_type,
                text=d.text,
                pages=d.pages,
                metadata=d.metadata,
                status=d.status,
                error=None if d.error is None else Row(**d.error),
                parent_doc_id=None,
                attachment_name=None,
            )
        )
    assertDataFrameEqual(docs, spark.createDataFrame(expected, DOCUMENTS_SCHEMA))
    codes = {r["path"]: r["error"]["code"] for r in docs.where("status = 'error'").collect()}
    assert codes == {
        "bad/corrupt.pdf": "processing.corrupt",
        "bad/locked.pdf": "processing.encrypted",
        "bad/bomb.xlsx": "processing.zip_bomb",
        "bad/junk.txt": "processing.binary_content",
        "bad/empty.md": "processing.empty",
        "bad/huge.txt": "connector.file_too_large",
    }


def test_chunk_documents_matches_the_plain_function(spark) -> None:
    text = "# T\n\n" + "\n\n".join(f"Paragraph {i} " + "word " * 30 for i in range(12))
    docs = spark.createDataFrame(
        [
            ("s", "u1", "a.md", 1, None, None, "d1", "text/markdown", text, None, {}, "ok", None,
             None, None),
            ("s", "u2", "b.pdf", 1, None, None, "d2", "application/pdf", "p1\n\np2", 2,
             {"page_starts": "0,4"}, "ok", None, None, None),
            ("s", "u3", "c.pdf", 1, None, None, "d3", "application/pdf", None, None, {}, "error",
             ("processing.corrupt", "bad", False), None, None),
        ],
        DOCUMENTS_SCHEMA,
    )  # fmt: skip
    cfg = ChunkingConfig(strategy="page", max_tokens=40, overlap_tokens=5)
    chunks = chunk_documents(docs, cfg)
    assert chunks.schema == CHUNKS_SCHEMA
    expected = []
    for doc_id, path, ctype, body, starts in [
        ("d1", "a.md", "text/markdown", text, None),
        ("d2", "b.pdf", "application/pdf", "p1\n\np2", [0, 4]),
    ]:
        for c in chunk_text(doc_id, body, cfg, starts, {"path": path, "content_type": ctype}):
            expected.append(
                (c.doc_id, c.chunk_id, c.chunk_index, c.text, c.char_start, c.char_end,
                 c.token_count, c.metadata)
            )  # fmt: skip
    assertDataFrameEqual(chunks, spark.createDataFrame(expected, CHUNKS_SCHEMA))
    pages = {(r["text"], r["metadata"]["page"]) for r in chunks.where("doc_id = 'd2'").collect()}
    assert pages == {("p1", "1"), ("p2", "2")}


def test_process_writes_delta_tables_and_counts(spark, folder: Path, tmp_path: Path) -> None:
    cfg = _config(folder, tmp_path)
    run_dir = str(tmp_path / "artefacts" / "run-1")
    result = process(spark, cfg, "docs", None, run_dir)
    docs = spark.read.format("delta").load(result.documents_path)
    chunks = spark.read.format("delta").load(result.chunks_path)
    assert docs.count() == result.documents == len([p for p in folder.rglob("*") if p.is_file()])
    assert chunks.count() == result.chunks
    ok_types = {t for (t, s) in result.by_type_status if s == "ok"}
    assert ok_types >= {
        "text/markdown",
        "text/plain",
        "text/html",
        "text/csv",
        "application/pdf",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.apache.parquet",
    }
    if has_tesseract:
        assert ("image/png", "ok") in result.by_type_status
    assert result.errors == {
        "processing.corrupt": 1,
        "processing.encrypted": 1,
        "processing.zip_bomb": 1,
        "processing.binary_content": 1,
        "processing.empty": 1,
        "connector.file_too_large": 1,
    }
    # every ok document has chunks, each within budget; a rerun gives the same chunk ids
    ok_ids = {r["doc_id"] for r in docs.where("status = 'ok'").select("doc_id").collect()}
    assert {r["doc_id"] for r in chunks.select("doc_id").distinct().collect()} == ok_ids
    assert chunks.where("token_count > 64").count() == 0
    # chunk ids are content addresses: the same input gives the same ids on a rerun
    for r in chunks.select("doc_id", "chunk_id", "char_start", "char_end").collect():
        assert r["chunk_id"] == chunk_id_for(r["doc_id"], r["char_start"], r["char_end"])
    legacy = docs.where("path = 'legacy.txt'").first()
    assert legacy is not None and legacy["text"] == "Prix: 5 € – café"


def test_fmf_process_cli_prints_counts(spark, folder: Path, tmp_path: Path, capsys) -> None:
    config = tmp_path / "fmf.yaml"
    config.write_text(
        f"artefacts: {{root: {tmp_path / 'artefacts'}}}\n"
        f"connectors:\n  docs: {{type: local, root: {folder}}}\n"
    )
    code = main(["process", "--connector", "docs", "--select", "**/*.md", "--config", str(config)])
    out = capsys.readouterr().out
    assert code == 0
    assert "text/markdown" in out and "ok" in out
    assert "processing.empty: 1" in out
    assert "2 documents (1 ok)" in out
    code = main(["connect", "ls", "docs", "--select", "*.csv", "--config", str(config)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].startswith("invoices.csv\t171\t") and out[-1] == "1 files, 171 B"


def test_process_single_pass_equals_the_public_transforms(
    spark, folder: Path, tmp_path: Path
) -> None:
    """process() reads, parses and chunks in one fused pass; its two tables must equal
    what parse_documents -> chunk_documents give on the same files."""
    cfg = _config(folder, tmp_path)
    result = process(spark, cfg, "docs", None, str(tmp_path / "artefacts" / "fused"))
    files = get_connector("docs", cfg).to_dataframe(spark)
    docs = parse_documents(files, cfg.processing)
    chunks = chunk_documents(docs, cfg.processing.chunking)
    assertDataFrameEqual(spark.read.format("delta").load(result.documents_path), docs)
    assertDataFrameEqual(spark.read.format("delta").load(result.chunks_path), chunks)


def test_the_parse_cache_parses_only_new_changed_or_failed_files(spark, tmp_path: Path) -> None:
    """process() with a parse cache: a rerun reads and parses only the files that are
    new, changed (size, modification time) or failed last time; both tables equal a
    parse of every file."""
    from pyspark.sql import functions as F

    root = tmp_path / "docs"
    root.mkdir()
    for name in ("a", "b", "c"):
        (root / f"{name}.md").write_text(f"# {name}\n\nThe {name} note.\n", encoding="utf-8")
    (root / "empty.md").write_bytes(b"")  # a document that fails: tried again each time
    cfg = _config(root, tmp_path)
    cache = str(tmp_path / "artefacts" / "_cache" / "processed")

    def tables(run: str, cached: bool) -> tuple[object, object]:
        result = process(
            spark, cfg, "docs", None, str(tmp_path / "artefacts" / run),
            cache_path=cache if cached else None,
        )  # fmt: skip
        load = spark.read.format("delta").load
        return load(result.documents_path), load(result.chunks_path)

    def parses() -> dict[str, int]:
        """File name -> how many parses of it the cache holds."""
        table = spark.read.format("delta").load(cache).where(F.col("kind") == "document")
        counts = table.groupBy("path").agg(F.countDistinct("parse_id").alias("n")).collect()
        return {Path(r["path"]).name: r["n"] for r in counts}

    for cached, plain in zip(tables("r1", True), tables("plain1", False), strict=True):
        assertDataFrameEqual(cached, plain)
    assert parses() == {"a.md": 1, "b.md": 1, "c.md": 1, "empty.md": 1}

    (root / "b.md").write_text("# b\n\nThe b note, longer now.\n", encoding="utf-8")
    (root / "d.md").write_text("# d\n\nA new note.\n", encoding="utf-8")
    for cached, plain in zip(tables("r2", True), tables("plain2", False), strict=True):
        assertDataFrameEqual(cached, plain)
    assert parses() == {"a.md": 1, "b.md": 2, "c.md": 1, "empty.md": 2, "d.md": 1}
