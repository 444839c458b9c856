"""Secret providers against real endpoints on loopback: moto (Secrets Manager, SSM), a
Key-Vault-compatible HTTPS server with a self-signed certificate, and env/.env."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml

from fmf_spark.config import load_config
from fmf_spark.config.secrets import AzureKeyVaultProvider, SecretResolver
from fmf_spark.config.secrets_models import (
    AzureKeyVaultProviderConfig,
    EnvProviderConfig,
    SecretsConfig,
)
from fmf_spark.errors import SecretError
from fmf_spark.observability.redaction import redact
from tests.servers.keyvault import TOKEN, keyvault_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def aws_secrets(moto_endpoint: str) -> dict[str, str]:
    sm = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")
    ssm = boto3.client("ssm", endpoint_url=moto_endpoint, region_name="us-east-1")
    values = {
        "sm_plain": "sm-plain-value-4411",
        "sm_field": "redshift-pw-9932",
        "ssm_param": "ssm-secure-value-7719",
    }
    sm.create_secret(Name="fmf/openai", SecretString=values["sm_plain"])
    sm.create_secret(
        Name="fmf/redshift",
        SecretString=json.dumps({"user": "etl", "password": values["sm_field"]}),
    )
    ssm.put_parameter(
        Name="/fmf/graph/client_secret", Value=values["ssm_param"], Type="SecureString"
    )
    return values


def _config_file(tmp_path: Path, moto_endpoint: str) -> Path:
    data = {
        "secrets": {
            "providers": {
                "env": {"type": "env", "dotenv": None},
                "sm": {
                    "type": "aws_secrets_manager",
                    "region": "us-east-1",
                    "endpoint_url": moto_endpoint,
                },
                "ssm": {"type": "aws_ssm", "region": "us-east-1", "endpoint_url": moto_endpoint},
            },
            "names": {
                "openai_key": {"provider": "sm", "key": "fmf/openai"},
                "redshift_password": {"provider": "sm", "key": "fmf/redshift#password"},
                "graph_secret": {"provider": "ssm", "key": "/fmf/graph/client_secret"},
                "missing_one": {"provider": "sm", "key": "fmf/does-not-exist"},
            },
        },
        "inference": {
            "providers": {
                "az": {
                    "type": "azure_openai",
                    "endpoint": "https://example.openai.azure.com",
                    "deployment": "gpt-4o",
                    "api_key": {"secret": "openai_key"},
                }
            }
        },
    }
    path = tmp_path / "fmf.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_aws_providers_resolve(
    tmp_path: Path, moto_endpoint: str, aws_secrets: dict[str, str]
) -> None:
    cfg = load_config(_config_file(tmp_path, moto_endpoint), environ={})
    resolver = SecretResolver(cfg.secrets)
    assert resolver.resolve("openai_key").get_secret_value() == aws_secrets["sm_plain"]
    assert resolver.resolve("redshift_password").get_secret_value() == aws_secrets["sm_field"]
    assert resolver.resolve("graph_secret").get_secret_value() == aws_secrets["ssm_param"]
    # resolved values are masked from then on, even inside other text
    assert redact(f"token={aws_secrets['ssm_param']}&x=1") == "token=***&x=1"
    assert aws_secrets["sm_plain"] not in repr(resolver.resolve("openai_key"))


def test_missing_secret_names_provider_and_reason(
    tmp_path: Path, moto_endpoint: str, aws_secrets: dict[str, str]
) -> None:
    cfg = load_config(_config_file(tmp_path, moto_endpoint), environ={})
    with pytest.raises(SecretError) as info:
        SecretResolver(cfg.secrets).resolve("missing_one")
    msg = info.value.message
    assert "secret 'missing_one' (provider 'sm', key 'fmf/does-not-exist')" in msg
    assert "ResourceNotFoundException" in msg


def test_keys_test_cli(tmp_path: Path, moto_endpoint: str, aws_secrets: dict[str, str]) -> None:
    path = _config_file(tmp_path, moto_endpoint)
    proc = subprocess.run(
        [sys.executable, "-m", "fmf_spark.cli", "--config", str(path), "keys", "test"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out  # one name is missing
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()}
    assert set(lines) == {"graph_secret", "missing_one", "openai_key", "redshift_password"}
    for name in ("graph_secret", "openai_key", "redshift_password"):
        assert lines[name].split()[1] in {"sm", "ssm"} and lines[name].rstrip().endswith("OK")
    assert "FAILED" in lines["missing_one"] and "ResourceNotFoundException" in lines["missing_one"]
    for value in aws_secrets.values():
        assert value not in out


def test_env_and_dotenv_without_touching_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("FROM_DOTENV=dotenv-value-5521\nSHADOWED=from-file\n")
    monkeypatch.setenv("SHADOWED", "from-environment")
    cfg = SecretsConfig.model_validate(
        {
            "providers": {"env": EnvProviderConfig(dotenv=str(dotenv)).model_dump()},
            "names": {
                "a": {"provider": "env", "key": "FROM_DOTENV"},
                "b": {"provider": "env", "key": "SHADOWED"},
                "c": {"provider": "env", "key": "NOT_SET_ANYWHERE_42"},
            },
        }
    )
    resolver = SecretResolver(cfg)
    assert resolver.resolve("a").get_secret_value() == "dotenv-value-5521"
    assert (
        resolver.resolve("b").get_secret_value() == "from-environment"
    )  # the environment wins over .env
    import os

    assert "FROM_DOTENV" not in os.environ  # .env values never go into the environment
    with pytest.raises(SecretError, match="environment variable NOT_SET_ANYWHERE_42 is not set"):
        resolver.resolve("c")


class _StaticToken:
    """The test identity: a credential that hands out the local vault's token.

    Key Vault's SDK calls ``get_token`` after the server's 401 challenge, exactly as with
    DefaultAzureCredential in production; only the token source differs.
    """

    def get_token(self, *scopes: str, **kwargs: object):
        from azure.core.credentials import AccessToken

        return AccessToken(TOKEN, 4102444800)


def test_key_vault_over_https_with_self_signed_cert(tmp_path: Path) -> None:
    with keyvault_server(tmp_path, {"openai-key": "kv-secret-value-3141"}) as (url, ca, state):
        cfg = AzureKeyVaultProviderConfig(
            vault_url=url, ca_bundle=str(ca), verify_challenge_resource=False
        )
        provider = AzureKeyVaultProvider(cfg, credential=_StaticToken())
        assert provider.get("openai-key") == "kv-secret-value-3141"
        # the SDK went through the challenge: first unauthenticated, then with the token
        assert len(state.requests) >= 2
        with pytest.raises(SecretError, match="ResourceNotFoundError"):
            provider.get("nope")


def test_key_vault_refuses_untrusted_certificate(tmp_path: Path) -> None:
    with keyvault_server(tmp_path, {"k": "kv-value-2718"}) as (url, _ca, _state):
        cfg = AzureKeyVaultProviderConfig(vault_url=url, verify_challenge_resource=False)
        provider = AzureKeyVaultProvider(cfg, credential=_StaticToken())
        with pytest.raises(SecretError) as info:
            provider.get("k")
        assert "kv-value-2718" not in info.value.message
