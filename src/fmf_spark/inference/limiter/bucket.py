"""The schedule of one quota: a two-dimensional GCRA without burst (see the package doc)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fmf_spark.errors import QuotaExhausted
from fmf_spark.inference.base import RateLimitInfo
from fmf_spark.inference.calibration import Calibration


@dataclass(frozen=True)
class QuotaSpec:
    """One provider quota as the limiter enforces it.

    Args:
        requests_per_minute: RPM quota; ``None``: not limited.
        tokens_per_minute: TPM quota; ``None``: not limited.
        window_s: the provider's enforcement window in seconds.
        headroom: share of the quota left unused.
        refund_unused_completion: the provider gives back unused ``max_tokens`` (Bedrock).
        parts: limiters the deployment's quota is split over (``static`` mode).
    """

    requests_per_minute: float | None
    tokens_per_minute: float | None
    window_s: float = 10.0
    headroom: float = 0.02
    refund_unused_completion: bool = False
    parts: int = 1

    def divided(self, parts: int) -> QuotaSpec:
        """This quota split evenly over ``parts`` independent limiters."""
        parts = max(1, parts)
        return QuotaSpec(
            None if self.requests_per_minute is None else self.requests_per_minute / parts,
            None if self.tokens_per_minute is None else self.tokens_per_minute / parts,
            self.window_s,
            self.headroom,
            self.refund_unused_completion,
            self.parts * parts,
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
        # calibration hook: learns the provider's real charge and our share of its quota
        self.calibration = Calibration(
            spec.requests_per_minute,
            spec.tokens_per_minute,
            spec.window_s,
            parts=spec.parts,
            headroom=spec.headroom,
        )

    def _request_rate(self) -> float | None:
        rpm = self.spec.requests_per_minute
        if rpm is None:
            return None
        per_s = rpm / 60.0 * self.calibration.request_share()
        per_window = per_s * self.spec.window_s
        return max(
            min(per_s * (1 - self.spec.headroom), (per_window - 1) / self.spec.window_s),
            per_s * 0.05,
        )

    def _token_rate(self) -> float | None:
        tpm = self.spec.tokens_per_minute
        if tpm is None:
            return None
        per_s = tpm / 60.0 * self.calibration.token_share()
        per_window = per_s * self.spec.window_s
        by_window = (per_window - self.calibration.charge(self._max_charge)) / self.spec.window_s
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
                self._tat_tokens = start + self.calibration.charge(tokens) / t_rate
            return start - now

    def blocked_for(self) -> float:
        """Seconds until a block set by a 429 or spent headers ends (0: not blocked).

        A slot granted before the block but due inside it would meet a refusal: the
        limiters check this after sleeping and book a new slot instead.
        """
        with self._lock:
            return max(0.0, self._blocked_until - self._clock())

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
            # calibration hook: the rates and charges below already use what it learned
            self.calibration.observe(
                now,
                sent_at=now - age_s,
                estimate=float(charged if actual is None else actual),
                rate_limit=rate_limit,
                rejected=retry_after is not None,
            )
            scaled = self.calibration.charge
            t_rate = self._token_rate()
            if retry_after is not None:
                # rejected: the provider did not charge it, and nobody should send before the reset
                self._blocked_until = max(self._blocked_until, now + retry_after)
                if t_rate is not None:
                    self._tat_tokens -= scaled(charged) / t_rate
                return
            if actual is not None and t_rate is not None and actual != charged:
                self._tat_tokens = max(self._tat_tokens + scaled(actual - charged) / t_rate, now)
            if rate_limit is not None:
                spent = (
                    rate_limit.remaining_requests is not None and rate_limit.remaining_requests < 1
                ) or (
                    rate_limit.remaining_tokens is not None
                    and rate_limit.remaining_tokens < scaled(self._max_charge)
                )
                reset = max(rate_limit.reset_requests_s or 0.0, rate_limit.reset_tokens_s or 0.0)
                if spent and reset > age_s:
                    self._blocked_until = max(self._blocked_until, now + reset - age_s)
