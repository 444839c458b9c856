"""The schedule of one quota: a two-dimensional GCRA without burst (see the package doc)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fmf_spark.errors import QuotaExhausted
from fmf_spark.inference.base import RateLimitInfo


@dataclass(frozen=True)
class QuotaSpec:
    """One provider quota as the limiter enforces it.

    Args:
        requests_per_minute: RPM quota; ``None``: not limited.
        tokens_per_minute: TPM quota; ``None``: not limited.
        window_s: the provider's enforcement window in seconds.
        headroom: share of the quota left unused.
        refund_unused_completion: the provider gives back unused ``max_tokens`` (Bedrock).
    """

    requests_per_minute: float | None
    tokens_per_minute: float | None
    window_s: float = 10.0
    headroom: float = 0.02
    refund_unused_completion: bool = False

    def divided(self, parts: int) -> QuotaSpec:
        """This quota split evenly over ``parts`` independent limiters."""
        parts = max(1, parts)
        return QuotaSpec(
            None if self.requests_per_minute is None else self.requests_per_minute / parts,
            None if self.tokens_per_minute is None else self.tokens_per_minute / parts,
            self.window_s,
            self.headroom,
            self.refund_unused_completion,
        )


@dataclass(frozen=True)
class Lease:
    """A granted slot: what was charged, and when it was granted (monotonic seconds)."""

    tokens: int
    granted_at: float


class QuotaBucket:
    """Two-dimensional GCRA scheduler for one quota (thread-safe; see the module doc)."""

    def __init__(self, spec: QuotaSpec, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self._clock = clock
        self._lock = threading.Lock()
        self._tat_requests = 0.0
        self._tat_tokens = 0.0
        self._blocked_until = 0.0
        self._max_charge = 1
        self.stopped: str | None = None

    def _request_rate(self) -> float | None:
        rpm = self.spec.requests_per_minute
        if rpm is None:
            return None
        per_s = rpm / 60.0
        per_window = per_s * self.spec.window_s
        return max(
            min(per_s * (1 - self.spec.headroom), (per_window - 1) / self.spec.window_s),
            per_s * 0.05,
        )

    def _token_rate(self) -> float | None:
        tpm = self.spec.tokens_per_minute
        if tpm is None:
            return None
        per_s = tpm / 60.0
        per_window = per_s * self.spec.window_s
        by_window = (per_window - self._max_charge) / self.spec.window_s
        return max(min(per_s * (1 - self.spec.headroom), by_window), per_s * 0.05)

    def reserve(self, tokens: int) -> float:
        """Book the next slot for a request charged ``tokens``; return the wait in seconds.

        Raises:
            QuotaExhausted: the bucket was stopped by a non-retryable quota exhaustion.
        """
        with self._lock:
            if self.stopped is not None:
                raise QuotaExhausted(self.stopped)
            now = self._clock()
            self._max_charge = max(self._max_charge, tokens)
            start = max(now, self._tat_requests, self._tat_tokens, self._blocked_until)
            r_rate, t_rate = self._request_rate(), self._token_rate()
            if r_rate is not None:
                self._tat_requests = start + 1.0 / r_rate
            if t_rate is not None:
                self._tat_tokens = start + tokens / t_rate
            return start - now

    def report(
        self,
        *,
        charged: int,
        actual: int | None = None,
        retry_after: float | None = None,
        rate_limit: RateLimitInfo | None = None,
        age_s: float = 0.0,
        quota_exhausted: str | None = None,
    ) -> None:
        """Correct the schedule with what the provider said about one request.

        Args:
            charged: tokens reserved for the request.
            actual: tokens the provider really charged (``None``: as reserved).
            retry_after: the request got a 429; block everyone this many seconds.
            rate_limit: the ``x-ratelimit-*`` headers of the answer.
            age_s: seconds since the request was sent (the headers describe that moment).
            quota_exhausted: the provider's message for a quota that will not clear soon.
        """
        with self._lock:
            now = self._clock()
            if quota_exhausted is not None and self.stopped is None:
                self.stopped = quota_exhausted
            t_rate = self._token_rate()
            if retry_after is not None:
                # rejected: the provider did not charge it, and nobody should send before the reset
                self._blocked_until = max(self._blocked_until, now + retry_after)
                if t_rate is not None:
                    self._tat_tokens -= charged / t_rate
                return
            if actual is not None and t_rate is not None and actual != charged:
                self._tat_tokens = max(self._tat_tokens + (actual - charged) / t_rate, now)
            if rate_limit is not None:
                spent = (
                    rate_limit.remaining_requests is not None and rate_limit.remaining_requests < 1
                ) or (
                    rate_limit.remaining_tokens is not None
                    and rate_limit.remaining_tokens < self._max_charge
                )
                reset = max(rate_limit.reset_requests_s or 0.0, rate_limit.reset_tokens_s or 0.0)
                if spent and reset > age_s:
                    self._blocked_until = max(self._blocked_until, now + reset - age_s)
