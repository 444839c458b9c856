"""Azure OpenAI and OpenAI(-compatible) chat completions through the openai SDK.

The SDK's own retries are off (``max_retries=0``): the :mod:`retry policy
<fmf_spark.inference.client>` owns retries, so every call is counted and paced by the
job-wide limiter. Errors are mapped to the :class:`~fmf_spark.errors.InferenceError`
family; the ``x-ratelimit-*`` headers of every answer are passed on to the limiter.

The SDK builds its own HTTP client: openai 1.x and 2.x on ``httpx``, 3.x on ``httpx2``.
Passing one of ours would tie the code to one of them (and to a package the SDK no
longer depends on); its default pool (``openai.DEFAULT_CONNECTION_LIMITS``) is larger
than any per-task concurrency, so ``pool`` needs no setting here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import Field

from fmf_spark._deps import require
from fmf_spark.config.base import SecretRef
from fmf_spark.config.inference import ProviderConfig
from fmf_spark.errors import (
    AuthError,
    ContentFiltered,
    ContextLengthExceeded,
    InferenceError,
    InvalidRequest,
    QuotaExhausted,
    RateLimited,
    Transient,
)
from fmf_spark.inference.base import (
    Completion,
    CompletionParams,
    Message,
    RateLimitInfo,
    TokenCallback,
)
from fmf_spark.inference.providers import register_provider

if TYPE_CHECKING:
    from fmf_spark.inference.providers import ProviderRuntime


class AzureOpenAIProviderConfig(ProviderConfig):
    """An Azure OpenAI deployment: API key, else Entra ID (azure-identity)."""

    type: Literal["azure_openai"] = "azure_openai"
    endpoint: str = Field(description="https://<resource>.openai.azure.com")
    api_version: str = "2024-10-21"
    deployment: str
    model: str | None = Field(default=None, description="Model name for the price table.")
    api_key: SecretRef | None = Field(
        default=None, description="Default: Entra ID (azure-identity)."
    )

    def model_name(self) -> str:
        return self.model or self.deployment


class OpenAIProviderConfig(ProviderConfig):
    """The OpenAI API or any compatible endpoint."""

    type: Literal["openai"] = "openai"
    base_url: str | None = None
    model: str
    api_key: SecretRef | None = None

    def model_name(self) -> str:
        return self.model


def parse_duration(value: str | None) -> float | None:
    """Seconds from an OpenAI reset header (``"1s"``, ``"6m0s"``, ``"120ms"``, ``"2.5"``)."""
    if not value:
        return None
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    total, number = 0.0, ""
    i = 0
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    while i < len(value):
        ch = value[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = "ms" if value[i : i + 2] == "ms" else ch
        if unit not in units or not number:
            return None
        total += float(number) * units[unit]
        number = ""
        i += len(unit)
    return total


def retry_after_from(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (preferred) or ``retry-after``."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    seconds = headers.get("retry-after")
    if seconds:
        try:
            return float(seconds)
        except ValueError:
            return None  # an HTTP date: rare for these APIs; fall back to backoff
    return None


def rate_limit_from(headers: Mapping[str, str] | None) -> RateLimitInfo | None:
    """The ``x-ratelimit-*`` headers, when present."""
    if not headers:
        return None

    def as_int(name: str) -> int | None:
        v = headers.get(name)
        try:
            return int(float(v)) if v is not None else None
        except ValueError:
            return None

    info = RateLimitInfo(
        remaining_requests=as_int("x-ratelimit-remaining-requests"),
        remaining_tokens=as_int("x-ratelimit-remaining-tokens"),
        reset_requests_s=parse_duration(headers.get("x-ratelimit-reset-requests")),
        reset_tokens_s=parse_duration(headers.get("x-ratelimit-reset-tokens")),
    )
    if info.remaining_requests is None and info.remaining_tokens is None:
        return None
    return info


def map_openai_error(exc: Exception) -> InferenceError:
    """An openai SDK exception as the matching :class:`InferenceError`."""
    openai = require("openai")
    if isinstance(exc, openai.APITimeoutError):
        return Transient(f"request timed out: {exc}")
    if isinstance(exc, openai.APIConnectionError):
        return Transient(f"connection error: {exc}")
    if isinstance(exc, openai.APIResponseValidationError):
        return Transient(f"malformed response body: {exc}")
    if not isinstance(exc, openai.APIStatusError):
        return InferenceError(f"{type(exc).__name__}: {exc}")
    status = exc.status_code
    headers = exc.response.headers if exc.response is not None else None
    body = exc.body if isinstance(exc.body, dict) else {}
    code = str(exc.code or body.get("code") or "")
    message = str(body.get("message") or exc.message)
    text = f"HTTP {status} {code}: {message}".replace(" : ", ": ")
    # the limiter adapts to the headers of failed calls too
    error = _status_error(status, code, message, text, headers)
    error.rate_limit = rate_limit_from(headers)
    return error


def _status_error(
    status: int, code: str, message: str, text: str, headers: Mapping[str, str] | None
) -> InferenceError:
    """The error of an HTTP status (and the provider's error code and message)."""
    error: InferenceError
    if status == 429:
        if code == "insufficient_quota" or (
            "quota" in message.lower() and "daily" in message.lower()
        ):
            error = QuotaExhausted(
                text, hint="the provider's quota is spent until it resets; rerun then"
            )
        else:
            error = RateLimited(text, retry_after=retry_after_from(headers))
    elif status == 408 or status >= 500 or status == 409:
        error = Transient(text, retry_after=retry_after_from(headers))
    elif status in (401, 403):
        error = AuthError(text, hint="check the API key or the identity's role on the resource")
    elif code == "content_filter" or "content management policy" in message:
        error = ContentFiltered(text)
    elif code == "context_length_exceeded" or "maximum context length" in message:
        error = ContextLengthExceeded(text, hint="shorten the chunks or the prompt")
    else:
        error = InvalidRequest(text)
    return error


class OpenAIChatAdapter:
    """One call to a chat completions endpoint (OpenAI, Azure OpenAI, compatible)."""

    def __init__(self, client: Any, model: str, *, request_model: str | None = None) -> None:
        self._client = client
        #: the name in the price table and the outputs
        self.model = model
        #: what goes in the request (the deployment name on Azure)
        self._request_model = request_model or model

    def _kwargs(self, messages: Sequence[Message], params: CompletionParams) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self._request_model,
            "messages": [m.to_dict() for m in messages],
            "max_tokens": params.max_tokens,
        }
        if params.temperature is not None:
            kwargs["temperature"] = params.temperature
        if params.stop:
            kwargs["stop"] = list(params.stop)
        if params.response_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": params.schema_name,
                    "schema": dict(params.response_schema),
                    "strict": False,
                },
            }
        return kwargs

    def complete(
        self,
        messages: Sequence[Message],
        params: CompletionParams,
        *,
        on_token: TokenCallback | None = None,
    ) -> Completion:
        """One call, no retry; raises an :class:`InferenceError` subclass on failure."""
        openai = require("openai")
        kwargs = self._kwargs(messages, params)
        started = time.monotonic()
        try:
            if on_token is not None:
                return self._stream(kwargs, on_token, started)
            raw = self._client.chat.completions.with_raw_response.create(**kwargs)
            headers = raw.headers
            try:
                response = raw.parse()
                choice = response.choices[0]
            except (ValueError, AttributeError, IndexError, TypeError) as exc:
                raise Transient(f"malformed response body: {type(exc).__name__}") from None
        except openai.OpenAIError as exc:
            raise map_openai_error(exc) from None
        latency = int((time.monotonic() - started) * 1000)
        finish = str(choice.finish_reason or "stop")
        text = choice.message.content or ""
        if finish == "content_filter":
            raise ContentFiltered("the completion was filtered (finish_reason=content_filter)")
        usage = response.usage
        return Completion(
            text=text,
            prompt_tokens=int(usage.prompt_tokens) if usage else 0,
            completion_tokens=int(usage.completion_tokens) if usage else 0,
            finish_reason=finish,
            latency_ms=latency,
            model=self.model,
            rate_limit=rate_limit_from(headers),
        )

    def _stream(
        self, kwargs: dict[str, Any], on_token: TokenCallback, started: float
    ) -> Completion:
        kwargs = {**kwargs, "stream": True, "stream_options": {"include_usage": True}}
        raw = self._client.chat.completions.with_raw_response.create(**kwargs)
        headers = raw.headers
        parts: list[str] = []
        finish = "stop"
        prompt_tokens = completion_tokens = 0
        for chunk in raw.parse():
            if chunk.usage is not None:
                prompt_tokens = int(chunk.usage.prompt_tokens)
                completion_tokens = int(chunk.usage.completion_tokens)
            for choice in chunk.choices:
                if choice.delta is not None and choice.delta.content:
                    parts.append(choice.delta.content)
                    on_token(choice.delta.content)
                if choice.finish_reason:
                    finish = str(choice.finish_reason)
        if finish == "content_filter":
            raise ContentFiltered("the completion was filtered (finish_reason=content_filter)")
        return Completion(
            text="".join(parts),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason=finish,
            latency_ms=int((time.monotonic() - started) * 1000),
            model=self.model,
            rate_limit=rate_limit_from(headers),
        )

    def close(self) -> None:
        self._client.close()


def openai_adapter(
    *,
    base_url: str | None,
    api_key: str | None,
    model: str,
    timeout_s: float,
    pool: int,
    request_model: str | None = None,
) -> OpenAIChatAdapter:
    """An adapter for the OpenAI API or a compatible endpoint (the simulator, Databricks).

    ``pool`` (the task's concurrency) is accepted for the same signature as the other
    providers; the SDK's default pool is larger than it. ``request_model`` is what the
    requests name (a serving endpoint), when it differs from ``model`` (the price table's).
    """
    openai = require("openai")
    client = openai.OpenAI(
        base_url=base_url,
        api_key=api_key or "unused",
        max_retries=0,
        timeout=timeout_s,
    )
    return OpenAIChatAdapter(client, model, request_model=request_model)


def azure_openai_adapter(
    *,
    endpoint: str,
    deployment: str,
    api_version: str,
    api_key: str | None,
    model: str,
    timeout_s: float,
    pool: int,
) -> OpenAIChatAdapter:
    """An adapter for an Azure OpenAI deployment: API key, else Entra ID (azure-identity)."""
    openai = require("openai")
    auth: dict[str, Any]
    if api_key is not None:
        auth = {"api_key": api_key}
    else:
        identity = require("azure.identity")
        auth = {
            "azure_ad_token_provider": identity.get_bearer_token_provider(
                identity.DefaultAzureCredential(), "https://cognitiveservices.azure.com/.default"
            )
        }
    client = openai.AzureOpenAI(
        azure_endpoint=endpoint,
        api_version=api_version,
        max_retries=0,
        timeout=timeout_s,
        **auth,
    )
    return OpenAIChatAdapter(client, model, request_model=deployment)


def _openai_client(rt: ProviderRuntime, pool: int) -> OpenAIChatAdapter:
    cfg = cast(OpenAIProviderConfig, rt.config)  # the registry key is the config's type
    return openai_adapter(
        base_url=cfg.base_url,
        api_key=rt.secret("api_key"),
        model=cfg.model_name(),
        timeout_s=cfg.timeout_s,
        pool=pool,
    )


def _azure_client(rt: ProviderRuntime, pool: int) -> OpenAIChatAdapter:
    cfg = cast(AzureOpenAIProviderConfig, rt.config)  # the registry key is the config's type
    return azure_openai_adapter(
        endpoint=cfg.endpoint,
        deployment=cfg.deployment,
        api_version=cfg.api_version,
        api_key=rt.secret("api_key"),
        model=cfg.model_name(),
        timeout_s=cfg.timeout_s,
        pool=pool,
    )


register_provider("azure_openai", AzureOpenAIProviderConfig, _azure_client)
register_provider("openai", OpenAIProviderConfig, _openai_client)
