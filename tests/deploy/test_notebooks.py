"""Every notebook runs top to bottom under local pyspark, from the layout a deploy leaves.

``databricks bundle deploy`` syncs the bundle's files to ``<root>/files`` and uploads the
wheel it built to ``<root>/artifacts/.internal``; a notebook runs with its own folder as
working directory. The test rebuilds that layout in a temporary folder (with the wheel
built by the bundle's artifact command), runs the notebook there with the test
session's ``spark`` and the simulator, and compares the outputs table it shows with the
one the job's entry point (``fmf-job``) writes for the same chain and documents.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from fmf_spark.errors import FmfError
from fmf_spark.job import main as job_main
from tests.deploy.bundle import ROOT
from tests.deploy.notebook import NotebookRun, parse_notebook, run_notebook

pytestmark = pytest.mark.slow

NOTEBOOK = "notebooks/run_chain.py"
#: the synced files a notebook reads (a deploy syncs the whole repository)
SYNCED = ("conf", "chains", "prompts", "requirements", "notebooks")
#: wall-clock columns: the only ones two runs of the same chain may differ in
TIMING = {"latency_ms"}

DOCS = {
    "memo.md": "# Memo\n\nThe office moves to the new building on Monday. Bring your badge.\n",
    "notes.txt": "Supplier list to be reviewed in March; two contracts end in April.\n",
}


def test_every_notebook_is_a_source_notebook_run_by_a_test() -> None:
    notebooks = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").glob("*.py"))
    assert notebooks == [NOTEBOOK]  # a new notebook gets its own run below
    kinds = [c.kind for c in parse_notebook(ROOT / NOTEBOOK)]
    assert kinds[0] == "md" and kinds.count("pip") == 1
    assert set(kinds) == {"md", "pip", "python"}


def _deploy(root: Path, wheel: Path | None) -> Path:
    """The workspace folder of a deployed bundle; returns its ``files`` folder."""
    files = root / "files"
    for name in SYNCED:
        shutil.copytree(ROOT / name, files / name)
    if wheel is not None:
        internal = root / "artifacts" / ".internal"
        internal.mkdir(parents=True)
        shutil.copy2(wheel, internal / wheel.name)
    return files


@dataclass
class Runs:
    files: Path
    wheel: Path
    notebook: NotebookRun
    widgets: dict[str, str]
    cli_outputs: str
    cli_run_yaml: Path


def _overrides(tmp: Path, name: str, docs: Path) -> list[str]:
    return [
        f"connectors.samples.root={docs}",
        f"artefacts.root={tmp / name / 'artefacts'}",
        f"exporters.outputs_delta.path={tmp / name / 'exports'}",
        f"observability.mlflow.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
        "inference.providers.simulator.server.latency_ms=1",
    ]


@pytest.fixture(scope="module")
def runs(spark, bundle_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    tmp = tmp_path_factory.mktemp("notebook")
    files = _deploy(tmp / "bundle", bundle_wheel)
    docs = tmp / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")

    widgets = {"profile": "local", "overrides": "; ".join(_overrides(tmp, "notebook", docs))}
    pips: list[list[str]] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(files / "notebooks")  # where Databricks runs a notebook
        notebook = run_notebook(
            files / "notebooks" / "run_chain.py", spark=spark, widgets=widgets, on_pip=pips.append
        )

    # the job's entry point on the same files, documents and simulator
    args = ["--config", str(files / "conf" / "fmf.yaml"), "--profile", "local"]
    for item in _overrides(tmp, "job", docs):
        args += ["--set", item]
    args += ["run", "--chain", str(files / "chains" / "sample.yaml"), "--quiet"]
    assert job_main(args) is None
    (run_dir,) = [p for p in (tmp / "job" / "artefacts").iterdir() if not p.name.startswith("_")]
    return Runs(
        files, bundle_wheel, notebook, widgets, str(run_dir / "outputs"), run_dir / "run.yaml"
    )


def test_pip_installs_the_deployed_wheel_and_requirements(runs: Runs) -> None:
    deployed = runs.files.parent / "artifacts" / ".internal" / runs.wheel.name
    assert runs.notebook.pips == [
        [
            "install",
            "--quiet",
            str(deployed),
            "-r",
            str(runs.files / "requirements" / "databricks.txt"),
        ]
    ]
    with zipfile.ZipFile(deployed) as zf:
        (meta,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        assert re.search(r"^Name: fmf[-_]spark$", zf.read(meta).decode(), re.M)


def test_widgets_and_restart(runs: Runs) -> None:
    dbutils = runs.notebook.dbutils
    assert dbutils is not None
    assert dbutils.widgets.defaults == {
        "bundle_root": "..",
        "wheel": "",
        "config": "conf/fmf.yaml",
        "profile": "databricks",
        "chain": "chains/sample.yaml",
        "overrides": "",
    }
    assert set(runs.widgets) <= set(dbutils.widgets.defaults)
    # the cells after the restart did not lean on what the cells before it defined
    assert dbutils.library.restarts == 1
    assert "wheel" not in runs.notebook.namespace


def _rows(df: Any) -> list[tuple[Any, ...]]:
    columns = [c for c in df.columns if c not in TIMING]
    return sorted((tuple(r) for r in df.select(*columns).collect()), key=repr)


def test_outputs_shown_are_the_jobs_outputs(spark, runs: Runs) -> None:
    shown, _, _ = runs.notebook.displayed
    result = runs.notebook.namespace["result"]
    table = spark.read.format("delta").load(result.outputs_path)
    job = spark.read.format("delta").load(runs.cli_outputs)
    assert shown.columns == table.columns == job.columns
    # whole rows: the notebook shows its table, and its table is the job's
    assert _rows(shown) == _rows(table) == _rows(job)

    chunks = spark.read.format("delta").load(f"{result.run_dir}/chunks").count()
    by_step: dict[str, list[Any]] = {}
    for row in table.collect():
        by_step.setdefault(row["step"], []).append(row)
    assert {s: len(r) for s, r in by_step.items()} == {
        "summarize": chunks,
        "brief": len(DOCS),
        "digest": 1,
    }
    for row in table.collect():
        assert (row["status"], row["error"], row["model"]) == ("ok", None, "sim-gpt-4o-mini")
    (digest,) = by_step["digest"]
    assert digest["output_text"].startswith("[sim-gpt-4o-mini] Answer about:")


def test_costs_shown_are_what_the_run_spent(runs: Runs) -> None:
    _, costs, _ = runs.notebook.displayed
    result = runs.notebook.namespace["result"]
    shown = [tuple(r) for r in costs.collect()]
    steps = yaml.safe_load(Path(result.run_yaml).read_text())["metrics"]["steps"]
    job_steps = yaml.safe_load(runs.cli_run_yaml.read_text())["metrics"]["steps"]
    fields = ("calls", "cached", "failed", "prompt_tokens", "completion_tokens")
    assert shown == [
        (
            step,
            scope,
            "sim-gpt-4o-mini",
            *(steps[step][f] for f in fields),
            round(steps[step]["cost_usd"], 6),
        )
        for step, scope in (("summarize", "chunk"), ("brief", "document"), ("digest", "all"))
    ]
    # the same calls, tokens and cost as the job's run
    assert {s: [m[f] for f in (*fields, "cost_usd")] for s, m in steps.items()} == {
        s: [m[f] for f in (*fields, "cost_usd")] for s, m in job_steps.items()
    }
    assert all(row[3] > 0 and row[-1] > 0 for row in shown)


def test_mlflow_run_shown(runs: Runs) -> None:
    _, _, mlflow_facts = runs.notebook.displayed
    result = runs.notebook.namespace["result"]
    facts = dict(tuple(r) for r in mlflow_facts.collect())
    assert facts["mlflow run"] == result.mlflow_run_id
    assert facts["experiment"] == "fmf_spark"
    assert facts["status"] == "FINISHED"
    assert facts["run.yaml"] == result.run_yaml and Path(result.run_yaml).is_file()
    assert float(facts["metric calls"]) == sum(s.calls for s in result.steps)


def test_a_failed_run_fails_the_notebook(spark, tmp_path: Path, monkeypatch, bundle_wheel) -> None:
    files = _deploy(tmp_path / "bundle", bundle_wheel)
    monkeypatch.chdir(files / "notebooks")
    widgets = {"profile": "local", "chain": "chains/no_such_chain.yaml"}
    with pytest.raises(FmfError, match=r"no_such_chain\.yaml"):
        run_notebook(
            files / "notebooks" / "run_chain.py", spark=spark, widgets=widgets, on_pip=list
        )


def test_no_wheel_says_how_to_get_one(spark, tmp_path: Path, monkeypatch) -> None:
    files = _deploy(tmp_path / "bundle", wheel=None)
    monkeypatch.chdir(files / "notebooks")
    with pytest.raises(
        FileNotFoundError, match="run `databricks bundle deploy` or set the `wheel`"
    ):
        run_notebook(files / "notebooks" / "run_chain.py", spark=spark, widgets={}, on_pip=list)
