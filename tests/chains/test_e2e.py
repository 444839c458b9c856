"""Acceptance: the sample chain end to end on local documents with the simulator.

The outputs table, ``run.yaml`` and the MLflow run must agree on the counts, and the
dry run must predict exactly the calls the real run makes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pyspark.sql import functions as F

from fmf_spark.chains.model import load_chain
from fmf_spark.cli.app import dry_run, run_chain
from fmf_spark.config import load_config
from fmf_spark.prompts.registry import PromptRegistry
from tests.chains.helpers import ROOT

pytestmark = pytest.mark.slow

SECTION = (
    "Quarterly figures for the {name} unit show steady demand. Revenue rose by {n} percent "
    "while costs stayed flat, and the team hired two analysts. Customers asked for faster "
    "delivery and clearer invoices; both are planned for the next quarter. "
)


def _write_docs(folder: Path) -> None:
    folder.mkdir()
    # long enough for several chunks at 256 tokens, so chunk order matters
    body = "\n\n".join(
        f"## Part {i}\n\n" + SECTION.format(name=f"unit {i}", n=i) * 4 for i in range(1, 6)
    )
    (folder / "annual.md").write_text("# Annual report\n\n" + body, encoding="utf-8")
    (folder / "memo.md").write_text("# Memo\n\nThe office moves on Monday.\n", encoding="utf-8")
    (folder / "notes.txt").write_text("Supplier list to be reviewed in March.\n", encoding="utf-8")


@pytest.fixture(scope="module")
def e2e(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    _write_docs(tmp / "docs")
    cfg = load_config(
        ROOT / "conf" / "fmf.yaml",
        profile="local",
        environ={},
        overrides=[
            f"connectors.samples.root={tmp / 'docs'}",
            f"artefacts.root={tmp / 'artefacts'}",
            f"exporters.outputs_delta.path={tmp / 'exports' / 'outputs'}",
            f"observability.mlflow.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
            f"prompts.dir={ROOT / 'prompts'}",
            "inference.providers.simulator.server.latency_ms=1",
        ],
    )
    chain = load_chain(ROOT / "chains" / "sample.yaml")
    registry = PromptRegistry(ROOT / "prompts")
    planned = dry_run(spark, chain, cfg, registry=registry)
    result = run_chain(spark, chain, cfg, registry=registry)
    # with every answer now in the request cache, a rerun would call nothing
    replanned = dry_run(spark, chain, cfg, registry=registry)
    return cfg, planned, result, replanned


def test_dry_run_predicts_the_real_calls(e2e) -> None:
    _, planned, result, replanned = e2e
    assert [(s.id, s.calls) for s in planned.steps] == [(s.id, s.calls) for s in result.steps]
    assert (planned.documents, planned.chunks) == (result.documents, result.chunks)
    # one call per chunk, one per document, one for the run
    assert [s.calls for s in result.steps] == [result.chunks, result.documents, 1]
    assert result.chunks > result.documents == 3
    # after the run, the cache answers every request: the dry run follows the cached
    # answers through the dependent steps and predicts no call at all
    assert [(s.calls, s.cached) for s in replanned.steps] == [(0, s.calls) for s in result.steps]


def test_outputs_run_yaml_and_mlflow_agree(spark, e2e) -> None:
    cfg, _, result, _ = e2e
    outputs = spark.read.format("delta").load(result.outputs_path)
    per_step = {
        r["step"]: (r["rows"], r["ok"], r["p"], r["c"])
        for r in outputs.groupBy("step")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.sum(F.when(F.col("status") == "ok", 1).otherwise(0)).alias("ok"),
            F.sum("prompt_tokens").alias("p"),
            F.sum("completion_tokens").alias("c"),
        )
        .collect()
    }
    assert per_step == {
        s.id: (s.rows, s.ok, s.prompt_tokens, s.completion_tokens) for s in result.steps
    }
    assert all(s.failed == 0 and s.ok == s.rows for s in result.steps)
    # the digest's prompt holds each document's brief, in path order
    briefs = {
        r["doc_id"]: r["output_text"]
        for r in outputs.where("step = 'brief'").select("doc_id", "output_text").collect()
    }
    docs = spark.read.format("delta").load(f"{result.run_dir}/documents")
    ordered = [briefs[r["doc_id"]] for r in docs.orderBy("path").collect()]
    assert len(ordered) == 3

    record = yaml.safe_load(Path(result.run_yaml).read_text())
    metrics = record["metrics"]
    assert record["status"] == "succeeded"
    assert metrics["documents"] == result.documents == 3
    assert metrics["chunks"] == result.chunks
    assert metrics["rows"] == outputs.count()
    assert metrics["calls"] == sum(s.calls for s in result.steps)
    assert metrics["prompt_tokens"] == sum(v[2] for v in per_step.values())
    assert metrics["completion_tokens"] == sum(v[3] for v in per_step.values())
    assert metrics["failures"] == 0
    assert {s: m["calls"] for s, m in metrics["steps"].items()} == {
        s.id: s.calls for s in result.steps
    }
    assert record["outputs"]["outputs"] == result.outputs_path
    assert [e["sink"] for e in record["exports"]] == ["outputs_delta"]
    assert record["exports"][0]["rows_written"] == outputs.count()
    registry = PromptRegistry(ROOT / "prompts")
    assert [
        (p["step"], p["id"], p["version"], p["hash"], p["registered"]) for p in record["prompts"]
    ] == [
        ("summarize", "summarize_chunk", "1", registry.get("summarize_chunk#1").content_hash, True),
        ("brief", "doc_brief", "1", registry.get("doc_brief#1").content_hash, True),
        ("digest", "corpus_digest", "1", registry.get("corpus_digest#1").content_hash, True),
    ]
    assert set(record["timings_s"]) == {
        "process",
        "step.summarize",
        "step.brief",
        "step.digest",
        "commit",
        "export.outputs_delta",
    }

    import mlflow

    uri = cfg.observability.mlflow.tracking_uri
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(record["mlflow"]["run_id"])
    assert run.info.status == "FINISHED"
    for key in ("documents", "chunks", "calls", "rows", "prompt_tokens", "completion_tokens"):
        assert run.data.metrics[key] == float(metrics[key]), key
    assert run.data.metrics["exports.outputs_delta.rows_written"] == float(outputs.count())
    for prompt in record["prompts"]:
        assert run.data.params[f"step.{prompt['step']}.prompt"] == f"{prompt['id']}#1"
        assert run.data.params[f"step.{prompt['step']}.prompt_hash"] == prompt["hash"]
    linked = yaml.safe_load(run.data.tags["mlflow.linkedPrompts"])
    assert sorted(p["name"] for p in linked) == ["corpus_digest", "doc_brief", "summarize_chunk"]
    # the exported table holds the run's rows
    exported = spark.read.format("delta").load(cfg.exporters["outputs_delta"].path)
    assert exported.count() == outputs.count()


def test_dry_run_counts_the_answers_a_killed_run_left_in_progress_files(
    spark, e2e, tmp_path: Path
) -> None:
    """A killed run leaves answers in progress files, not yet in the Delta cache: the
    rerun will not call them again, and the dry run says so."""
    from fmf_spark.chains.plan import plan_chain
    from fmf_spark.chains.runner import inference_step
    from fmf_spark.inference.cache import cache_location
    from fmf_spark.inference.progress_store import ProgressSpec, TaskProgress, progress_location
    from fmf_spark.inference.runner import request_prefix
    from tests.inference.conftest import progress_row

    cfg, planned, result, _ = e2e
    chain = load_chain(ROOT / "chains" / "sample.yaml")
    summarize = plan_chain(chain, cfg, PromptRegistry(ROOT / "prompts")).steps[0]
    answered = [
        r["request_id"]
        for r in spark.read.format("delta")
        .load(str(result.outputs_path))
        .where((F.col("step") == "summarize") & (F.col("status") == "ok"))
        .select("request_id")
        .distinct()
        .collect()
    ][:2]
    root = tmp_path / "artefacts"  # no Delta cache here: only the progress files
    prefix = request_prefix(inference_step(summarize), summarize.model or "")
    location = progress_location(cache_location(str(root)), prefix)
    task = TaskProgress(ProgressSpec(location, "w1", 1, 60), 0, 0, 1)
    for rid in answered:
        task.record(progress_row(rid))
    task.close()

    again = dry_run(spark, chain, cfg, artefacts_root=str(root))
    first, calls = again.steps[0], planned.steps[0].calls
    assert (first.calls, first.cached) == (calls - len(answered), len(answered))
