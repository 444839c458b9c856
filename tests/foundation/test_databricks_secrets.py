"""The ``databricks_secrets`` provider against a workspace-compatible secrets API on loopback.

Off Databricks the provider reads through databricks-sdk's ``dbutils.secrets``, which
calls the workspace REST API with the SDK's own authentication; on a cluster the same
SDK call returns the runtime's ``dbutils``. The server checks the bearer token and
answers 404 for unknown keys, as a workspace does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fmf_spark.cli import main
from fmf_spark.config import load_config
from fmf_spark.config.secrets import SecretResolver
from fmf_spark.errors import SecretError
from fmf_spark.observability.redaction import redact
from tests.servers.databricks import TOKEN, WorkspaceState, workspace_server

VALUE = "dbx-scope-value-8123"


@pytest.fixture
def workspace(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[str, WorkspaceState]]:
    # the SDK's unified auth reads the environment and ~/.databrickscfg: give it exactly
    # the token a job would have, and no profile file
    for name in ("DATABRICKS_HOST", "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    with workspace_server({("fmf", "azure-openai-key"): VALUE}) as served:
        yield served


def _config(tmp_path: Path, host: str) -> Path:
    data = {
        "secrets": {
            "providers": {"dbx": {"type": "databricks_secrets", "scope": "fmf", "host": host}},
            "names": {
                "azure_openai_key": {"provider": "dbx", "key": "azure-openai-key"},
                "missing_one": {"provider": "dbx", "key": "not-in-scope"},
            },
        }
    }
    path = tmp_path / "fmf.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_reads_the_scope_through_the_sdk(tmp_path: Path, workspace) -> None:
    host, state = workspace
    cfg = load_config(_config(tmp_path, host), environ={})
    resolver = SecretResolver(cfg.secrets)
    secret = resolver.resolve("azure_openai_key")
    assert secret.get_secret_value() == VALUE
    assert state.reads == [("fmf", "azure-openai-key")]
    # registered for redaction as soon as it is read, and cached for the process
    assert redact(f"key={VALUE};") == "key=***;"
    assert VALUE not in repr(secret)
    resolver.resolve("azure_openai_key")
    assert state.reads == [("fmf", "azure-openai-key")]


def test_missing_key_names_scope_and_reason(tmp_path: Path, workspace) -> None:
    host, _ = workspace
    cfg = load_config(_config(tmp_path, host), environ={})
    with pytest.raises(SecretError) as info:
        SecretResolver(cfg.secrets).resolve("missing_one")
    message = info.value.message
    assert message.startswith(
        "secret 'missing_one' (provider 'dbx', key 'not-in-scope'): Databricks secret scope 'fmf': "
    )
    assert "Failed to get secret not-in-scope for scope fmf." in message


def test_wrong_token_fails_without_echoing_it(
    tmp_path: Path, workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, state = workspace
    monkeypatch.setenv("DATABRICKS_TOKEN", "wrong-token-5531")
    cfg = load_config(_config(tmp_path, host), environ={})
    with pytest.raises(SecretError) as info:
        SecretResolver(cfg.secrets).resolve("azure_openai_key")
    assert "Invalid access token." in info.value.message
    assert "wrong-token-5531" not in info.value.one_line()
    assert state.reads == []


def test_no_credentials_is_one_line_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
    path = tmp_path / "fmf.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "secrets": {
                    "providers": {"dbx": {"type": "databricks_secrets", "scope": "fmf"}},
                    "names": {"k": {"provider": "dbx", "key": "k"}},
                }
            }
        )
    )
    cfg = load_config(path, environ={})
    with pytest.raises(SecretError) as info:
        SecretResolver(cfg.secrets).resolve("k")
    assert "Databricks: cannot authenticate" in info.value.message
    assert "DATABRICKS_HOST" in (info.value.hint or "")
    assert "\n" not in info.value.message


def test_keys_test_lists_each_name(
    tmp_path: Path, workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    host, _ = workspace
    code = main(["--config", str(_config(tmp_path, host)), "keys", "test"])
    out = capsys.readouterr()
    assert code == 2, out  # one name is not in the scope
    lines = {line.split()[0]: line.split() for line in out.out.splitlines() if line.strip()}
    assert lines["azure_openai_key"][1:] == ["dbx", "OK"]
    assert lines["missing_one"][1:3] == ["dbx", "FAILED"]
    assert VALUE not in out.out + out.err
