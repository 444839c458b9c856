"""The ``databricks`` provider type: Databricks Model Serving through its OpenAI-compatible API.

A serving endpoint (a foundation model, an external model, a custom chat model) answers
OpenAI chat completions at ``<workspace>/serving-endpoints/chat/completions`` with the
endpoint's name as ``model``; the openai SDK calls it with ``base_url
<workspace>/serving-endpoints``, and errors, retries and pacing are those of the other
OpenAI-compatible providers (:mod:`.azure_openai`).

Credentials come from the workspace, resolved once on the driver (:meth:`bind`) with
databricks-sdk's unified authentication: in a Databricks job or notebook the runtime's
own identity, elsewhere ``DATABRICKS_HOST``/``DATABRICKS_TOKEN``, a
``~/.databrickscfg`` profile, OAuth for a service principal. The token then travels to
the executors with the provider, as a secret (never in Spark conf or the environment),
because an executor has no notebook context to sign in with. A token of the config's
own (``token: {secret: ...}``, e.g. a service principal's PAT in a secret scope) is
used instead when set: the choice for runs longer than an OAuth token lives (an hour).

Example (``conf/fmf.yaml``, profile ``databricks``)::

    inference:
      providers:
        llama:
          type: databricks
          endpoint: databricks-meta-llama-3-3-70b-instruct
          rate_limit: {requests_per_minute: 120, tokens_per_minute: 200000}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import Field, SecretStr

from fmf_spark._deps import require
from fmf_spark.config.base import SecretRef
from fmf_spark.config.inference import ProviderConfig
from fmf_spark.errors import SecretError
from fmf_spark.inference.azure_openai import OpenAIChatAdapter, openai_adapter
from fmf_spark.inference.providers import register_provider

if TYPE_CHECKING:
    from fmf_spark.inference.providers import ProviderRuntime

PROVIDER_TYPE = "databricks"


class DatabricksProviderConfig(ProviderConfig):
    """A Databricks Model Serving endpoint; host and token from the workspace by default."""

    type: Literal["databricks"] = "databricks"
    endpoint: str = Field(
        description="Serving endpoint name, e.g. databricks-meta-llama-3-3-70b-instruct."
    )
    host: str | None = Field(
        default=None,
        description="Workspace URL; default: the runtime's on Databricks, else "
        "DATABRICKS_HOST or the SDK's profile.",
    )
    profile: str | None = Field(
        default=None, description="A ~/.databrickscfg profile, for use off Databricks."
    )
    token: SecretRef | None = Field(
        default=None,
        description="A token of your own (e.g. a service principal's, from a secret "
        "scope); default: the workspace's own authentication (databricks-sdk).",
    )
    model: str | None = Field(
        default=None, description="Model name for the price table; default: the endpoint."
    )

    def model_name(self) -> str:
        return self.model or self.endpoint

    def bind(
        self, secrets: Mapping[str, SecretStr]
    ) -> tuple[DatabricksProviderConfig, dict[str, SecretStr]]:
        """Resolve the workspace host and, without ``token``, the workspace's token.

        Raises:
            SecretError: no workspace credentials (off Databricks without
                ``DATABRICKS_HOST``/``DATABRICKS_TOKEN`` or a profile), or no host.
        """
        out = dict(secrets)
        if self.host is not None and "token" in out:
            return self, out
        sdk_config = self._sdk_config()
        host = (self.host or str(sdk_config.host or "")).rstrip("/")
        if not host:
            raise SecretError(
                f"Databricks Model Serving endpoint '{self.endpoint}': no workspace host",
                hint="set host, or DATABRICKS_HOST",
            )
        if "token" not in out:
            out["token"] = SecretStr(_bearer(sdk_config, self.endpoint))
        return self.model_copy(update={"host": host}), out

    def _sdk_config(self) -> Any:
        core = require("databricks.sdk.core", extra="databricks")
        options = {k: v for k, v in (("host", self.host), ("profile", self.profile)) if v}
        try:
            return core.Config(**options)
        except Exception as exc:  # the SDK's unified auth found no credentials
            raise SecretError(
                f"Databricks Model Serving endpoint '{self.endpoint}': cannot authenticate "
                f"to the workspace: {_first_line(exc)}",
                hint="automatic on Databricks; elsewhere set DATABRICKS_HOST and "
                "DATABRICKS_TOKEN (or DATABRICKS_CONFIG_PROFILE), or give the provider a "
                "token: {secret: ...}",
            ) from None


def _bearer(sdk_config: Any, endpoint: str) -> str:
    """The bearer token the SDK's authentication puts on a request."""
    try:
        headers = sdk_config.authenticate()
    except Exception as exc:
        raise SecretError(
            f"Databricks Model Serving endpoint '{endpoint}': no workspace token: "
            f"{_first_line(exc)}"
        ) from None
    value = str(headers.get("Authorization", ""))
    if not value.startswith("Bearer "):
        raise SecretError(
            f"Databricks Model Serving endpoint '{endpoint}': the workspace authentication "
            "gives no bearer token",
            hint="use a token (PAT or OAuth) auth type, or give the provider token: {secret: ...}",
        )
    return value.removeprefix("Bearer ")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _client(rt: ProviderRuntime, pool: int) -> OpenAIChatAdapter:
    cfg = cast(DatabricksProviderConfig, rt.config)  # the registry key is the config's type
    if cfg.host is None:  # built without bind(): never through ProviderRuntime.build
        raise SecretError(f"provider '{rt.name}' (type databricks) has no workspace host")
    return openai_adapter(
        base_url=f"{cfg.host}/serving-endpoints",
        api_key=rt.secret("token"),
        model=cfg.model_name(),
        request_model=cfg.endpoint,
        timeout_s=cfg.timeout_s,
        pool=pool,
    )


register_provider(PROVIDER_TYPE, DatabricksProviderConfig, _client)
