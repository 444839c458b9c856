"""The composition root prechecks every connector, provider and sink before any work.

A misconfigured sink or provider stops ``fmf run`` before any Spark job and before the
first model call: the simulator counts no request, and ``run.yaml`` records the failure
with no stage run.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
import yaml

from fmf_spark.cli import main
from fmf_spark.simulator import SimulatorServer

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(tmp_path: Path, sim: SimulatorServer, provider: dict, sink: dict) -> tuple[int, str, dict]:
    data = yaml.safe_load((ROOT / "conf" / "fmf.yaml").read_text())
    data["artefacts"] = {"root": str(tmp_path / "artefacts")}
    data["connectors"]["samples"]["root"] = str(ROOT / "samples" / "docs")
    data["prompts"] = {"dir": str(ROOT / "prompts"), "mlflow_sync": False}
    data["observability"]["mlflow"] = {"enabled": False}
    data["secrets"] = {"names": {"key": {"provider": "env", "key": "FMF_TEST_UNSET_KEY"}}}
    data["inference"]["providers"]["checked"] = provider
    data["exporters"]["checked"] = sink
    conf = tmp_path / "fmf.yaml"
    conf.write_text(yaml.safe_dump(data))
    chain = yaml.safe_load((ROOT / "chains" / "sample.yaml").read_text())
    for step in chain["steps"]:
        step["params"] = {**step.get("params", {}), "provider": "checked"}
    chain["outputs"] = [{"export": "checked"}]
    chain_path = tmp_path / "chain.yaml"
    chain_path.write_text(yaml.safe_dump(chain))
    sim.reset()
    code = main(["--config", str(conf), "run", "--chain", str(chain_path), "--quiet"])
    [run_yaml] = (tmp_path / "artefacts").glob("*/run.yaml")
    return code, str(sim.stats()["requests"]), yaml.safe_load(run_yaml.read_text())


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line ``fmf`` prints (the log lines go to stderr too)."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def _simulator(sim: SimulatorServer) -> dict:
    return {"type": "simulator", "base_url": sim.url, "model": "sim-gpt-4o-mini"}


def _delta(tmp_path: Path) -> dict:
    return {"type": "delta", "path": str(tmp_path / "exported")}


def test_a_sink_that_cannot_connect_stops_the_run_before_any_call(
    spark, tmp_path: Path, sim: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = {
        "type": "postgres",
        "host": "127.0.0.1",
        "port": _closed_port(),
        "database": "fmf",
        "user": "fmf",
        "table": "outputs",
        "connect_timeout_s": 2,
    }
    code, requests, record = _run(tmp_path, sim, _simulator(sim), dead)
    error = _error_line(capsys)
    assert (code, requests) == (2, "0")
    assert error.startswith("error: export.error: sink 'checked': cannot connect to 127.0.0.1:")
    assert (record["status"], record["error"]["code"], record["timings_s"]) == (
        "failed",
        "export.error",
        {},
    )


def test_a_provider_whose_secret_does_not_resolve_stops_the_run_before_any_call(
    spark, tmp_path: Path, sim: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    provider = {**_simulator(sim), "type": "openai", "base_url": sim.url + "/v1"}
    provider["api_key"] = {"secret": "key"}
    code, requests, record = _run(tmp_path, sim, provider, _delta(tmp_path))
    error = _error_line(capsys)
    assert (code, requests) == (2, "0")
    assert error.startswith("error: secret.unresolved: secret 'key' (provider 'env'")
    assert (record["status"], record["error"]["code"], record["timings_s"]) == (
        "failed",
        "secret.unresolved",
        {},
    )
    assert not (tmp_path / "exported").exists()


def test_a_provider_without_its_sdk_fails_on_one_line_naming_the_extra(
    spark,
    tmp_path: Path,
    sim: SimulatorServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # as if the extra were not installed
    code, requests, record = _run(tmp_path, sim, _simulator(sim), _delta(tmp_path))
    error = _error_line(capsys)
    assert (code, requests) == (2, "0")
    assert error == (
        "error: config.missing_extra: 'openai' is not installed (import of openai halted; "
        "None in sys.modules) (hint: pip install 'fmf-spark[openai]')"
    )
    assert (record["status"], record["error"]["code"], record["timings_s"]) == (
        "failed",
        "config.missing_extra",
        {},
    )
