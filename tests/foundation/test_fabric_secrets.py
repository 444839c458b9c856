"""The ``fabric_key_vault`` provider: Key Vault read through Fabric's ``notebookutils``.

Fabric's runtime module is not installable outside Fabric, so a stand-in takes its
place: ``notebookutils.credentials.getSecret(vault_url, name)`` reads the Key-Vault-
compatible server on loopback over HTTPS with the bearer token of the job's identity,
and raises on an unknown name, as the runtime does.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from fmf_spark.config import load_config
from fmf_spark.config.secrets import SecretResolver
from fmf_spark.errors import SecretError
from fmf_spark.observability.redaction import redact
from tests.servers.keyvault import TOKEN, keyvault_server

VALUE = "fabric-kv-value-6607"


@pytest.fixture
def fabric_vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with keyvault_server(tmp_path, {"azure-openai-key": VALUE}) as (url, ca, _state):

        def get_secret(vault_url: str, name: str) -> str:
            answer = httpx.get(
                f"{vault_url}/secrets/{name}",
                params={"api-version": "7.4"},
                headers={"Authorization": f"Bearer {TOKEN}"},
                verify=str(ca),
            )
            if answer.status_code != 200:
                error = answer.json()["error"]
                raise RuntimeError(f"{error['code']}: {error['message']}\nat line 2")
            return str(answer.json()["value"])

        runtime = types.ModuleType("notebookutils")
        runtime.credentials = types.SimpleNamespace(getSecret=get_secret)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "notebookutils", runtime)
        yield url


def _config(tmp_path: Path, vault_url: str) -> Path:
    data = {
        "secrets": {
            "providers": {"kv": {"type": "fabric_key_vault", "vault_url": vault_url}},
            "names": {
                "azure_openai_key": {"provider": "kv", "key": "azure-openai-key"},
                "missing_one": {"provider": "kv", "key": "not-in-vault"},
            },
        }
    }
    path = tmp_path / "fmf.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_reads_the_vault_as_the_job_identity(tmp_path: Path, fabric_vault: str) -> None:
    cfg = load_config(_config(tmp_path, fabric_vault), environ={})
    secret = SecretResolver(cfg.secrets).resolve("azure_openai_key")
    assert secret.get_secret_value() == VALUE
    assert VALUE not in repr(secret)
    assert redact(f"key={VALUE}") == "key=***"


def test_an_unknown_name_says_vault_and_reason(tmp_path: Path, fabric_vault: str) -> None:
    cfg = load_config(_config(tmp_path, fabric_vault), environ={})
    with pytest.raises(SecretError) as info:
        SecretResolver(cfg.secrets).resolve("missing_one")
    message = info.value.message
    assert message.startswith(
        f"secret 'missing_one' (provider 'kv', key 'not-in-vault'): Fabric Key Vault {fabric_vault}: "
        "RuntimeError: SecretNotFound: A secret with (name/id) not-in-vault was not found"
    )
    assert "line 2" not in message  # the first line only


def test_outside_fabric_it_says_which_provider_to_use(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, "https://v.vault.azure.net"), environ={})
    with pytest.raises(SecretError) as info:
        SecretResolver(cfg.secrets).resolve("azure_openai_key")
    assert "notebookutils is not importable (not a Fabric runtime)" in info.value.message
    assert "type: azure_key_vault" in (info.value.hint or "")
