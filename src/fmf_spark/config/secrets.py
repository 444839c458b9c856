"""Resolve logical secret names through their providers.

The config refers to secrets by logical name (``{secret: azure_openai_key}``);
``secrets.names`` says which provider holds each and under what key. Providers:

- ``env``: environment variables, plus a ``.env`` file read without touching
  ``os.environ`` (values never go into the environment: executors would inherit them);
- ``aws_secrets_manager``: ``SecretString``; ``name#field`` picks a field of a JSON secret;
- ``aws_ssm``: Parameter Store, SecureString decrypted;
- ``azure_key_vault``: azure-keyvault-secrets with ``DefaultAzureCredential``;
- ``databricks_secrets``: a Databricks secret scope through ``dbutils.secrets`` (the
  runtime's on Databricks, the workspace REST API through databricks-sdk elsewhere);
- ``fabric_key_vault``: Azure Key Vault through Fabric's
  ``notebookutils.credentials.getSecret`` (the job's or notebook's identity).

Every resolved value is a :class:`pydantic.SecretStr` and is registered with
:mod:`fmf_spark.observability.redaction` before anyone can log it. Errors name the
logical name, the provider and the reason, never a value.

Shipping to executors: values never travel through ``os.environ`` or Spark conf. The
layers that need a secret on executors (inference clients, exporters) receive the
``SecretStr`` inside the pickled closure of their ``mapInPandas``/``foreachBatch``
function and register it with the executor's redaction on arrival.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import SecretStr

from fmf_spark._deps import require
from fmf_spark.clients.aws import aws_client, aws_error
from fmf_spark.config.base import SecretRef
from fmf_spark.config.models import FmfConfig, iter_secret_refs
from fmf_spark.config.secrets_models import (
    AwsSecretsManagerProviderConfig,
    AwsSsmProviderConfig,
    AzureKeyVaultProviderConfig,
    DatabricksSecretsProviderConfig,
    EnvProviderConfig,
    FabricKeyVaultProviderConfig,
    SecretProviderConfig,
    SecretsConfig,
)
from fmf_spark.errors import FmfError, SecretError
from fmf_spark.observability.redaction import redact, register_secret


class SecretProvider(Protocol):
    """Fetches one secret by the provider's own key."""

    def get(self, key: str) -> str: ...


class EnvProvider:
    def __init__(self, cfg: EnvProviderConfig, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._dotenv: dict[str, str] = {}
        if cfg.dotenv and os.path.isfile(cfg.dotenv):
            from dotenv import dotenv_values

            self._dotenv = {k: v for k, v in dotenv_values(cfg.dotenv).items() if v is not None}

    def get(self, key: str) -> str:
        if key in self._environ:
            return self._environ[key]
        if key in self._dotenv:
            return self._dotenv[key]
        raise SecretError(f"environment variable {key} is not set (nor in .env)")


def _boto_client(service: str, region: str | None, endpoint_url: str | None) -> Any:
    return aws_client(service, region=region, endpoint_url=endpoint_url)


def _aws_reason(exc: Exception) -> str:
    code, message = aws_error(exc)
    if not code:
        return f"{type(exc).__name__}: {message}"
    return f"{code}: {message}".strip(": ")


class AwsSecretsManagerProvider:
    def __init__(self, cfg: AwsSecretsManagerProviderConfig) -> None:
        self._client = _boto_client("secretsmanager", cfg.region, cfg.endpoint_url)

    def get(self, key: str) -> str:
        secret_id, _, field_name = key.partition("#")
        try:
            response = self._client.get_secret_value(SecretId=secret_id)
        except Exception as exc:
            raise SecretError(f"Secrets Manager: {_aws_reason(exc)}") from None
        value = response.get("SecretString")
        if value is None:
            raise SecretError(f"Secrets Manager secret {secret_id} holds binary, not a string")
        if not field_name:
            return str(value)
        register_secret(value)  # the whole JSON document is secret too
        try:
            doc = json.loads(value)
        except ValueError:
            raise SecretError(
                f"Secrets Manager secret {secret_id} is not JSON; cannot read field {field_name}"
            ) from None
        if not isinstance(doc, dict) or field_name not in doc:
            raise SecretError(f"Secrets Manager secret {secret_id} has no field {field_name}")
        return str(doc[field_name])


class AwsSsmProvider:
    def __init__(self, cfg: AwsSsmProviderConfig) -> None:
        self._client = _boto_client("ssm", cfg.region, cfg.endpoint_url)

    def get(self, key: str) -> str:
        try:
            response = self._client.get_parameter(Name=key, WithDecryption=True)
        except Exception as exc:
            raise SecretError(f"SSM Parameter Store: {_aws_reason(exc)}") from None
        return str(response["Parameter"]["Value"])


class AzureKeyVaultProvider:
    def __init__(
        self, cfg: AzureKeyVaultProviderConfig, credential: Any = None, **client_kwargs: Any
    ) -> None:
        secrets_mod = require("azure.keyvault.secrets")
        if credential is None:
            credential = require("azure.identity").DefaultAzureCredential()
        if cfg.ca_bundle:
            client_kwargs.setdefault("connection_verify", cfg.ca_bundle)
        client_kwargs.setdefault("verify_challenge_resource", cfg.verify_challenge_resource)
        self._client = secrets_mod.SecretClient(
            vault_url=cfg.vault_url, credential=credential, **client_kwargs
        )

    def get(self, key: str) -> str:
        try:
            secret = self._client.get_secret(key)
        except Exception as exc:
            reason = getattr(exc, "message", None) or str(exc)
            raise SecretError(
                f"Key Vault: {type(exc).__name__}: {reason.splitlines()[0] if reason else ''}"
            ) from None
        if secret.value is None:
            raise SecretError(f"Key Vault secret {key} has no value")
        return str(secret.value)


class DatabricksSecretsProvider:
    """One Databricks secret scope; ``get(key)`` is ``dbutils.secrets.get(scope, key)``.

    The ``dbutils`` is databricks-sdk's ``WorkspaceClient().dbutils``: the runtime's own
    on Databricks (the job's or notebook's identity), a REST client elsewhere.
    """

    def __init__(self, cfg: DatabricksSecretsProviderConfig) -> None:
        self._scope = cfg.scope
        sdk = require("databricks.sdk")
        try:
            client = sdk.WorkspaceClient(host=cfg.host) if cfg.host else sdk.WorkspaceClient()
        except Exception as exc:  # the SDK's unified auth found no credentials
            raise SecretError(
                f"Databricks: cannot authenticate: {_first_line(exc)}",
                hint="automatic on Databricks; elsewhere set DATABRICKS_HOST and "
                "DATABRICKS_TOKEN (or DATABRICKS_CONFIG_PROFILE)",
            ) from None
        self._secrets = client.dbutils.secrets

    def get(self, key: str) -> str:
        try:
            value = self._secrets.get(scope=self._scope, key=key)
        except Exception as exc:
            raise SecretError(
                f"Databricks secret scope '{self._scope}': {type(exc).__name__}: {_first_line(exc)}"
            ) from None
        return str(value)


class FabricKeyVaultProvider:
    """One Key Vault read through Fabric's runtime: ``get(key)`` is
    ``notebookutils.credentials.getSecret(vault_url, key)``."""

    def __init__(self, cfg: FabricKeyVaultProviderConfig) -> None:
        self._vault_url = cfg.vault_url
        try:
            import notebookutils  # type: ignore[import-not-found]  # Fabric's runtime only
        except ImportError:
            raise SecretError(
                "Fabric Key Vault: notebookutils is not importable (not a Fabric runtime)",
                hint="use this provider in a Fabric Spark job definition or notebook; "
                "elsewhere use type: azure_key_vault",
            ) from None
        self._credentials = notebookutils.credentials

    def get(self, key: str) -> str:
        try:
            value = self._credentials.getSecret(self._vault_url, key)
        except Exception as exc:
            raise SecretError(
                f"Fabric Key Vault {self._vault_url}: {type(exc).__name__}: {_first_line(exc)}"
            ) from None
        if value is None:
            raise SecretError(f"Fabric Key Vault secret {key} has no value")
        return str(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def make_provider(
    cfg: SecretProviderConfig, environ: Mapping[str, str] | None = None
) -> SecretProvider:
    if isinstance(cfg, EnvProviderConfig):
        return EnvProvider(cfg, environ)
    if isinstance(cfg, AwsSecretsManagerProviderConfig):
        return AwsSecretsManagerProvider(cfg)
    if isinstance(cfg, AwsSsmProviderConfig):
        return AwsSsmProvider(cfg)
    if isinstance(cfg, AzureKeyVaultProviderConfig):
        return AzureKeyVaultProvider(cfg)
    if isinstance(cfg, DatabricksSecretsProviderConfig):
        return DatabricksSecretsProvider(cfg)
    if isinstance(cfg, FabricKeyVaultProviderConfig):
        return FabricKeyVaultProvider(cfg)
    raise SecretError(f"unknown secret provider type {type(cfg).__name__}")


@dataclass(frozen=True)
class SecretCheck:
    """The outcome of resolving one logical name (for ``fmf keys test``); holds no value."""

    name: str
    provider: str
    ok: bool
    reason: str = ""


class SecretResolver:
    """Resolves logical names to :class:`SecretStr`, caching per process.

    Example:
        >>> resolver = SecretResolver(cfg.secrets)  # doctest: +SKIP
        >>> key = resolver.resolve(cfg.inference.providers["azure"].api_key)  # doctest: +SKIP
    """

    def __init__(self, cfg: SecretsConfig, environ: Mapping[str, str] | None = None) -> None:
        self._cfg = cfg
        self._environ = environ
        self._providers: dict[str, SecretProvider] = {}
        self._cache: dict[str, SecretStr] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SecretResolver(names={sorted(self._cfg.names)})"

    def _provider(self, name: str) -> SecretProvider:
        if name not in self._providers:
            self._providers[name] = make_provider(self._cfg.providers[name], self._environ)
        return self._providers[name]

    def resolve(self, ref: SecretRef | str) -> SecretStr:
        """Return the value of a logical name as a ``SecretStr``, registered for redaction."""
        name = ref.secret if isinstance(ref, SecretRef) else ref
        with self._lock:
            if name in self._cache:
                return self._cache[name]
            spec = self._cfg.names.get(name)
            if spec is None:
                raise SecretError(
                    f"secret '{name}' is not declared in secrets.names",
                    hint="add it under secrets.names with a provider and key",
                )
            try:
                value = self._provider(spec.provider).get(spec.key)
            except SecretError as exc:
                raise SecretError(
                    f"secret '{name}' (provider '{spec.provider}', key '{spec.key}'): {redact(exc.message)}",
                    # a provider that knows the fix (e.g. missing credentials) says it
                    hint=exc.hint
                    or "check the key exists and this identity may read it; `fmf keys test` checks all",
                ) from None
            except FmfError:
                raise
            except Exception as exc:
                raise SecretError(
                    f"secret '{name}' (provider '{spec.provider}'): {type(exc).__name__}: {redact(str(exc))}"
                ) from None
            register_secret(value)
            secret = SecretStr(value)
            self._cache[name] = secret
            return secret

    def check_all(self, config: FmfConfig) -> list[SecretCheck]:
        """Resolve every logical name the config declares or uses; never raises."""
        used = {ref.secret for _, ref in iter_secret_refs(config)}
        results = []
        for name in sorted(set(self._cfg.names) | used):
            provider = self._cfg.names[name].provider if name in self._cfg.names else "-"
            try:
                self.resolve(name)
            except FmfError as exc:
                reason = f"{exc.message} (hint: {exc.hint})" if exc.hint else exc.message
                results.append(SecretCheck(name, provider, False, redact(reason)))
            else:
                results.append(SecretCheck(name, provider, True))
        return results
