"""``fmf run --chain`` through the real entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fmf_spark.cli import main
from tests.chains.helpers import ROOT


def fmf(capsys, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--config", str(ROOT / "conf" / "fmf.yaml"), "--profile", "local"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_invalid_chain_fails_before_spark_with_every_problem(tmp_path: Path, capsys) -> None:
    chain = yaml.safe_load((ROOT / "chains" / "sample.yaml").read_text())
    chain["steps"][1]["inputs"]["summaries"] = "${steps.summarize.output_json.summry}"
    chain["steps"][2]["prompt"] = "corpus_digest#9"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(chain))
    code, out, err = fmf(capsys, "run", "--chain", str(path), "--dry-run")
    assert (code, out) == (2, "")
    assert err.startswith(f"error: chain.invalid: chain {path} is invalid:")
    assert "has no field 'summry' at the top level (fields: summary, topics)" in err
    assert "prompt 'corpus_digest' has no version '9'" in err


def test_dry_run_prints_the_plan(spark, tmp_path: Path, capsys) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nAlpha text.\n")
    (docs / "b.md").write_text("# B\n\nBeta text.\n")
    code, out, _ = fmf(
        capsys,
        "run",
        "--chain",
        str(ROOT / "chains" / "sample.yaml"),
        "--dry-run",
        "--set",
        f"connectors.samples.root={docs}",
        "--set",
        f"prompts.dir={ROOT / 'prompts'}",
        "--artefacts",
        str(tmp_path / "artefacts"),
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[:3] == [
        "chain sample: 3 steps, validated",
        "DRY RUN (no model calls; tokens and cost are estimates): chain sample",
        "documents: 2 (0 failed)   chunks: 2",
    ]
    table = [line.split() for line in lines[4:]]
    assert [row[:7] for row in table] == [
        ["step", "scope", "prompt", "rows", "calls", "cached", "failed"],
        ["---------", "--------", "-----------------", "----", "-----", "------", "------"],
        ["summarize", "chunk", "summarize_chunk#1", "2", "2", "0", "0"],
        ["brief", "document", "doc_brief#1", "2", "2", "0", "0"],
        ["digest", "all", "corpus_digest#1", "1", "1", "0", "0"],
        ["total", "5", "5", "0", "0", table[-1][5], table[-1][6]],
    ]
    assert not (tmp_path / "artefacts").exists()  # a dry run writes nothing


def test_a_failed_run_still_writes_its_record(spark, tmp_path: Path) -> None:
    from fmf_spark.chains.model import load_chain
    from fmf_spark.cli.app import run_chain
    from fmf_spark.config import load_config
    from fmf_spark.errors import FmfError

    cfg = load_config(
        ROOT / "conf" / "fmf.yaml",
        profile="local",
        environ={},
        overrides=[
            f"connectors.samples.root={tmp_path / 'missing'}",
            f"artefacts.root={tmp_path / 'artefacts'}",
            f"prompts.dir={ROOT / 'prompts'}",
            "observability.mlflow.enabled=false",
        ],
    )
    with pytest.raises(FmfError) as err:
        run_chain(spark, load_chain(ROOT / "chains" / "sample.yaml"), cfg)
    [run_yaml] = (tmp_path / "artefacts").glob("*/run.yaml")
    record = yaml.safe_load(run_yaml.read_text())
    assert record["status"] == "failed"
    assert record["error"]["code"] == err.value.code
    assert record["error"]["message"] == err.value.message
    assert [p["id"] for p in record["prompts"]] == ["summarize_chunk", "doc_brief", "corpus_digest"]
    # the connector's precheck failed before any stage (and any Spark job) ran
    assert set(record["timings_s"]) == set()
