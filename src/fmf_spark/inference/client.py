"""The retry policy around one provider adapter: :class:`RetryingClient`.

- **Retryable** (:class:`~fmf_spark.errors.RetryableInferenceError`): 429s are retried
  for as long as ``retry.max_rate_limited_s`` allows (the provider says when to come
  back: its ``Retry-After`` is honoured through the shared limiter, which holds every
  task until then); other transient failures (5xx, 408, timeouts, connection errors,
  malformed bodies) at most ``retry.max_attempts`` calls, with exponential backoff and
  full jitter, never shorter than the provider's ``Retry-After``.
- **Not retryable**: raised after exactly one call. :class:`~fmf_spark.errors.QuotaExhausted`
  also stops the shared limiter, so no task calls again.
- **Structured output**: the answer is validated against the schema; invalid JSON is an
  :class:`~fmf_spark.errors.InvalidOutput`, or one repair call when ``repair_retry``.

Every raised error carries ``attempts`` (calls made) and ``elapsed_ms``, and
:class:`InvalidOutput` the ``completion`` that failed validation (its tokens were paid):
fields every :class:`~fmf_spark.errors.InferenceError` declares.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fmf_spark.config.inference import RetryConfig
from fmf_spark.errors import (
    InferenceError,
    InvalidOutput,
    QuotaExhausted,
    RateLimited,
    RetryableInferenceError,
)
from fmf_spark.inference.base import (
    Completion,
    CompletionParams,
    LLMClient,
    Message,
    TokenCallback,
)
from fmf_spark.inference.limiter import Limiter, UnlimitedLimiter
from fmf_spark.inference.structured import REPAIR_INSTRUCTION, parse_structured
from fmf_spark.inference.tokens import estimate_prompt_tokens
from fmf_spark.observability.telemetry import note_rate_limited, note_sent


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds and backoff of retries (see the module doc)."""

    max_attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_rate_limited_s: float = 900.0

    @classmethod
    def from_config(cls, cfg: RetryConfig) -> RetryPolicy:
        return cls(cfg.max_attempts, cfg.base_delay_s, cfg.max_delay_s, cfg.max_rate_limited_s)

    def backoff(self, failures: int, retry_after: float | None, rng: random.Random) -> float:
        """Full-jitter exponential delay, never shorter than the provider's Retry-After."""
        cap = min(self.max_delay_s, self.base_delay_s * 2 ** max(0, failures - 1))
        delay = rng.uniform(0, cap)
        return max(delay, retry_after or 0.0)


class RetryingClient:
    """An :class:`LLMClient` with the retry policy and the shared limiter.

    Example:
        >>> client = RetryingClient(runtime.adapter(), RetryPolicy(), limiter)  # doctest: +SKIP
        >>> client.complete([Message("user", "Hi")], CompletionParams(max_tokens=50)).text  # doctest: +SKIP
    """

    def __init__(
        self,
        adapter: LLMClient,
        policy: RetryPolicy | None = None,
        limiter: Limiter | None = None,
        *,
        repair_retry: bool = False,
        refund_unused_completion: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
    ) -> None:
        self.adapter = adapter
        self.model = adapter.model
        self.policy = policy or RetryPolicy()
        self.limiter: Limiter = limiter or UnlimitedLimiter()
        self.repair_retry = repair_retry
        #: the provider gives back unused max_tokens after the answer (Bedrock)
        self.refund_unused_completion = refund_unused_completion
        self._sleep = sleep
        self._rng = random.Random(seed)

    def complete(
        self,
        messages: Sequence[Message],
        params: CompletionParams,
        *,
        on_token: TokenCallback | None = None,
    ) -> Completion:
        """Call until an answer, a non-retryable error or the retry bounds."""
        started = time.monotonic()
        msgs = list(messages)
        attempts = transient_failures = 0
        rate_limited_since: float | None = None
        repaired = False
        while True:
            charge = estimate_prompt_tokens([m.to_dict() for m in msgs], self.model)
            charge += params.max_tokens
            try:
                lease = self.limiter.acquire(charge)
            except InferenceError as exc:
                raise _annotate(exc, attempts, started) from None
            attempts += 1
            note_sent()  # the call's timings (run report, spans): admitted now
            try:
                completion = self.adapter.complete(msgs, params, on_token=on_token)
            except RateLimited as exc:
                now = time.monotonic()
                rate_limited_since = rate_limited_since or now
                wait = exc.retry_after
                if wait is None:  # no Retry-After (Bedrock): back off, and hold every task
                    wait = self.policy.backoff(attempts, None, self._rng)
                note_rate_limited(wait)
                self.limiter.report(lease, retry_after=wait, rate_limit=exc.rate_limit)
                if now - rate_limited_since + wait > self.policy.max_rate_limited_s:
                    raise _annotate(exc, attempts, started) from None
                # the shared limiter now holds every task until the reset; this call
                # waits too, which also covers a client without a quota configured
                self._sleep(wait)
                continue
            except QuotaExhausted as exc:
                self.limiter.report(lease, quota_exhausted=exc.message)
                raise _annotate(exc, attempts, started) from None
            except InferenceError as exc:
                self.limiter.report(lease, rate_limit=exc.rate_limit)
                if not exc.retryable:
                    raise _annotate(exc, attempts, started) from None
                transient_failures += 1
                if transient_failures >= self.policy.max_attempts:
                    raise _annotate(exc, attempts, started) from None
                retry_after = exc.retry_after if isinstance(exc, RetryableInferenceError) else None
                self._sleep(self.policy.backoff(transient_failures, retry_after, self._rng))
                continue
            actual = completion.prompt_tokens + (
                completion.completion_tokens if self.refund_unused_completion else params.max_tokens
            )
            self.limiter.report(lease, actual=actual, rate_limit=completion.rate_limit)
            completion.attempts = attempts
            if params.response_schema is None:
                return completion
            try:
                completion.json = parse_structured(completion.text, params.response_schema)
                return completion
            except InvalidOutput as exc:
                if self.repair_retry and not repaired:
                    repaired = True
                    msgs = [
                        *msgs,
                        Message("assistant", completion.text),
                        Message("user", REPAIR_INSTRUCTION.format(error=exc.message)),
                    ]
                    continue
                exc.completion = completion
                raise _annotate(exc, attempts, started) from None

    def close(self) -> None:
        self.adapter.close()


def _annotate(exc: InferenceError, attempts: int, started: float) -> InferenceError:
    exc.attempts = attempts
    exc.elapsed_ms = int((time.monotonic() - started) * 1000)
    return exc
