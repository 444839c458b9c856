"""The :class:`Limiter` protocol and the limiters that live in one process."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from fmf_spark.inference.base import RateLimitInfo
from fmf_spark.inference.limiter.bucket import Lease, QuotaBucket, QuotaSpec
from fmf_spark.inference.limiter.remote import BrokerLimiter, BrokerSpec

#: what a task is given to build its limiter: the driver's broker, a quota, or none
LimiterSpec = BrokerSpec | QuotaSpec | None


class Limiter(Protocol):
    """What a client needs from a limiter: a slot before each call, a report after."""

    def acquire(self, tokens: int) -> Lease: ...

    def report(
        self,
        lease: Lease,
        *,
        actual: int | None = None,
        retry_after: float | None = None,
        rate_limit: RateLimitInfo | None = None,
        quota_exhausted: str | None = None,
    ) -> None: ...


class LocalLimiter:
    """A :class:`QuotaBucket` in this process (``static`` mode, the CLI, unit tests)."""

    def __init__(self, spec: QuotaSpec, sleep: Callable[[float], None] = time.sleep) -> None:
        self.bucket = QuotaBucket(spec)
        self._sleep = sleep

    def acquire(self, tokens: int) -> Lease:
        while True:
            delay = self.bucket.reserve(tokens)
            if delay > 0:
                self._sleep(delay)
            if not self.bucket.blocked_for():  # else a 429 came while we slept: book again
                return Lease(tokens, time.monotonic())

    def report(
        self,
        lease: Lease,
        *,
        actual: int | None = None,
        retry_after: float | None = None,
        rate_limit: RateLimitInfo | None = None,
        quota_exhausted: str | None = None,
    ) -> None:
        self.bucket.report(
            charged=lease.tokens,
            actual=actual,
            retry_after=retry_after,
            rate_limit=rate_limit,
            age_s=time.monotonic() - lease.granted_at,
            quota_exhausted=quota_exhausted,
        )


class UnlimitedLimiter:
    """No quota configured: only the per-task concurrency bounds the calls."""

    def acquire(self, tokens: int) -> Lease:
        return Lease(tokens, time.monotonic())

    def report(self, lease: Lease, **kwargs: Any) -> None:
        """Nothing to correct: there is no schedule."""


def make_limiter(spec: LimiterSpec) -> Limiter:
    """The limiter a task uses: the driver's broker, a local bucket, or none."""
    if isinstance(spec, BrokerSpec):
        return BrokerLimiter(spec)
    if isinstance(spec, QuotaSpec):
        return LocalLimiter(spec)
    return UnlimitedLimiter()
