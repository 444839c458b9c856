"""Amazon Bedrock through boto3 ``bedrock-runtime`` and the Converse API.

Structured output uses Converse tool use: the schema becomes the input schema of one
tool and ``toolChoice`` forces the model to call it, so the answer is the tool's input.
botocore's retries are off (``total_max_attempts=1``): the retry policy owns them.
Streaming (``converse_stream``) is not used; a streaming callback gets the whole answer
in one piece.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

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
from fmf_spark.inference.azure_openai import retry_after_from
from fmf_spark.inference.base import Completion, CompletionParams, Message, TokenCallback
from fmf_spark.inference.providers import register_provider

if TYPE_CHECKING:
    from fmf_spark.inference.providers import ProviderRuntime


class BedrockProviderConfig(ProviderConfig):
    """A Bedrock model through the Converse API."""

    # Bedrock gives back the unused part of max_tokens after the answer
    refunds_unused_completion: ClassVar[bool] = True

    type: Literal["bedrock"] = "bedrock"
    region: str | None = None
    model_id: str
    endpoint_url: str | None = Field(default=None, description="Override, e.g. the simulator.")
    access_key_id: SecretRef | None = None
    secret_access_key: SecretRef | None = None

    def model_name(self) -> str:
        return self.model_id


_RATE_LIMITED = {"ThrottlingException", "TooManyRequestsException"}
_TRANSIENT = {
    "ServiceUnavailableException",
    "InternalServerException",
    "ModelTimeoutException",
    "ModelNotReadyException",
    "ModelErrorException",
    "ModelStreamErrorException",
}
_AUTH = {
    "AccessDeniedException",
    "UnrecognizedClientException",
    "ExpiredTokenException",
    "InvalidSignatureException",
}
_FILTERED_STOPS = {"guardrail_intervened", "content_filtered"}


def map_bedrock_error(exc: Exception) -> InferenceError:
    """A botocore exception as the matching :class:`InferenceError`."""
    botocore_exc = require("botocore.exceptions")
    parsers = require("botocore.parsers")
    if isinstance(exc, botocore_exc.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        message = str(err.get("Message", ""))
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        text = f"{code}: {message}"
        if code in _RATE_LIMITED:
            if "CapacityLimitExceeded" in message or "daily" in message.lower():
                return QuotaExhausted(text, hint="the account's quota is spent until it resets")
            return RateLimited(text, retry_after=retry_after_from(headers))
        if code == "ServiceQuotaExceededException" or "CapacityLimitExceeded" in message:
            return QuotaExhausted(text, hint="the account's quota is spent; raise it or wait")
        if code in _TRANSIENT:
            return Transient(text, retry_after=retry_after_from(headers))
        if code in _AUTH:
            return AuthError(text, hint="check the credentials and the bedrock:InvokeModel policy")
        lowered = message.lower()
        if code == "ValidationException" and (
            "too long" in lowered or "context" in lowered or "too many tokens" in lowered
        ):
            return ContextLengthExceeded(text, hint="shorten the chunks or the prompt")
        if code in ("ValidationException", "ResourceNotFoundException"):
            return InvalidRequest(text)
        return InferenceError(text)
    if isinstance(exc, botocore_exc.NoCredentialsError):
        return AuthError("no AWS credentials found", hint="configure access keys or a role")
    if isinstance(
        exc,
        botocore_exc.ConnectionError | botocore_exc.HTTPClientError | parsers.ResponseParserError,
    ):
        return Transient(f"{type(exc).__name__}: {exc}")
    return InferenceError(f"{type(exc).__name__}: {exc}")


class BedrockConverseAdapter:
    """One Converse call to a Bedrock model."""

    def __init__(self, client: Any, model_id: str) -> None:
        self._client = client
        self.model = model_id

    def _kwargs(self, messages: Sequence[Message], params: CompletionParams) -> dict[str, Any]:
        system = [{"text": m.content} for m in messages if m.role == "system"]
        turns = [
            {"role": m.role, "content": [{"text": m.content}]}
            for m in messages
            if m.role != "system"
        ]
        inference: dict[str, Any] = {"maxTokens": params.max_tokens}
        if params.temperature is not None:
            inference["temperature"] = params.temperature
        if params.stop:
            inference["stopSequences"] = list(params.stop)
        kwargs: dict[str, Any] = {
            "modelId": self.model,
            "messages": turns,
            "inferenceConfig": inference,
        }
        if system:
            kwargs["system"] = system
        if params.response_schema is not None:
            kwargs["toolConfig"] = {
                "tools": [
                    {
                        "toolSpec": {
                            "name": params.schema_name,
                            "description": "Record the answer in this structure.",
                            "inputSchema": {"json": dict(params.response_schema)},
                        }
                    }
                ],
                "toolChoice": {"tool": {"name": params.schema_name}},
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
        botocore_exc = require("botocore.exceptions")
        parsers = require("botocore.parsers")
        started = time.monotonic()
        try:
            response = self._client.converse(**self._kwargs(messages, params))
        except (botocore_exc.BotoCoreError, botocore_exc.ClientError) as exc:
            raise map_bedrock_error(exc) from None
        except parsers.ResponseParserError as exc:  # a malformed body
            raise map_bedrock_error(exc) from None
        latency = int((time.monotonic() - started) * 1000)
        if "output" not in response or "stopReason" not in response:
            # botocore turns a body that is not JSON into an empty response, not an error
            raise Transient("malformed response body: no output or stopReason")
        stop = str(response["stopReason"])
        if stop in _FILTERED_STOPS:
            raise ContentFiltered(f"the request was blocked (stopReason={stop})")
        parts = response.get("output", {}).get("message", {}).get("content", [])
        text = ""
        for part in parts:
            if "toolUse" in part:
                text = json.dumps(part["toolUse"].get("input"), ensure_ascii=False)
                break
            text += part.get("text", "")
        usage = response.get("usage", {})
        if on_token is not None and text:
            on_token(text)
        return Completion(
            text=text,
            prompt_tokens=int(usage.get("inputTokens", 0)),
            completion_tokens=int(usage.get("outputTokens", 0)),
            finish_reason={"end_turn": "stop", "max_tokens": "length"}.get(stop, stop),
            latency_ms=latency,
            model=self.model,
        )

    def close(self) -> None:
        self._client.close()


def bedrock_adapter(
    *,
    model_id: str,
    region: str | None,
    endpoint_url: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    timeout_s: float,
    pool: int,
) -> BedrockConverseAdapter:
    """An adapter for a Bedrock model; credentials from config, else boto3's default chain."""
    boto3 = require("boto3")
    config_mod = require("botocore.config")
    config = config_mod.Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        read_timeout=timeout_s,
        connect_timeout=min(timeout_s, 10.0),
        max_pool_connections=pool + 2,
    )
    creds: dict[str, Any] = {}
    if access_key_id and secret_access_key:
        creds = {"aws_access_key_id": access_key_id, "aws_secret_access_key": secret_access_key}
    client = boto3.client(
        "bedrock-runtime", region_name=region, endpoint_url=endpoint_url, config=config, **creds
    )
    return BedrockConverseAdapter(client, model_id)


def _bedrock_client(rt: ProviderRuntime, pool: int) -> BedrockConverseAdapter:
    cfg = cast(BedrockProviderConfig, rt.config)  # the registry key is the config's type
    return bedrock_adapter(
        model_id=cfg.model_id,
        region=cfg.region,
        endpoint_url=cfg.endpoint_url,
        access_key_id=rt.secret("access_key_id"),
        secret_access_key=rt.secret("secret_access_key"),
        timeout_s=cfg.timeout_s,
        pool=pool,
    )


register_provider("bedrock", BedrockProviderConfig, _bedrock_client)
