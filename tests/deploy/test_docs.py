"""The deploy docs say what the repository does: their jobs, variables, profile and
arguments are the real ones."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from fmf_spark.cli import build_parser
from fmf_spark.config import load_config
from fmf_spark.config.loader import read_yaml
from tests.deploy import bundle as b
from tests.deploy.bundle import ROOT

DOCS = ROOT / "docs" / "deploy"
ONELAKE = r"abfss://<workspace>@onelake\.dfs\.fabric\.microsoft\.com/fmf_lh\.Lakehouse"


def _blocks(path: Path, lang: str) -> list[str]:
    """The fenced code blocks of language ``lang`` ("" for none), fences maybe indented."""
    blocks, current, open_lang = [], [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        fence = line.strip()
        if fence.startswith("```"):
            if open_lang is None:
                open_lang, current = fence[3:], []
            else:
                if open_lang == lang:
                    blocks.append("\n".join(current) + "\n")
                open_lang = None
        elif open_lang is not None:
            current.append(line)
    return blocks


def test_databricks_doc_names_the_bundles_jobs_targets_and_variables() -> None:
    text = (DOCS / "databricks.md").read_text(encoding="utf-8")
    jobs = {r.name for r in b.resources() if r.kind == "jobs"}
    assert set(re.findall(r"bundle run -t \w+ (\w+)", text)) <= jobs
    assert {f"`jobs.{name}`" for name in jobs} <= set(re.findall(r"`jobs\.\w+`", text))
    assert set(re.findall(r"bundle \w+ -t (\w+)", text)) <= set(b.targets())
    # the variables table: every variable, with its default
    declared = b.bundle_config()["variables"]
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", text, re.M))
    assert rows == {
        name: str(spec["default"])
        for name, spec in declared.items()
        if name not in {"node_type_id", "num_workers"}  # per target: their own row
    }
    assert "| `node_type_id`, `num_workers` |" in text


def test_fabric_profile_validates_with_onelake_paths(tmp_path: Path) -> None:
    doc = DOCS / "fabric.md"
    (profile,) = [blk for blk in _blocks(doc, "yaml") if blk.startswith("  fabric:")]
    data = read_yaml(ROOT / "conf" / "fmf.yaml")
    data["profiles"].update(yaml.safe_load(profile))
    path = tmp_path / "fmf.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")

    cfg = load_config(path, profile="fabric", environ={})
    assert re.fullmatch(rf"{ONELAKE}/Files/fmf/artefacts", cfg.artefacts.root)
    assert re.fullmatch(rf"{ONELAKE}/Files/fmf/prompts", cfg.prompts.dir)
    sink = cfg.exporters["outputs_delta"]
    assert sink.type == "fabric"
    assert re.fullmatch(rf"{ONELAKE}/Tables/fmf_outputs", sink.path or "")  # type: ignore[union-attr]
    assert sink.key_fields == ["request_id"] and sink.mode == "merge"  # type: ignore[union-attr]
    assert cfg.secrets.providers["kv"].type == "fabric_key_vault"
    assert cfg.connectors["samples"].root == "/lakehouse/default/Files/fmf/input"  # type: ignore[union-attr]
    assert cfg.inference.providers["azure"].api_key.secret == "azure_openai_key"  # type: ignore[union-attr]

    # the Spark job definition's command line arguments parse with the real CLI
    (arguments,) = [blk for blk in _blocks(doc, "") if blk.startswith("   --config")]
    args = build_parser().parse_args(shlex.split(arguments))
    assert (args.command, args.profile) == ("run", "fabric")
    assert re.fullmatch(rf"{ONELAKE}/Files/fmf/conf/fmf\.yaml", args.config)
    assert re.fullmatch(rf"{ONELAKE}/Files/fmf/chains/sample\.yaml", args.chain)
