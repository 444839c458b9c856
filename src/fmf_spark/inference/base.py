"""Message and completion types, and the :class:`LLMClient` protocol."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

#: called with each piece of text as it streams in
TokenCallback = Callable[[str], None]


@dataclass(frozen=True)
class Message:
    """One chat message (``system``, ``user`` or ``assistant``)."""

    role: str
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def parse_messages(value: str | Sequence[Mapping[str, Any] | Message]) -> list[Message]:
    """Messages from the runner's ``messages`` column (a JSON list) or a list of mappings.

    Raises:
        ValueError: not a non-empty list of ``{"role", "content"}`` objects with a known role.
    """
    items: Any = json.loads(value) if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError("messages must be a non-empty JSON list")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, Message):
            out.append(item)
            continue
        if not isinstance(item, Mapping) or "role" not in item or "content" not in item:
            raise ValueError(f"message {i} must be an object with role and content")
        role = str(item["role"])
        if role not in ("system", "user", "assistant"):
            raise ValueError(f"message {i} has role {role!r}; allowed: system, user, assistant")
        out.append(Message(role, "" if item["content"] is None else str(item["content"])))
    return out


@dataclass(frozen=True)
class CompletionParams:
    """Generation parameters shared by every provider."""

    max_tokens: int = 1024
    temperature: float | None = None
    stop: tuple[str, ...] | None = None
    response_schema: Mapping[str, Any] | None = None
    schema_name: str = "output"


@dataclass(frozen=True)
class RateLimitInfo:
    """What the provider's ``x-ratelimit-*`` headers said about the quota left."""

    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests_s: float | None = None
    reset_tokens_s: float | None = None


@dataclass
class Completion:
    """One model answer.

    Attributes:
        text: the answer text (for structured output: the JSON text).
        json: the parsed JSON when a response schema was requested.
        prompt_tokens: prompt tokens reported by the provider.
        completion_tokens: completion tokens reported by the provider.
        finish_reason: ``stop``, ``length``, ``tool_use``...
        latency_ms: wall time of the call that produced this answer.
        attempts: calls made for this answer, retries included.
        model: the model that answered.
        rate_limit: the provider's rate-limit headers, when it sends them.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    latency_ms: int
    model: str
    json: Any = None
    attempts: int = 1
    rate_limit: RateLimitInfo | None = field(default=None, repr=False)


class LLMClient(Protocol):
    """A chat model behind one provider.

    ``complete`` raises an :class:`~fmf_spark.errors.InferenceError` subclass on
    failure: the retry policy branches on its type.
    """

    model: str

    def complete(
        self,
        messages: Sequence[Message],
        params: CompletionParams,
        *,
        on_token: TokenCallback | None = None,
    ) -> Completion: ...

    def close(self) -> None: ...
