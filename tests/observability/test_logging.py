"""Log format and level from the config (the environment wins), and the JSON context fields."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fmf_spark.cli import main
from fmf_spark.config import load_config
from fmf_spark.observability.logging import configure_logging, get_logger
from fmf_spark.observability.run import RunContext
from tests.chains.helpers import ROOT
from tests.observability.helpers import run_files, write_local


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("FMF_LOG_FORMAT", raising=False)
    monkeypatch.delenv("FMF_LOG_LEVEL", raising=False)
    yield
    configure_logging("human", "INFO")


def _config_file(tmp_path: Path, **observability: str) -> Path:
    """A config whose prune deletes the one old run under its root (and logs it)."""
    root = tmp_path / "artefacts"
    _, files = run_files(400, "aaaaaa")
    write_local(root, files)
    path = tmp_path / "fmf.yaml"
    data = {
        "artefacts": {"root": str(root), "retention": {"max_age_days": 30}},
        "observability": {"mlflow": {"enabled": False}, **observability},
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _prune_log(tmp_path: Path, capsys: pytest.CaptureFixture[str], **observability: str) -> str:
    config = _config_file(tmp_path, **observability)
    assert main(["--config", str(config), "runs", "prune"]) == 0
    return capsys.readouterr().err


def _pruned_line(stderr: str) -> str:
    (line,) = [x for x in stderr.splitlines() if "pruned run" in x]
    return line


@pytest.mark.parametrize(
    ("config_format", "env_format", "expected"),
    [
        ("json", None, "json"),
        ("human", None, "human"),
        ("json", "human", "human"),  # the environment wins over the config
        ("human", "json", "json"),
    ],
)
def test_log_format_from_config_and_environment(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    config_format: str,
    env_format: str | None,
    expected: str,
) -> None:
    if env_format:
        monkeypatch.setenv("FMF_LOG_FORMAT", env_format)
    line = _pruned_line(_prune_log(tmp_path, capsys, log_format=config_format))
    if expected == "json":
        record = json.loads(line)
        assert record["level"] == "INFO"
        assert record["logger"] == "fmf_spark.observability.runs"
        assert record["message"].startswith("pruned run ")
    else:
        with pytest.raises(ValueError):
            json.loads(line)
        assert " INFO fmf_spark.observability.runs: pruned run " in line


def test_log_level_from_config_and_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr = _prune_log(tmp_path / "a", capsys, log_format="json", log_level="WARNING")
    assert "pruned run" not in stderr
    monkeypatch.setenv("FMF_LOG_LEVEL", "INFO")
    stderr = _prune_log(tmp_path / "b", capsys, log_format="json", log_level="WARNING")
    assert json.loads(_pruned_line(stderr))["level"] == "INFO"


def test_json_lines_carry_run_and_step(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure_logging("json", "INFO", stream=stream)
    cfg = load_config(
        ROOT / "conf" / "fmf.yaml",
        profile="local",
        environ={},
        overrides=[f"artefacts.root={tmp_path}", "observability.mlflow.enabled=false"],
    )
    log = get_logger("tests.context")
    ctx = RunContext.start(cfg)
    with ctx.stage("step.summarize"):
        log.info("inside the step")
    with ctx.stage("process"):
        log.info("inside process")
    ctx.finish("succeeded")
    log.info("after the run")
    lines = {r["message"]: r for r in map(json.loads, stream.getvalue().splitlines())}
    step = lines["inside the step"]
    assert (step["run_id"], step["stage"], step["step"]) == (
        ctx.run_id,
        "step.summarize",
        "summarize",
    )
    process = lines["inside process"]
    assert (process["run_id"], process["stage"]) == (ctx.run_id, "process")
    assert "step" not in process
    assert "run_id" not in lines["after the run"]


def test_executor_json_lines_carry_the_partition(spark) -> None:
    def task_log_lines(batches):  # runs in the executors (nested: pickled by value)
        import pandas as pd

        from fmf_spark.observability.logging import JsonFormatter
        from fmf_spark.observability.telemetry import TaskTelemetry

        buffer = io.StringIO()
        handler = logging.StreamHandler(buffer)
        handler.setFormatter(JsonFormatter())
        logger = logging.getLogger("fmf_spark.tests.executor")
        logger.addHandler(handler)
        telemetry = TaskTelemetry("json", "INFO", {"run_id": "r-exec", "step": "extract"})
        try:
            with telemetry.task():
                for batch in batches:
                    logger.info("rows %d", len(batch))
        finally:
            logger.removeHandler(handler)
        yield pd.DataFrame({"line": buffer.getvalue().splitlines()})

    df = spark.range(0, 40, numPartitions=4)
    lines = [json.loads(r["line"]) for r in df.mapInPandas(task_log_lines, "line string").collect()]
    assert sorted((r["run_id"], r["step"], r["partition"], r["message"]) for r in lines) == [
        ("r-exec", "extract", p, "rows 10") for p in range(4)
    ]
