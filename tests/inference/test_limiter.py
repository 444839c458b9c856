"""The job-wide limiter: the GCRA schedule, its corrections, and the broker over HTTP."""

from __future__ import annotations

import random
import threading

import pytest

from fmf_spark.errors import InferenceError, QuotaExhausted
from fmf_spark.inference import QuotaBroker, QuotaBucket, QuotaSpec, RateLimitInfo
from fmf_spark.inference.limiter import BrokerLimiter, BrokerSpec, LimiterUnreachable


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def schedule(bucket: QuotaBucket, clock: Clock, charges: list[int]) -> list[float]:
    """Admission times of requests all asked for at the current time."""
    return [clock.now + bucket.reserve(c) for c in charges]


def max_in_any_window(starts: list[float], weights: list[float], window: float) -> float:
    # the worst fixed window starts at some admission time
    return max(
        sum(w for s, w in zip(starts, weights, strict=True) if a <= s < a + window) for a in starts
    )


def test_requests_never_exceed_the_quota_in_any_window() -> None:
    clock = Clock()
    bucket = QuotaBucket(QuotaSpec(600, None, window_s=10, headroom=0.02), clock)
    starts = schedule(bucket, clock, [100] * 500)
    assert max_in_any_window(starts, [1.0] * 500, 10) <= 100
    # and it aims at the quota: 98 % of 10 requests per second
    assert len(starts) / starts[-1] == pytest.approx(9.8, rel=0.01)


def test_tokens_never_exceed_the_quota_even_with_uneven_requests() -> None:
    clock = Clock()
    bucket = QuotaBucket(QuotaSpec(None, 60_000, window_s=10, headroom=0.02), clock)
    rng = random.Random(3)
    charges = [rng.randint(50, 900) for _ in range(400)]
    starts = schedule(bucket, clock, charges)
    assert max_in_any_window(starts, [float(c) for c in charges], 10) <= 10_000


def test_small_quota_over_short_windows_still_holds() -> None:
    clock = Clock()
    bucket = QuotaBucket(QuotaSpec(120, None, window_s=1, headroom=0.02), clock)  # 2 per second
    starts = schedule(bucket, clock, [1] * 50)
    assert max_in_any_window(starts, [1.0] * 50, 1) <= 2


def test_a_429_holds_every_request_until_retry_after() -> None:
    clock = Clock()
    bucket = QuotaBucket(QuotaSpec(6000, None), clock)
    bucket.reserve(10)
    bucket.report(charged=10, retry_after=5.0)
    assert bucket.reserve(10) == pytest.approx(5.0)


def test_spent_window_in_the_headers_pauses_until_the_reset() -> None:
    clock = Clock()
    bucket = QuotaBucket(QuotaSpec(6000, None), clock)
    bucket.reserve(10)
    clock.now = 1.0
    spent = RateLimitInfo(remaining_requests=0, remaining_tokens=5000, reset_requests_s=3.0)
    bucket.report(charged=10, rate_limit=spent, age_s=0.5)
    assert bucket.reserve(10) == pytest.approx(2.5)
    # headers that leave room do not pause
    room = RateLimitInfo(remaining_requests=40, remaining_tokens=5000, reset_requests_s=3.0)
    bucket.report(charged=10, rate_limit=room, age_s=0.0)
    clock.now = 10.0
    assert bucket.reserve(10) == 0.0


def test_reported_usage_corrects_the_token_schedule() -> None:
    clock = Clock()
    spec = QuotaSpec(None, 6000, window_s=60, headroom=0.0)
    bucket = QuotaBucket(spec, clock)
    # the rate leaves room for one largest request per window: (6000 - 1000) / 60 per second
    rate = (6000 - 1000) / 60
    bucket.reserve(1000)
    bucket.report(charged=1000, actual=200)  # the provider charged 200: 800 given back
    assert bucket.reserve(10) == pytest.approx(200 / rate)


def test_quota_exhaustion_stops_the_bucket() -> None:
    bucket = QuotaBucket(QuotaSpec(600, None))
    bucket.report(charged=10, quota_exhausted="daily quota spent")
    with pytest.raises(QuotaExhausted, match="daily quota spent"):
        bucket.reserve(10)


def test_the_broker_schedules_threads_of_several_clients_as_one() -> None:
    broker = QuotaBroker("127.0.0.1", clock=Clock())  # time stands still: only the schedule moves
    broker.register("p", QuotaSpec(60_000, None, window_s=10, headroom=0.0))  # 1000 per s
    delays: list[float] = []
    lock = threading.Lock()

    def record(d: float) -> None:
        with lock:
            delays.append(d)

    def worker() -> None:
        limiter = BrokerLimiter(broker.client_spec("p"), sleep=record)
        for _ in range(25):
            lease = limiter.acquire(10)
            limiter.report(lease, actual=10)
        limiter.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    broker.close()
    # 100 reservations from 4 clients on one schedule: consecutive slots, none shared
    # (rate: one request of headroom per window, (10_000 - 1) / 10 per second)
    assert sorted(delays) == pytest.approx([k / 999.9 for k in range(1, 100)])


def test_the_broker_refuses_a_wrong_token_and_reports_stops() -> None:
    broker = QuotaBroker("127.0.0.1")
    broker.register("p", QuotaSpec(600, None))
    good = BrokerLimiter(broker.client_spec("p"))
    bad = BrokerLimiter(BrokerSpec("127.0.0.1", broker.port, "wrong", "p"))
    with pytest.raises(InferenceError, match="403"):
        bad.acquire(1)
    lease = good.acquire(1)
    good.report(lease, quota_exhausted="CapacityLimitExceeded")
    with pytest.raises(QuotaExhausted, match="CapacityLimitExceeded"):
        good.acquire(1)
    assert "wrong" not in repr(bad.spec)
    broker.close()


def test_an_unreachable_broker_is_a_retryable_row_error() -> None:
    limiter = BrokerLimiter(BrokerSpec("127.0.0.1", 9, "t", "p"), sleep=lambda _: None)
    with pytest.raises(LimiterUnreachable) as caught:
        limiter.acquire(1)
    assert caught.value.retryable


def test_static_mode_gives_each_task_its_share() -> None:
    from fmf_spark.inference.limiter import LocalLimiter, UnlimitedLimiter
    from fmf_spark.inference.runner import make_limiter

    spec = QuotaSpec(600, 100_000, window_s=10, refund_unused_completion=True)
    half = spec.divided(2)
    assert (half.requests_per_minute, half.tokens_per_minute) == (300, 50_000)
    assert half.window_s == 10 and half.refund_unused_completion
    assert isinstance(make_limiter(half), LocalLimiter)
    assert isinstance(make_limiter(None), UnlimitedLimiter)
    assert isinstance(make_limiter(BrokerSpec("127.0.0.1", 1, "t", "p")), BrokerLimiter)
