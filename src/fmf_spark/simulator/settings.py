"""Settings of the local LLM endpoint simulator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal[
    "rate_limit",  # 429 with Retry-After (ThrottlingException on Bedrock)
    "server_error",  # 500 (InternalServerException)
    "unavailable",  # 503 (ServiceUnavailableException)
    "request_timeout",  # 408 (ModelTimeoutException)
    "timeout",  # the server hangs for `hang_s`, then closes the connection
    "content_filter",  # the prompt is refused (400 content_filter / guardrail_intervened)
    "content_filter_output",  # 200 with finish_reason=content_filter
    "malformed",  # 200 with a body that is not JSON
    "bad_request",  # 400 (ValidationException)
    "context_length",  # 400 context_length_exceeded ("Input is too long")
    "auth",  # 401 (UnrecognizedClientException / AccessDeniedException)
    "quota_exhausted",  # 429 insufficient_quota (ServiceQuotaExceededException)
    "invalid_json",  # 200, but the answer to a JSON-schema request is not JSON
]

FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]

TokenAccounting = Literal[
    "prompt_and_max_tokens",  # Azure OpenAI's documented estimate: prompt + max_tokens
    "max_tokens",  # some OpenAI-compatible gateways: max_tokens only, the prompt is free
]

TOKEN_ACCOUNTINGS: tuple[str, ...] = TokenAccounting.__args__  # type: ignore[attr-defined]


@dataclass
class FaultRule:
    """Inject a fault into requests whose last user message contains ``match``.

    Args:
        kind: the fault to inject.
        match: substring of the last user message; empty matches every request.
        times: inject into the first ``times`` matching requests only; ``None``: always.
        retry_after_s: the ``Retry-After`` sent with a ``rate_limit`` fault.
    """

    kind: FaultKind
    match: str = ""
    times: int | None = None
    retry_after_s: float = 0.2


@dataclass
class SimulatorSettings:
    """How the simulator behaves.

    Quotas are enforced the way Azure OpenAI does: the per-minute quota is divided into
    fixed windows of ``window_s`` seconds (Azure uses 1 s or 10 s), each allowing
    ``quota * window_s / 60`` requests and tokens; a request is charged at admission
    (``token_accounting``: prompt tokens plus ``max_tokens``, or ``max_tokens`` only);
    a request over either limit gets a 429 with ``Retry-After`` (the time until the
    window resets) and is not charged. Every answer of the OpenAI and Azure routes,
    429s included, carries ``x-ratelimit-remaining-requests`` /
    ``x-ratelimit-remaining-tokens`` (what is left in the current window after this
    request) and ``x-ratelimit-reset-requests`` / ``x-ratelimit-reset-tokens`` (time
    until the window resets). The Bedrock route behaves like Bedrock: no rate-limit
    headers, a ``ThrottlingException`` without ``Retry-After`` when over quota, and the
    unused part of ``max_tokens`` given back after the answer.

    Args:
        host: interface to bind.
        port: port; 0 picks a free one.
        requests_per_minute: RPM quota; ``None``: unlimited.
        tokens_per_minute: TPM quota; ``None``: unlimited.
        window_s: enforcement window in seconds.
        latency_ms: mean latency of an answer.
        latency_sigma: shape of the log-normal latency distribution; 0: constant.
        error_5xx_ratio: share of admitted requests answered with a 500 or 503.
        timeout_ratio: share of admitted requests that hang for ``hang_s``.
        content_filter_ratio: share of admitted requests refused by the content filter.
        malformed_ratio: share of admitted requests answered with a body that is not JSON.
        hang_s: how long a ``timeout`` fault hangs before closing the connection.
        faults: targeted, deterministic faults (tests).
        default_max_tokens: charged when a request sets no ``max_tokens``.
        token_accounting: what a request is charged against the token quota.
        daily_request_limit: after this many admitted requests every request gets a
            non-retryable quota-exhausted error (a daily quota).
        api_key: when set, requests must carry it (``api-key`` or ``Authorization:
            Bearer``) on the OpenAI routes, else 401.
        seed: seed of the random faults and latencies.
    """

    host: str = "127.0.0.1"
    port: int = 0
    requests_per_minute: int | None = 600
    tokens_per_minute: int | None = 200_000
    window_s: float = 10.0
    latency_ms: float = 20.0
    latency_sigma: float = 0.3
    error_5xx_ratio: float = 0.0
    timeout_ratio: float = 0.0
    content_filter_ratio: float = 0.0
    malformed_ratio: float = 0.0
    hang_s: float = 30.0
    faults: list[FaultRule] = field(default_factory=list)
    default_max_tokens: int = 1024
    token_accounting: TokenAccounting = "prompt_and_max_tokens"
    daily_request_limit: int | None = None
    api_key: str | None = None
    seed: int = 0

    def charge(self, prompt_tokens: int, max_tokens: int) -> int:
        """Tokens one request is charged against the token quota at admission."""
        if self.token_accounting == "max_tokens":
            return max_tokens
        return prompt_tokens + max_tokens

    def window_limits(self) -> tuple[float | None, float | None]:
        """(requests, tokens) allowed per window; ``None`` when unlimited."""
        scale = self.window_s / 60.0
        requests = max(1.0, self.requests_per_minute * scale) if self.requests_per_minute else None
        tokens = max(1.0, self.tokens_per_minute * scale) if self.tokens_per_minute else None
        return requests, tokens
