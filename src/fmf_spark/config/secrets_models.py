"""Config models of the ``secrets`` section: providers and logical names."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from fmf_spark.config.base import Location, StrictModel


class EnvProviderConfig(StrictModel):
    """Environment variables, optionally loaded from a ``.env`` file (never overriding)."""

    type: Literal["env"] = "env"
    dotenv: Location | None = Field(
        default=".env", description="Path of a .env file; missing is fine."
    )


class AwsSecretsManagerProviderConfig(StrictModel):
    """AWS Secrets Manager. A key ``name#field`` reads one field of a JSON secret."""

    type: Literal["aws_secrets_manager"] = "aws_secrets_manager"
    region: str | None = Field(
        default=None, description="AWS region; default from the environment."
    )
    endpoint_url: str | None = Field(default=None, description="Override, e.g. a moto server.")


class AwsSsmProviderConfig(StrictModel):
    """AWS Systems Manager Parameter Store (SecureString parameters are decrypted)."""

    type: Literal["aws_ssm"] = "aws_ssm"
    region: str | None = Field(
        default=None, description="AWS region; default from the environment."
    )
    endpoint_url: str | None = Field(default=None, description="Override, e.g. a moto server.")


class AzureKeyVaultProviderConfig(StrictModel):
    """Azure Key Vault through azure-identity's DefaultAzureCredential."""

    type: Literal["azure_key_vault"] = "azure_key_vault"
    vault_url: str = Field(description="https://<vault>.vault.azure.net")
    ca_bundle: Location | None = Field(
        default=None, description="PEM file of CAs to trust (private endpoints, local tests)."
    )
    verify_challenge_resource: bool = Field(
        default=True, description="Check the auth challenge names the vault's domain; keep on."
    )


class DatabricksSecretsProviderConfig(StrictModel):
    """A Databricks secret scope, read through ``dbutils.secrets`` (databricks-sdk).

    On a Databricks cluster or serverless compute the runtime's ``dbutils`` answers with
    the identity the job or notebook runs as; elsewhere the SDK calls the workspace's
    REST API with its unified authentication (``DATABRICKS_HOST``/``DATABRICKS_TOKEN``,
    a ``~/.databrickscfg`` profile, OAuth). The token never appears in this file.
    """

    type: Literal["databricks_secrets"] = "databricks_secrets"
    scope: str = Field(
        description="The secret scope, e.g. `fmf` (`databricks secrets create-scope fmf`)."
    )
    host: str | None = Field(
        default=None,
        description="Workspace URL, only for use off Databricks; default: the runtime's, "
        "else DATABRICKS_HOST or the SDK's profile.",
    )


class FabricKeyVaultProviderConfig(StrictModel):
    """Azure Key Vault read through Fabric's ``notebookutils.credentials.getSecret``.

    In a Fabric Spark job definition or notebook, code has no identity that
    ``DefaultAzureCredential`` finds; ``notebookutils`` reads the vault as the identity
    the job or notebook runs as (that identity needs *get* on the vault's secrets).
    Only inside Fabric: elsewhere use ``azure_key_vault``.
    """

    type: Literal["fabric_key_vault"] = "fabric_key_vault"
    vault_url: str = Field(description="https://<vault>.vault.azure.net")


SecretProviderConfig = Annotated[
    EnvProviderConfig
    | AwsSecretsManagerProviderConfig
    | AwsSsmProviderConfig
    | AzureKeyVaultProviderConfig
    | DatabricksSecretsProviderConfig
    | FabricKeyVaultProviderConfig,
    Field(discriminator="type"),
]


class SecretNameConfig(StrictModel):
    """Where one logical secret lives."""

    provider: str = Field(description="A key of `secrets.providers`.")
    key: str = Field(description="The name in that provider (env var, secret id, parameter).")


def _default_providers() -> dict[str, SecretProviderConfig]:
    return {"env": EnvProviderConfig()}


class SecretsConfig(StrictModel):
    """Secret providers and the logical names the rest of the config refers to."""

    providers: dict[str, SecretProviderConfig] = Field(default_factory=_default_providers)
    names: dict[str, SecretNameConfig] = Field(default_factory=dict)
