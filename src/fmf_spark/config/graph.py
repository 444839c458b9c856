"""Microsoft Graph access: the fields shared by the SharePoint connector and Excel sink."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr, model_validator

from fmf_spark.config.base import Location, SecretRef, StrictModel
from fmf_spark.errors import ConfigError
from fmf_spark.observability.redaction import register_secret

if TYPE_CHECKING:
    from fmf_spark.config.secrets import SecretResolver


class GraphAccessConfig(StrictModel):
    """Where Graph is and how this app signs in (client secret or certificate)."""

    graph_url: str = "https://graph.microsoft.com/v1.0"
    authority_url: str = "https://login.microsoftonline.com"
    tenant_id: str
    client_id: str
    client_secret: SecretRef | None = Field(default=None, description="Client-credential auth.")
    certificate_path: Location | None = Field(default=None, description="Certificate auth (PEM).")
    certificate_thumbprint: str | None = Field(
        default=None, description="SHA-1 thumbprint; computed from the certificate if omitted."
    )
    max_retries: int = Field(default=5, ge=0, description="Throttling retries per request.")
    max_backoff_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _one_credential(self) -> GraphAccessConfig:
        if self.client_secret is None and self.certificate_path is None:
            raise ValueError("set client_secret or certificate_path")
        return self

    def client_options(self) -> dict[str, Any]:
        """The ``GraphClient`` arguments that come straight from this config."""
        return {
            "graph_url": self.graph_url,
            "authority_url": self.authority_url,
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "certificate_thumbprint": self.certificate_thumbprint,
            "max_retries": self.max_retries,
            "max_backoff_s": self.max_backoff_s,
        }

    def credentials(self, resolver: SecretResolver) -> tuple[SecretStr | None, SecretStr | None]:
        """``(client_secret, certificate_pem)``, resolved on the driver (one is ``None``).

        Raises:
            SecretError: the client secret does not resolve.
            ConfigError: the certificate file cannot be read.
        """
        if self.client_secret is not None:
            return resolver.resolve(self.client_secret), None
        if self.certificate_path is None:  # one of the two is checked at validation
            raise ConfigError("set client_secret or certificate_path")
        try:
            pem = Path(self.certificate_path).expanduser().read_text()
        except OSError as exc:
            raise ConfigError(
                f"cannot read certificate_path {self.certificate_path}: {exc.strerror}"
            ) from None
        register_secret(pem)
        return None, SecretStr(pem)
