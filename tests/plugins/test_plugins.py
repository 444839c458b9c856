"""A sink and a loader defined outside the package, named under ``plugins:``, run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pyspark.sql import functions as F

from fmf_spark.cli import main
from fmf_spark.config import load_config
from fmf_spark.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

INI = b"""[server]
host = db.internal
port = 5432

[owner]
team = finance
"""


def _config(tmp_path: Path, docs: Path, out: Path) -> Path:
    data = yaml.safe_load((ROOT / "conf" / "fmf.yaml").read_text())
    data["plugins"] = ["tests.plugins.acme"]
    data["artefacts"] = {"root": str(tmp_path / "artefacts")}
    data["connectors"]["samples"]["root"] = str(docs)
    data["prompts"] = {"dir": str(ROOT / "prompts"), "mlflow_sync": False}
    data["observability"]["mlflow"] = {"enabled": False}
    data["exporters"] = {"acme": {"type": "acme_jsonl", "path": str(out)}}
    data["inference"]["providers"]["simulator"]["server"]["latency_ms"] = 1
    path = tmp_path / "fmf.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _chain(tmp_path: Path) -> Path:
    chain = {
        "name": "plugins",
        "inputs": {"connector": "samples", "select": "**/*"},
        "steps": [
            {
                "id": "summarize",
                "prompt": "summarize_chunk#1",
                "scope": "chunk",
                "inputs": {"path": "${doc.path}", "text": "${chunk.text}"},
            }
        ],
        "outputs": [{"export": "acme"}],
    }
    path = tmp_path / "chain.yaml"
    path.write_text(yaml.safe_dump(chain))
    return path


def test_a_loader_and_a_sink_from_a_plugin_module_run_end_to_end(spark, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "service.ini").write_bytes(INI)
    (docs / "notes.md").write_text("# Notes\n\nThe office moves on Monday.\n")
    out = tmp_path / "sink" / "outputs.jsonl"
    out.parent.mkdir()
    conf = _config(tmp_path, docs, out)

    assert main(["--config", str(conf), "run", "--chain", str(_chain(tmp_path)), "--quiet"]) == 0

    [run_dir] = (tmp_path / "artefacts").glob("2*")
    documents = spark.read.format("delta").load(str(run_dir / "documents"))
    parsed = {r["path"]: (r["content_type"], r["status"], r["text"]) for r in documents.collect()}
    assert parsed == {
        "service.ini": (
            "text/x-ini",
            "ok",
            "# server\n\n- host: db.internal\n- port: 5432\n\n# owner\n\n- team: finance",
        ),
        "notes.md": ("text/markdown", "ok", "# Notes\n\nThe office moves on Monday."),
    }
    # the sink received exactly the run's outputs rows
    outputs = spark.read.format("delta").load(str(run_dir / "outputs"))
    expected = {
        r["request_id"]: r.asDict(recursive=True)
        for r in outputs.withColumn("output_json", F.col("output_json")).collect()
    }
    received = {
        r["request_id"]: r for r in (json.loads(line) for line in out.read_text().splitlines())
    }
    assert received.keys() == expected.keys() and len(received) == 2
    for request_id, row in expected.items():
        assert received[request_id] == json.loads(json.dumps(row, default=str, sort_keys=True))
    record = yaml.safe_load((run_dir / "run.yaml").read_text())
    assert [(e["sink"], e["rows_written"]) for e in record["exports"]] == [("acme", 2)]


def test_an_unknown_plugin_module_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "fmf.yaml"
    path.write_text(yaml.safe_dump({"plugins": ["acme_missing.plugin"]}))
    with pytest.raises(ConfigError, match=r"plugins: plugin module 'acme_missing.plugin'"):
        load_config(path, environ={})


def test_a_plugin_sink_is_validated_against_its_own_model(tmp_path: Path) -> None:
    path = tmp_path / "fmf.yaml"
    data = {
        "plugins": ["tests.plugins.acme"],
        "exporters": {"acme": {"type": "acme_jsonl", "pth": "x.jsonl"}},
    }
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert "exporters.acme.path: Field required" in err.value.message
    assert "exporters.acme.pth: unknown key; allowed keys: " in err.value.message
    assert "path" in err.value.message.split("allowed keys:")[1]
