"""RunContext: run.yaml content, redaction, failed runs, and the MLflow run it mirrors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from fmf_spark.config import load_config
from fmf_spark.errors import ChainError
from fmf_spark.observability.redaction import clear_secrets, register_secret
from fmf_spark.observability.run import PromptUse, RunContext, config_hash
from fmf_spark.prompts.registry import PromptRegistry

ROOT = Path(__file__).resolve().parents[2]
SENTINEL = "sk-SENTINEL-4f9a7c21d0e8"


def _config(tmp_path: Path, *more: str):
    return load_config(
        ROOT / "conf" / "fmf.yaml",
        profile="local",
        environ={},
        overrides=[
            f"artefacts.root={tmp_path / 'artefacts'}",
            f"observability.mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
            *more,
        ],
    )


@pytest.fixture
def secret():
    register_secret(SENTINEL)
    yield SENTINEL
    clear_secrets()


def _start(tmp_path: Path, cfg) -> RunContext:
    chain = tmp_path / "chain.yaml"
    chain.write_text("name: t\n")
    ctx = RunContext.start(cfg, chain_path=chain)
    ctx.chain_name = "t"
    registry = PromptRegistry(ROOT / "prompts")
    version = registry.get("summarize_chunk#1")
    ctx.record_prompt(
        PromptUse(
            "summarize",
            version.id,
            version.version,
            version.content_hash,
            registered=False,
            provider="simulator",
            model="sim-gpt-4o-mini",
            scope="chunk",
        ),
        version,
    )
    return ctx


def test_run_yaml_of_a_succeeded_run(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "observability.mlflow.enabled=false")
    ctx = _start(tmp_path, cfg)
    assert Path(ctx.run_dir) == (tmp_path / "artefacts" / ctx.run_id).resolve()
    with ctx.stage("process"):
        pass
    ctx.add_metrics({"documents": 3, "failures_by_code": {"inference.rate_limited": 1}})
    ctx.add_metrics({"failures_by_code": {"inference.auth": 2}, "calls": 7})
    ctx.record_output("outputs", f"{ctx.run_dir}/outputs")
    ctx.record_export({"sink": "outputs_delta", "rows_written": 7})
    path = ctx.finish("succeeded")
    record = yaml.safe_load(Path(path).read_text())
    assert record["run_id"] == ctx.run_id
    assert record["status"] == "succeeded"
    assert record["profile"] == "local"
    assert record["config_hash"] == config_hash(cfg)
    assert record["chain"]["name"] == "t" and len(record["chain"]["hash"]) == 64
    assert record["prompts"] == [
        {
            "step": "summarize",
            "id": "summarize_chunk",
            "version": "1",
            "hash": PromptRegistry(ROOT / "prompts").get("summarize_chunk#1").content_hash,
            "registered": False,
            "provider": "simulator",
            "model": "sim-gpt-4o-mini",
            "scope": "chunk",
        }
    ]
    assert record["metrics"] == {
        "documents": 3,
        "calls": 7,
        "failures_by_code": {"inference.rate_limited": 1, "inference.auth": 2},
    }
    assert set(record["timings_s"]) == {"process"}
    assert record["outputs"] == {"outputs": f"{ctx.run_dir}/outputs"}
    assert record["exports"] == [{"sink": "outputs_delta", "rows_written": 7}]
    assert "mlflow" not in record and "error" not in record


@pytest.mark.slow  # an MLflow sqlite store: its schema migrations take seconds
def test_failed_run_is_recorded_and_secrets_masked(tmp_path: Path, secret: str) -> None:
    cfg = _config(tmp_path)
    ctx = _start(tmp_path, cfg)
    ctx.record_output("outputs", f"s3://bucket/x?sig={secret}")
    error = ChainError(f"step failed calling with key {secret}", code="chain.step_failed")
    path = ctx.finish("failed", error)
    text = Path(path).read_text()
    assert secret not in text
    record = yaml.safe_load(text)
    assert record["status"] == "failed"
    assert record["error"] == {
        "code": "chain.step_failed",
        "message": "step failed calling with key ***",
    }

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=cfg.observability.mlflow.tracking_uri)
    run = client.get_run(record["mlflow"]["run_id"])
    assert run.info.status == "FAILED"
    assert all(secret not in v for v in run.data.params.values())
    assert run.data.params["outputs.outputs"] == "s3://bucket/x?sig=***"


@pytest.mark.slow  # an MLflow sqlite store: its schema migrations take seconds
def test_mlflow_run_mirrors_the_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = _config(tmp_path)
    ctx = _start(tmp_path, cfg)
    ctx.add_metrics({"documents": 2, "chunks": 5, "steps": {"summarize": {"calls": 5}}})
    with ctx.stage("step.summarize"):
        pass
    record = yaml.safe_load(Path(ctx.finish("succeeded")).read_text())

    import mlflow

    uri = cfg.observability.mlflow.tracking_uri
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(record["mlflow"]["run_id"])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == ctx.run_id
    params = run.data.params
    assert params["fmf.run_id"] == ctx.run_id
    assert params["config_hash"] == record["config_hash"]
    assert params["step.summarize.prompt"] == "summarize_chunk#1"
    assert params["step.summarize.prompt_hash"] == record["prompts"][0]["hash"]
    assert run.data.metrics == {
        "documents": 2.0,
        "chunks": 5.0,
        "steps.summarize.calls": 5.0,
        "time_s.step.summarize": pytest.approx(record["timings_s"]["step.summarize"], abs=1e-3),
    }
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"run.yaml", "chain"}
    logged = Path(client.download_artifacts(run.info.run_id, "run.yaml", str(tmp_path)))
    assert yaml.safe_load(logged.read_text()) == record
    # the prompt version is in MLflow's registry with our hash, and linked to the run
    assert '"name": "summarize_chunk"' in run.data.tags["mlflow.linkedPrompts"]
    [mirrored] = client.search_prompt_versions("summarize_chunk")
    assert mirrored.tags["fmf.content_hash"] == record["prompts"][0]["hash"]
    assert mirrored.tags["fmf.version"] == "1"

    # linking the prompts pointed MLflow's global URI at our store and back, and left no
    # MLFLOW_TRACKING_URI behind to steer the next run in this process or a subprocess
    assert "MLFLOW_TRACKING_URI" not in os.environ

    # a second run reuses the mirrored version instead of registering a copy
    ctx2 = _start(tmp_path, cfg)
    ctx2.finish("succeeded")
    assert len(client.search_prompt_versions("summarize_chunk")) == 1


def test_broken_mlflow_store_does_not_fail_the_run(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "observability.mlflow.tracking_uri=nosuchstore://nowhere")
    ctx = _start(tmp_path, cfg)
    record = yaml.safe_load(Path(ctx.finish("succeeded")).read_text())
    assert record["status"] == "succeeded"
    assert "error" in record["mlflow"]
