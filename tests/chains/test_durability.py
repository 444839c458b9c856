"""Acceptance: a run killed for real in the middle of a step pays again only for what
never got an answer (``benchmarks/durability.py`` drives the kill and the rerun)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from fmf_spark.inference.cache import cache_location, read_cache
from tests.chains.helpers import ROOT

# two whole `fmf run`s (each its own JVM): on a busy 2-core machine they outlast the
# suite's default hang guard
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

DOCUMENTS = 90


def _benchmark():
    spec = importlib.util.spec_from_file_location(
        "durability", ROOT / "benchmarks" / "durability.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_killed_run_reruns_only_what_had_no_answer(spark: SparkSession, tmp_path: Path) -> None:
    # the default settings; the kill comes after 1 s without an answer (the simulator
    # holds new calls back with 429s), so every answer the simulator sent had reached
    # its task: only durable progress can lose one. (A kill in the quota's own pauses,
    # 0.3 s, once came before a task on a busy machine had recorded an answer sent to
    # it; pauses of 0.6 s never came.)
    figures = _benchmark().kill_and_rerun(
        tmp_path, documents=DOCUMENTS, rpm=300, settings=[], latency_ms=100, quiet_s=1.0
    )
    print(figures)
    # counted by the simulator: the rerun pays only for requests without an answer at
    # the kill, and only those in flight at the kill are answered twice
    unanswered = DOCUMENTS - figures["answered_at_kill"]
    assert 0 < figures["rerun_paid"] <= unanswered, figures
    assert figures["paid_twice"] <= figures["in_flight_at_kill"], figures

    # the rerun's outputs hold every document once, each with its own request, answered
    artefacts = Path(figures["artefacts"])
    runs = artefacts.glob("*/outputs/_delta_log")
    (run_dir,) = [p.parent.parent for p in runs if not p.parent.parent.name.startswith("_")]
    outputs = spark.read.format("delta").load(str(run_dir / "outputs"))
    documents = spark.read.format("delta").load(str(run_dir / "documents"))
    assert_df_equality(
        outputs.select("doc_id", "status"),
        documents.select("doc_id", F.lit("ok").alias("status")),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert outputs.select("request_id").distinct().count() == DOCUMENTS
    # and the request cache, with the killed run's progress folded in, holds each
    # answer once: the same the outputs carry
    cached = read_cache(spark, cache_location(str(artefacts)))
    assert cached is not None
    assert_df_equality(
        cached.select("request_id", "output_text"),
        outputs.select("request_id", "output_text"),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert not [p for p in (artefacts / "_cache" / "_progress").glob("*/*") if p.is_file()]
