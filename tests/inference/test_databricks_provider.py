"""The ``databricks`` provider: Model Serving's OpenAI-compatible route, with the host and
token the workspace's own authentication gives (databricks-sdk), over HTTP against the
simulator. (The contract tests of ``test_clients.py`` run it with a token of its own.)"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from fmf_spark.config.models import FmfConfig
from fmf_spark.errors import AuthError, SecretError
from fmf_spark.inference import CompletionParams, Message, ProviderRuntime
from fmf_spark.inference.providers import build_provider
from fmf_spark.simulator import SimulatorServer, SimulatorSettings

WORKSPACE_TOKEN = "dapi-workspace-token-271828"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorServer]:
    """A serving endpoint that demands the workspace's token, and the SDK's PAT sign-in
    (``DATABRICKS_HOST``/``DATABRICKS_TOKEN``, as a job's environment or ``databricks
    auth`` gives it), with no ``~/.databrickscfg`` to fall back on."""
    server = SimulatorServer(
        SimulatorSettings(
            latency_ms=0, requests_per_minute=None, tokens_per_minute=None, api_key=WORKSPACE_TOKEN
        )
    )
    server.start()
    for key in list(os.environ):
        if key.startswith(("DATABRICKS_", "ARM_", "AZURE_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
    monkeypatch.setenv("DATABRICKS_HOST", server.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", WORKSPACE_TOKEN)
    yield server
    server.stop()


def config(**provider: object) -> FmfConfig:
    spec = {"type": "databricks", "endpoint": "my-llama", "retry": {"max_attempts": 1}}
    return FmfConfig.model_validate({"inference": {"providers": {"dbx": {**spec, **provider}}}})


def ask(runtime: ProviderRuntime, text: str) -> object:
    adapter = runtime.adapter()
    try:
        messages = [Message("system", "Be brief."), Message("user", text)]
        return adapter.complete(messages, CompletionParams(max_tokens=32))
    finally:
        adapter.close()


def test_host_and_token_come_from_the_workspace(workspace: SimulatorServer) -> None:
    runtime = build_provider("dbx", config())
    assert runtime.config.host == workspace.url  # type: ignore[attr-defined]
    assert runtime.model == "my-llama"
    # the token travels as a secret: never in repr(), and it survives the pickle an
    # executor receives
    assert WORKSPACE_TOKEN not in repr(runtime) + repr(runtime.config)
    shipped = pickle.loads(pickle.dumps(runtime))
    answer = ask(shipped, "Summarise the Q3 meeting notes")
    # the endpoint's name is the requested model (the simulator quotes it)
    assert answer.text.startswith("[my-llama] Answer about: Summarise the Q3 meeting notes")  # type: ignore[attr-defined]
    assert (answer.model, workspace.stats()["ok"]) == ("my-llama", 1)  # type: ignore[attr-defined]


def test_a_token_of_its_own_wins_over_the_workspace_sign_in(
    workspace: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = FmfConfig.model_validate(
        {
            "secrets": {
                "providers": {"env": {"type": "env", "dotenv": None}},
                "names": {"sp_token": {"provider": "env", "key": "SP_TOKEN"}},
            },
            "inference": {
                "providers": {
                    "dbx": {
                        "type": "databricks",
                        "endpoint": "my-llama",
                        "model": "llama-3-70b",
                        "token": {"secret": "sp_token"},  # pragma: allowlist secret
                        "retry": {"max_attempts": 1},
                    }
                }
            },
        }
    )
    monkeypatch.setenv("SP_TOKEN", "dapi-someone-else-000")
    runtime = build_provider("dbx", cfg)
    assert runtime.config.host == workspace.url  # type: ignore[attr-defined]
    assert runtime.model == "llama-3-70b"
    # the endpoint refuses that token: one AuthError, the token not in it
    with pytest.raises(AuthError) as refused:
        ask(runtime, "hello")
    assert refused.value.one_line().startswith("inference.auth: HTTP 401")
    assert "dapi-someone-else-000" not in refused.value.one_line()


def test_without_workspace_credentials_the_build_fails_in_one_line(
    workspace: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABRICKS_HOST")
    monkeypatch.delenv("DATABRICKS_TOKEN")
    with pytest.raises(SecretError) as caught:
        build_provider("dbx", config())
    line = caught.value.one_line()
    assert line.startswith(
        "secret.unresolved: Databricks Model Serving endpoint 'my-llama': cannot authenticate"
    )
    assert "DATABRICKS_HOST" in (caught.value.hint or "")
    assert "\n" not in line
