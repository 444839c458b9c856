"""Sentinel secrets never leak: runs fail in several ways (a bad model endpoint, a bad
exporter, an endpoint whose URL carries a SAS signature) and the sentinels appear in
none of: captured logs, printed errors, exception messages, ``repr(config)``,
``run.yaml``, MLflow params/tags, or the Spark conf.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import yaml

from fmf_spark.cli import main
from fmf_spark.config import load_config

ROOT = Path(__file__).resolve().parents[2]

SENTINELS = {
    "API_KEY": "sentinel-api-K3y/x+Q9=zz",
    "DB_PASSWORD": "sentinel-db-Pa55/w+rd",
    "SAS_SIG": "sentinel-sas-S1g+a/b=",
}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _forms(value: str) -> set[str]:
    return {value, quote(value, safe=""), quote_plus(value)}


def _config(tmp_path: Path) -> Path:
    dotenv = (
        tmp_path / "secrets.env"
    )  # the secret store: read by the env provider, never put in os.environ
    dotenv.write_text("".join(f"FMF_TEST_{k}={v}\n" for k, v in SENTINELS.items()))
    base = yaml.safe_load((ROOT / "conf" / "fmf.yaml").read_text())
    dead = _closed_port()
    base["artefacts"] = {"root": str(tmp_path / "artefacts")}
    base["connectors"]["samples"]["root"] = str(ROOT / "samples" / "docs")
    base["prompts"] = {"dir": str(ROOT / "prompts"), "mlflow_sync": True}
    base["chains"] = {"dir": str(ROOT / "chains")}
    base["observability"]["mlflow"] = {
        "enabled": True,
        "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "experiment": "leaks",
    }
    base["secrets"] = {
        "providers": {"env": {"type": "env", "dotenv": str(dotenv)}},
        "names": {
            "api_key": {"provider": "env", "key": "FMF_TEST_API_KEY"},
            "db_password": {"provider": "env", "key": "FMF_TEST_DB_PASSWORD"},
        },
    }
    retry = {"max_attempts": 2, "base_delay_s": 0.01, "max_delay_s": 0.05}
    base["inference"]["providers"]["dead_azure"] = {
        "type": "azure_openai",
        # the SAS-style signature in the URL is a secret too, masked without registration
        "endpoint": f"http://127.0.0.1:{dead}/?sig={quote(SENTINELS['SAS_SIG'], safe='')}",
        "deployment": "gpt-4o-mini",
        "model": "gpt-4o-mini",
        "api_key": {"secret": "api_key"},
        "retry": retry,
        "timeout_s": 2,
    }
    base["exporters"]["dead_postgres"] = {
        "type": "postgres",
        "host": "127.0.0.1",
        "port": dead,
        "database": "fmf",
        "user": "fmf",
        "password": {"secret": "db_password"},
        "table": "outputs",
    }
    path = tmp_path / "fmf.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def _chain(tmp_path: Path, provider: str, sink: str) -> Path:
    chain = {
        "name": f"leak_{provider}_{sink}",
        "inputs": {"connector": "samples", "select": "**/*.md"},
        "steps": [
            {
                "id": "summarize",
                "prompt": "summarize_chunk#1",
                "scope": "chunk",
                "inputs": {"path": "${doc.path}", "text": "${chunk.text}"},
                "params": {"provider": provider},
                "on_error": "continue",
            }
        ],
        "outputs": [{"export": sink}],
    }
    path = tmp_path / f"{chain['name']}.yaml"
    path.write_text(yaml.safe_dump(chain))
    return path


@pytest.mark.slow
def test_sentinels_leak_nowhere(
    spark, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = _config(tmp_path)
    scenarios = [
        ("dead_azure", "outputs_delta"),  # bad model endpoint: every call fails
        ("simulator", "dead_postgres"),  # bad exporter: the export fails after inference
    ]
    texts: list[str] = []
    codes = []
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="fmf_spark")
    for provider, sink in scenarios:
        chain = _chain(tmp_path, provider, sink)
        codes.append(main(["--config", str(conf), "--debug", "run", "--chain", str(chain)]))
        captured = capsys.readouterr()
        texts += [captured.out, captured.err]
    assert codes[1] != 0, "a run whose exporter cannot connect must fail"
    texts.append(caplog.text)
    texts += [str(r.exc_info[1]) for r in caplog.records if r.exc_info]

    # every place a secret could end up
    cfg = load_config(conf, environ={})
    texts += [repr(cfg), str(cfg), repr(cfg.inference.providers["dead_azure"])]
    assert main(["--config", str(conf), "config", "show"]) == 0
    texts.append(capsys.readouterr().out)
    run_files = sorted((tmp_path / "artefacts").glob("*/run.yaml"))
    assert len(run_files) == len(scenarios), "each run, failed or not, writes run.yaml"
    texts += [p.read_text() for p in run_files]
    records = [yaml.safe_load(p.read_text()) for p in run_files]
    assert any(r.get("status") == "failed" for r in records)

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("leaks")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == len(scenarios)
    for run in runs:
        assert run.data.params, "MLflow params were logged"
        texts.append(str(run.data.params))
        texts.append(str(run.data.tags))
    texts.append(str(spark.sparkContext.getConf().getAll()))

    # the failed rows' own error messages are a place a secret could end up too
    by_chain = {r["chain"]["name"]: r for r in records}
    dead_model = by_chain["leak_dead_azure_outputs_delta"]
    # the client was built with the key and really called the dead endpoint
    assert dead_model["metrics"]["failures_by_code"] == {
        "inference.transient": dead_model["metrics"]["calls"]
    }
    outputs = spark.read.format("delta").load(dead_model["outputs"]["outputs"])
    messages = [row.message for row in outputs.select("error.message").collect()]
    assert messages and all(messages)
    texts += messages
    for name, value in SENTINELS.items():
        for form in _forms(value):
            where = [t[max(0, t.find(form) - 120) : t.find(form) + 40] for t in texts if form in t]
            assert not where, f"sentinel {name} leaked (as {form!r}) in: {where[:3]}"
