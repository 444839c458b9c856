"""``fmf prompt register|list|show|test`` through the real entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fmf_spark.cli import main
from fmf_spark.cli.app import run_prompt_tests
from fmf_spark.prompts.model import PromptExpectation
from fmf_spark.prompts.registry import PromptRegistry
from fmf_spark.prompts.testing import check_expectation
from tests.prompts.test_registry import V1, greet, write_prompt

ROOT = Path(__file__).resolve().parents[2]


def fmf(capsys, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--config", str(ROOT / "conf" / "fmf.yaml"), "--profile", "local"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_register_list_show_and_refuse_a_change(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "prompts"
    path = write_prompt(folder, greet({"1": V1}))
    sets = ["--set", f"prompts.dir={folder}", "--set", "observability.mlflow.enabled=false"]
    code, out, _ = fmf(capsys, "prompt", "list", *sets)
    digest = PromptRegistry(folder).get("greet#1").content_hash
    assert (code, out) == (0, f"greet#1  {digest[:12]}  draft\n")

    code, out, _ = fmf(capsys, "prompt", "register", f"{path}#1", *sets)
    assert (code, out) == (0, f"greet#1  {digest[:12]}  registered\n")
    code, out, _ = fmf(capsys, "prompt", "list", *sets)
    assert out == f"greet#1  {digest[:12]}  registered\n"

    code, out, _ = fmf(capsys, "prompt", "show", "greet@latest", *sets)
    shown = yaml.safe_load(out)
    assert (shown["ref"], shown["hash"], shown["registered"]) == ("greet#1", digest, True)
    assert shown["variables"] == ["name"]

    write_prompt(folder, greet({"1": {**V1, "params": {"temperature": 1.0}}}))
    code, _, err = fmf(capsys, "prompt", "register", f"{path}#1", *sets)
    assert code == 2
    assert err.startswith("error: prompt.immutable: prompt greet#1 was registered with hash")
    assert "register greet#2" in err


@pytest.mark.slow  # an MLflow sqlite store: its schema migrations take seconds
def test_register_mirrors_to_mlflow(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "prompts"
    path = write_prompt(folder, greet({"1": V1}))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, out, _ = fmf(
        capsys,
        "prompt",
        "register",
        str(path),
        "--set",
        f"prompts.dir={folder}",
        "--set",
        f"observability.mlflow.tracking_uri={uri}",
    )
    assert code == 0
    assert out.splitlines()[-1] == "mirrored to MLflow's prompt registry: greet#1"
    import mlflow

    [version] = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri).search_prompt_versions(
        "greet"
    )
    assert version.tags["fmf.content_hash"] == PromptRegistry(folder).get("greet#1").content_hash
    assert version.template == V1["messages"]


@pytest.mark.parametrize(
    ("expect", "status", "text", "problems"),
    [
        (PromptExpectation(json_keys=["a"]), "ok", '{"a": 1}', []),
        (PromptExpectation(json_keys=["a", "b"]), "ok", '{"a": 1}', ["JSON answer lacks b"]),
        (PromptExpectation(json_keys=["a"]), "ok", "prose", ["the answer is not JSON"]),
        (
            PromptExpectation(contains=["x"], not_contains=["y"]),
            "ok",
            "y",
            ["answer does not contain 'x'", "answer contains 'y'"],
        ),
        (PromptExpectation(), "error", None, ["status is error (inference.auth), expected ok"]),
    ],
)
def test_check_expectation(expect, status, text, problems) -> None:
    code = "inference.auth" if status == "error" else None
    assert check_expectation(expect, status, text, code) == problems


def test_prompt_tests_run_against_the_simulator(spark) -> None:
    from fmf_spark.config import load_config

    cfg = load_config(
        ROOT / "conf" / "fmf.yaml",
        profile="local",
        environ={},
        overrides=["inference.providers.simulator.server.latency_ms=1"],
    )
    version = PromptRegistry(ROOT / "prompts").get("summarize_chunk#1")
    [result] = run_prompt_tests(spark, version, cfg)
    assert (result.name, result.passed, result.problems) == (
        "answers with a summary and topics",
        True,
        [],
    )
    assert set(yaml.safe_load(result.output or "{}")) == {"summary", "topics"}
