"""Step rows on Spark: rendering, gathering in chunk order, ``${all.*}`` order, upstream errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.testing import assertDataFrameEqual

from fmf_spark.chains.dry_run import dry_run
from fmf_spark.chains.frames import UPSTREAM_FAILED, step_frame, upstream_error_rows
from fmf_spark.chains.plan import ChainPlan, plan_chain
from fmf_spark.schemas import CHUNKS_SCHEMA, DOCUMENTS_SCHEMA, OUTPUTS_SCHEMA
from tests.chains.helpers import EXTRACT, make_chain, make_config, make_registry


def _doc(doc_id: str, path: str, status: str = "ok", title: str | None = None) -> tuple:
    meta = {"title": title} if title else {}
    err = None if status == "ok" else ("processing.error", "bad pdf", False)
    return (
        "local",
        f"file:///{path}",
        path,
        10,
        None,
        None,
        doc_id,
        "text/markdown",
        f"text of {path}",
        1,
        meta,
        status,
        err,
        None,  # parent_doc_id
        None,  # attachment_name
    )


@pytest.fixture(scope="module")
def corpus(spark: SparkSession) -> tuple[DataFrame, DataFrame]:
    # doc ids sort opposite to paths, so ordering by path is visible
    documents = spark.createDataFrame(
        [
            _doc("d2", "a.md", title="Alpha"),
            _doc("d1", "b.md"),
            _doc("d3", "broken.pdf", status="error"),
            _doc("d4", "empty.md"),  # parsed, but no chunks
        ],
        DOCUMENTS_SCHEMA,
    )
    chunks = spark.createDataFrame(
        [
            # listed out of order on purpose
            ("d1", "c1b", 1, "b-second", 8, 16, 3, {"section": "S2"}),
            ("d2", "c2a", 0, "a-only", 0, 6, 2, {}),
            ("d1", "c1a", 0, "b-first", 0, 8, 3, {"section": "S1"}),
        ],
        CHUNKS_SCHEMA,
    )
    return documents, chunks


def _outputs(spark: SparkSession, step: str, rows: list[tuple]) -> DataFrame:
    """rows: (doc_id, chunk_id, output_text, output_json, status)"""
    data = []
    for doc_id, chunk_id, text, js, status in rows:
        err = None if status == "ok" else ("inference.content_filtered", "refused", False)
        data.append(
            (
                f"r-{step}-{doc_id}-{chunk_id}",
                doc_id,
                chunk_id,
                step,
                "p",
                "1",
                "h",
                "m",
                text,
                js,
                1,
                1,
                0.0,
                1,
                1,
                status,
                err,
            )
        )
    return spark.createDataFrame(data, OUTPUTS_SCHEMA)


def _plan(tmp_path: Path, steps: list[dict]) -> ChainPlan:
    return plan_chain(make_chain(steps), make_config(), make_registry(tmp_path / "prompts"))


def _messages(frame: DataFrame) -> dict[tuple, list[dict]]:
    return {
        (r["doc_id"], r["chunk_id"]): json.loads(r["messages"])
        for r in frame.where("upstream_ok").collect()
    }


def test_chunk_scope_renders_messages_per_chunk(spark, corpus, tmp_path) -> None:
    documents, chunks = corpus
    step = {
        **EXTRACT,
        "inputs": {
            "text": "${chunk.text} [${chunk.metadata.section}]",
            "path": "${doc.path} (${doc.metadata.title})",
        },
    }
    plan = _plan(tmp_path, [step])
    frame = step_frame(plan.steps[0], documents, chunks, {}.__getitem__)
    got = _messages(frame)
    system = {"role": "system", "content": "Extract facts."}
    # a missing metadata key renders as an empty string
    assert got == {
        ("d1", "c1a"): [system, {"role": "user", "content": "From b.md ():\nb-first [S1]"}],
        ("d1", "c1b"): [system, {"role": "user", "content": "From b.md ():\nb-second [S2]"}],
        ("d2", "c2a"): [system, {"role": "user", "content": "From a.md (Alpha):\na-only []"}],
    }


def test_document_scope_gathers_in_chunk_order(spark, corpus, tmp_path) -> None:
    documents, chunks = corpus
    plan = _plan(
        tmp_path,
        [
            EXTRACT,
            {
                "id": "per_doc",
                "prompt": "combine#1",
                "scope": "document",
                "inputs": {"items": "${chunk.text} | ${steps.extract.output_json.entity.name}"},
                "separator": ", ",
            },
        ],
    )
    extract = _outputs(
        spark,
        "extract",
        [
            ("d1", "c1b", "{}", json.dumps({"summary": "s", "entity": {"name": "N2"}}), "ok"),
            ("d1", "c1a", "{}", json.dumps({"summary": "s", "entity": {"name": "N1"}}), "ok"),
            ("d2", "c2a", None, None, "error"),  # failed: left out of the gather
        ],
    )
    frame = step_frame(plan.step("per_doc"), documents, chunks, {"extract": extract}.__getitem__)
    rows = {r["doc_id"]: r for r in frame.collect()}
    # one row per parsed document that has chunks: not the failed one, not the empty one
    assert set(rows) == {"d1", "d2"}
    assert json.loads(rows["d1"]["messages"]) == [
        {"role": "user", "content": "Combine:\nb-first, b-second | N1, N2"}
    ]
    assert rows["d1"]["upstream_ok"] is True
    # d2's only upstream row failed: no successful output, so the row is not called
    assert rows["d2"]["upstream_ok"] is False
    assert "step 'extract' has no successful output" in rows["d2"]["upstream_error"]


def test_all_scope_gathers_in_document_then_chunk_order(spark, corpus, tmp_path) -> None:
    documents, chunks = corpus
    plan = _plan(
        tmp_path,
        [
            EXTRACT,
            {
                "id": "total",
                "prompt": "combine#1",
                "scope": "all",
                "inputs": {"items": "${all.extract.output_text}"},
            },
        ],
    )
    extract = _outputs(
        spark,
        "extract",
        [
            ("d1", "c1b", "b1", None, "ok"),
            ("d2", "c2a", "a0", None, "ok"),
            ("d1", "c1a", "b0", None, "ok"),
        ],
    )
    frame = step_frame(plan.step("total"), documents, chunks, {"extract": extract}.__getitem__)
    [row] = frame.collect()
    # a.md (d2) before b.md (d1), and chunk 0 before chunk 1 inside b.md
    assert (row["doc_id"], row["chunk_id"], row["upstream_ok"]) == (None, None, True)
    assert json.loads(row["messages"])[0]["content"] == "Combine:\na0\n\nb0\n\nb1"


def test_chunk_scope_join_and_upstream_error_rows(spark, corpus, tmp_path) -> None:
    documents, chunks = corpus
    plan = _plan(
        tmp_path,
        [
            EXTRACT,
            {
                "id": "again",
                "prompt": "combine#1",
                "inputs": {"items": "${steps.extract.output_json.summary}"},
            },
        ],
    )
    extract = _outputs(
        spark,
        "extract",
        [
            ("d1", "c1a", "{}", json.dumps({"summary": "first"}), "ok"),
            ("d1", "c1b", None, None, "error"),
            # c2a has no row at all (e.g. an interrupted run): also an upstream failure
        ],
    )
    again = plan.step("again")
    frame = step_frame(again, documents, chunks, {"extract": extract}.__getitem__)
    assert _messages(frame) == {("d1", "c1a"): [{"role": "user", "content": "Combine:\nfirst"}]}
    errors = upstream_error_rows(frame, again)
    # same columns and types as the outputs contract (Spark relaxes nullability on select)
    assert errors.schema.simpleString() == OUTPUTS_SCHEMA.simpleString()
    expected_msg = (
        "${steps.extract.output_json.summary}: step 'extract' has no successful output for this row"
    )
    got = errors.select("doc_id", "chunk_id", "step", "status", "error", "attempts")
    expected = spark.createDataFrame(
        [
            Row(
                doc_id="d1",
                chunk_id="c1b",
                step="again",
                status="error",
                error=Row(code=UPSTREAM_FAILED, message=expected_msg, retryable=True),
                attempts=0,
            ),
            Row(
                doc_id="d2",
                chunk_id="c2a",
                step="again",
                status="error",
                error=Row(code=UPSTREAM_FAILED, message=expected_msg, retryable=True),
                attempts=0,
            ),
        ],
        got.schema,
    )
    assertDataFrameEqual(got, expected)
    # request ids are stable hashes, distinct per row
    ids = [r["request_id"] for r in errors.collect()]
    assert len(set(ids)) == 2 and all(len(i) == 64 for i in ids)


def test_dry_run_counts_calls_tokens_and_cost(spark, corpus, tmp_path) -> None:
    documents, chunks = corpus
    chain = make_chain(
        [
            EXTRACT,
            {
                "id": "per_doc",
                "prompt": "combine#1",
                "scope": "document",
                "inputs": {"items": "${steps.extract.output_json.summary}"},
            },
            {
                "id": "total",
                "prompt": "combine#1",
                "scope": "all",
                "inputs": {"items": "${all.per_doc.output_text}"},
            },
        ]
    )
    result = dry_run(
        spark,
        chain,
        make_config(),
        registry=make_registry(tmp_path / "prompts"),
        documents=documents,
        chunks=chunks,
    )
    assert (result.documents, result.documents_failed, result.chunks) == (4, 1, 3)
    assert [(s.id, s.calls) for s in result.steps] == [("extract", 3), ("per_doc", 2), ("total", 1)]
    assert [s.completion_tokens for s in result.steps] == [3 * 40, 2 * 30, 30]
    for step in result.steps:
        assert step.prompt_tokens > 0
        expected_cost = step.prompt_tokens / 1000 * 0.00015 + step.completion_tokens / 1000 * 0.0006
        assert step.cost_usd == pytest.approx(expected_cost, rel=1e-6)
    # the per-document prompt carries the stand-in summaries, so it is longer than the bare template
    assert result.steps[1].prompt_tokens > 2 * 10


def test_gathers_sort_chunk_index_as_a_number(spark, tmp_path) -> None:
    # 12 chunks: as text, "10" and "11" would sort before "2"
    documents = spark.createDataFrame([_doc("d1", "big.md")], DOCUMENTS_SCHEMA)
    order = [7, 11, 0, 3, 10, 1, 5, 2, 9, 4, 8, 6]
    chunks = spark.createDataFrame(
        [("d1", f"c{i:02d}", i, f"t{i}", 0, 1, 1, {}) for i in order], CHUNKS_SCHEMA
    )
    plan = _plan(
        tmp_path,
        [
            EXTRACT,
            {
                "id": "per_doc",
                "prompt": "combine#1",
                "scope": "document",
                "inputs": {"items": "${chunk.text}"},
                "separator": ",",
            },
            {
                "id": "total",
                "prompt": "combine#1",
                "scope": "all",
                "inputs": {"items": "${all.extract.output_text}"},
                "separator": ",",
            },
        ],
    )
    expected = ",".join(f"t{i}" for i in range(12))
    per_doc = step_frame(plan.step("per_doc"), documents, chunks, {}.__getitem__)
    assert json.loads(per_doc.first()["messages"])[0]["content"] == f"Combine:\n{expected}"
    extract = _outputs(spark, "extract", [("d1", f"c{i:02d}", f"t{i}", None, "ok") for i in order])
    total = step_frame(plan.step("total"), documents, chunks, {"extract": extract}.__getitem__)
    assert json.loads(total.first()["messages"])[0]["content"] == f"Combine:\n{expected}"
