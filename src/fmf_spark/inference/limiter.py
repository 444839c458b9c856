"""The job-wide rate limiter: one quota, shared by every task of a Spark job.

How the quota is shared across executors
-----------------------------------------
A provider's RPM/TPM quota belongs to the deployment, not to a Spark task, so the
limiter must see every request of the job. :class:`QuotaBroker` is a tiny HTTP server
on the **driver** (bound to ``spark.driver.host``, the address executors already use to
reach the driver), holding one :class:`QuotaBucket` per provider. Before each call a
task asks the broker for a slot (``/reserve``: one round trip, a few hundred bytes); the
broker answers with the delay after which the task may send. After the call the task
reports what really happened (``/report``): the tokens the provider counted, a 429 and
its ``Retry-After``, the ``x-ratelimit-remaining-*`` headers, or a quota that will not
clear. Requests from every task on every node therefore pass through one scheduler, so
on a multi-node cluster the sum of all tasks' rates is the configured rate, whatever
the number of executors, tasks or threads, and whatever order Spark runs tasks in.
Executors reach the driver over the cluster network exactly as Spark's own RPC does
(Databricks and EMR allow node-to-node traffic inside the cluster); a per-job random
token in the pickled closure keeps other processes from drawing on the budget. When
executors cannot reach the driver, ``inference.limiter: static`` gives each task
``quota / tasks`` instead (correct only while all tasks run at once; slower otherwise).

The schedule
------------
:class:`QuotaBucket` is a two-dimensional GCRA (virtual scheduling) with no burst:
each admission moves the theoretical arrival time of the request dimension by
``1 / rate`` and of the token dimension by ``tokens / rate``, and a request may start
when both have passed. Without burst, any window of ``W`` seconds admits at most
``rate * W + one request``, so choosing ``rate <= (quota_per_window - 1 request) / W``
(and likewise for tokens, with the largest request seen) keeps every fixed window of
the provider within quota, wherever the provider's window boundaries fall. Rates aim at
``quota * (1 - headroom)`` (2 % by default): close to the quota, not at 429s.

Tokens are estimated the way Azure OpenAI documents its charge: prompt tokens plus
``max_tokens`` at admission; the report corrects the estimate with the prompt tokens the
provider reported, and for Bedrock (which gives back unused ``max_tokens``) with the
completion tokens too. What the provider really charges, and which share of the quota
someone else on the same deployment uses, is learned from its answers by the bucket's
:class:`~fmf_spark.inference.calibration.Calibration` (the ``x-ratelimit-remaining-*``
headers, and 429s): the bucket charges ``calibration.charge(estimate)`` and paces at
``calibration.request_share()`` / ``token_share()`` of the configured quota.

A 429 blocks the whole bucket until its ``Retry-After`` has passed; a response whose
``x-ratelimit-remaining-*`` headers say the provider's window is spent (another consumer
shares the quota, say) blocks it until the reset the headers give. A task thread whose
slot, granted earlier, falls inside such a block books a new one instead of sending
into a refusal (the broker's answers tell every task about the block).
A non-retryable quota exhaustion stops the bucket: every later reservation fails fast
with :class:`~fmf_spark.errors.QuotaExhausted` instead of calling the provider.
"""

from __future__ import annotations

import http.client
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from fmf_spark.errors import InferenceError, QuotaExhausted
from fmf_spark.inference.base import RateLimitInfo
from fmf_spark.inference.calibration import Calibration
from fmf_spark.observability.logging import get_logger

log = get_logger(__name__)


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


# --- the broker ---------------------------------------------------------------------------


class LimiterUnreachable(InferenceError):
    """The quota broker on the driver cannot be reached from this executor."""

    code = "inference.limiter_unreachable"
    retryable = True


class QuotaBroker:
    """The driver-side HTTP server that owns the job's quota buckets.

    One per driver process (:meth:`shared`); buckets are registered by key (provider and
    quota), so two steps calling the same deployment at once share one budget.
    """

    _shared: QuotaBroker | None = None
    _shared_lock = threading.Lock()

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.token = secrets.token_urlsafe(24)
        self._clock = clock
        self._buckets: dict[str, QuotaBucket] = {}
        self._lock = threading.Lock()
        handler = type("_BoundBrokerHandler", (_BrokerHandler,), {"broker": self})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="fmf-quota-broker", daemon=True
        )
        self._thread.start()
        self.host = host
        self.port = int(self._httpd.server_address[1])

    @classmethod
    def shared(cls, host: str = "127.0.0.1") -> QuotaBroker:
        """The broker of this driver process, started on first use."""
        with cls._shared_lock:
            if cls._shared is None or cls._shared.host != host:
                cls._shared = cls(host)
            return cls._shared

    def register(self, key: str, spec: QuotaSpec) -> QuotaBucket:
        """The bucket for ``key``, created with ``spec`` on first use."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None or bucket.spec != spec:
                bucket = QuotaBucket(spec, self._clock)
                self._buckets[key] = bucket
            return bucket

    def bucket(self, key: str) -> QuotaBucket | None:
        with self._lock:
            return self._buckets.get(key)

    def client_spec(self, key: str, advertise_host: str | None = None) -> BrokerSpec:
        """What a task needs to reach this broker (pickled into the task's closure)."""
        return BrokerSpec(advertise_host or self.host, self.port, self.token, key)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _BrokerHandler(BaseHTTPRequestHandler):
    broker: QuotaBroker
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # one small answer per call: no 40 ms Nagle stalls

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not secrets.compare_digest(
            self.headers.get("x-fmf-broker-token", ""), self.broker.token
        ):
            self._reply(403, {"error": "bad broker token"})
            return
        try:
            body = json.loads(raw)
            bucket = self.broker.bucket(str(body["bucket"]))
        except (ValueError, KeyError):
            self._reply(400, {"error": "bad request"})
            return
        if bucket is None:
            self._reply(404, {"error": "unknown bucket"})
            return
        if self.path == "/reserve":
            try:
                delay = bucket.reserve(int(body["tokens"]))
                self._reply(200, {"delay_s": delay, "blocked_s": bucket.blocked_for()})
            except QuotaExhausted as exc:
                self._reply(200, {"stopped": exc.message})
        elif self.path == "/report":
            rl = body.get("rate_limit")
            bucket.report(
                charged=int(body["charged"]),
                actual=body.get("actual"),
                retry_after=body.get("retry_after"),
                rate_limit=RateLimitInfo(**rl) if rl else None,
                age_s=float(body.get("age_s", 0.0)),
                quota_exhausted=body.get("quota_exhausted"),
            )
            self._reply(200, {"blocked_s": bucket.blocked_for()})
        else:
            self._reply(404, {"error": "no route"})


@dataclass(frozen=True)
class BrokerSpec:
    """Address, token and bucket of the job's quota broker (picklable)."""

    host: str
    port: int
    token: str
    bucket: str

    def __repr__(self) -> str:  # the token stays out of logs
        return f"BrokerSpec({self.host}:{self.port}, bucket={self.bucket})"


class BrokerLimiter:
    """The task side of the broker: one keep-alive connection per thread."""

    def __init__(
        self,
        spec: BrokerSpec,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self._sleep = sleep
        self._clock = clock
        self._local = threading.local()
        #: the bucket's block as last heard by any thread of this task (on ``clock``)
        self._blocked_until = 0.0

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {**body, "bucket": self.spec.bucket}
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "x-fmf-broker-token": self.spec.token}
        last: Exception | None = None
        for attempt in range(6):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection(self.spec.host, self.spec.port, timeout=30)
                self._local.conn = conn
            try:
                conn.request("POST", path, data, headers)
                response = conn.getresponse()
                payload = json.loads(response.read() or b"{}")
                if response.status != 200:
                    raise InferenceError(
                        f"quota broker answered {response.status}: {payload.get('error')}"
                    )
                self._heard_block(float(payload.get("blocked_s") or 0.0))
                return dict(payload)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                last = exc
                conn.close()
                self._local.conn = None
                self._sleep(min(0.2 * 2**attempt, 3.0))
        raise LimiterUnreachable(
            f"quota broker at {self.spec.host}:{self.spec.port} unreachable: {last}",
            hint="executors must reach spark.driver.host; else set inference.limiter: static",
        )

    def _heard_block(self, blocked_s: float) -> None:
        if blocked_s > 0:
            self._blocked_until = max(self._blocked_until, self._clock() + blocked_s)

    def acquire(self, tokens: int) -> Lease:
        while True:
            answer = self._post("/reserve", {"tokens": int(tokens)})
            if "stopped" in answer:
                raise QuotaExhausted(str(answer["stopped"]))
            delay = float(answer.get("delay_s", 0.0))
            if delay > 0:
                self._sleep(delay)
            # a 429 heard by this task while we slept: the slot would be refused, book again
            if self._clock() >= self._blocked_until:
                return Lease(int(tokens), self._clock())

    def report(
        self,
        lease: Lease,
        *,
        actual: int | None = None,
        retry_after: float | None = None,
        rate_limit: RateLimitInfo | None = None,
        quota_exhausted: str | None = None,
    ) -> None:
        if retry_after is not None:
            self._heard_block(retry_after)
        self._post(
            "/report",
            {
                "charged": lease.tokens,
                "actual": actual,
                "retry_after": retry_after,
                "rate_limit": asdict(rate_limit) if rate_limit else None,
                "age_s": self._clock() - lease.granted_at,
                "quota_exhausted": quota_exhausted,
            },
        )

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
