"""A step that stops the chain still leaves what the steps before it paid for.

A chain run saves each step's call timings after its calls, and folds the steps' new
answers into the cache once, after the last step (``ChainRun.commit``); when a step
stops the run, that fold still happens for the steps that ran, so the rerun calls only
the failed step, and the run report has the calls that were made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pyspark.sql import functions as F

from fmf_spark.cli import main
from fmf_spark.simulator import FaultRule, SimulatorServer

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def _two_step_run(tmp_path: Path, sim: SimulatorServer) -> tuple[list[str], Path]:
    """``fmf run`` argv for the sample chain's first two steps over two documents (the
    briefs stop the run on a failure), and its artefacts folder."""
    data = yaml.safe_load((ROOT / "conf" / "fmf.yaml").read_text())
    data["artefacts"] = {"root": str(tmp_path / "artefacts")}
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("supplier_onboarding.md", "q3_meeting_notes.txt"):
        (docs / name).write_bytes((ROOT / "samples" / "docs" / name).read_bytes())
    data["connectors"]["samples"]["root"] = str(docs)
    data["prompts"] = {"dir": str(ROOT / "prompts"), "mlflow_sync": False}
    data["observability"]["mlflow"] = {"enabled": False}
    data["inference"]["providers"]["local"] = {
        "type": "simulator",
        "base_url": sim.url,
        "model": "sim-gpt-4o-mini",
    }
    conf = tmp_path / "fmf.yaml"
    conf.write_text(yaml.safe_dump(data))
    chain = yaml.safe_load((ROOT / "chains" / "sample.yaml").read_text())
    for step in chain["steps"]:
        step["params"] = {**step.get("params", {}), "provider": "local"}
    chain["steps"] = chain["steps"][:2]  # the chunk summaries, then the document briefs
    chain["steps"][1]["on_error"] = "fail"  # one refused brief stops the run
    chain["outputs"] = []
    chain_path = tmp_path / "chain.yaml"
    chain_path.write_text(yaml.safe_dump(chain))
    argv = ["--config", str(conf), "run", "--chain", str(chain_path), "--quiet"]
    artefacts = tmp_path / "artefacts"
    return argv, artefacts


def _briefs_refused(
    sim: SimulatorServer, argv: list[str], artefacts: Path, fault: str
) -> tuple[Path, dict[str, Any]]:
    """Run it with every brief refused by ``fault``: it must exit 2; its ``run.yaml``
    (path, content)."""
    sim.reset()
    sim.set_faults([FaultRule(kind=fault, match="three-sentence brief")])
    assert main(argv) == 2
    [record] = artefacts.glob("*/run.yaml")
    return record, yaml.safe_load(record.read_text())


def test_a_failed_step_commits_what_the_steps_before_it_paid_for(
    spark, tmp_path: Path, sim: SimulatorServer
) -> None:
    argv, artefacts = _two_step_run(tmp_path, sim)
    record, first = _briefs_refused(sim, argv, artefacts, "content_filter")
    assert (first["status"], first["error"]["code"]) == ("failed", "chain.step_failed")
    steps = first["metrics"]["steps"]
    paid, refused = steps["summarize"]["calls"], steps["brief"]["calls"]
    assert paid > 0 and refused == steps["brief"]["failed"] == 2  # one per document
    assert sim.stats()["requests"] == paid + refused

    # the steps that ran are in the cache, their progress files folded away
    cache = spark.read.format("delta").load(str(artefacts / "_cache" / "outputs"))
    counts = {r["step"]: r["count"] for r in cache.groupBy("step").count().collect()}
    assert counts == {"summarize": paid}
    assert _files(artefacts / "_cache" / "_progress") == []
    # and every call made, the refused one too, is in the run's requests table
    requests = spark.read.format("delta").load(str(record.parent / "requests"))
    assert requests.count() == paid + refused
    assert requests.where(F.col("error_code").isNotNull()).count() == refused

    # the rerun calls only the step that failed
    sim.set_faults([])
    sim.reset()
    assert main(argv) == 0
    assert sim.stats()["requests"] == refused


def test_an_exhausted_quota_stops_the_run_with_its_code_after_saving_the_outputs(
    spark, tmp_path: Path, sim: SimulatorServer
) -> None:
    argv, artefacts = _two_step_run(tmp_path, sim)
    record, run = _briefs_refused(sim, argv, artefacts, "quota_exhausted")
    assert (run["status"], run["error"]["code"]) == ("failed", "inference.quota_exhausted")
    outputs = spark.read.format("delta").load(str(record.parent / "outputs"))
    codes = {
        (r["step"], r["code"]): r["count"]
        for r in outputs.groupBy("step", F.col("error.code").alias("code")).count().collect()
    }
    paid = run["metrics"]["steps"]["summarize"]["calls"]
    assert codes == {("summarize", None): paid, ("brief", "inference.quota_exhausted"): 2}
