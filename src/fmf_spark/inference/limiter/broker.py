"""The quota broker: the driver-side HTTP server that owns the job's quota buckets.

Protocol (JSON over HTTP/1.1 keep-alive, a per-job token in ``x-fmf-broker-token``):
``POST /reserve {bucket, tokens}`` answers ``{delay_s, blocked_s}`` (or ``{stopped}``
once the quota is exhausted); ``POST /report {bucket, charged, actual, retry_after,
rate_limit, age_s, quota_exhausted}`` corrects the schedule and answers ``{blocked_s}``.
``blocked_s`` is how long the bucket is blocked (a 429, spent headers): a task thread
whose slot, granted earlier, falls inside the block books a new one instead of sending
into a refusal. The task side is :mod:`.remote`.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fmf_spark.errors import QuotaExhausted
from fmf_spark.inference.base import RateLimitInfo
from fmf_spark.inference.limiter.bucket import QuotaBucket, QuotaSpec
from fmf_spark.inference.limiter.remote import BrokerSpec
from fmf_spark.observability.progress import count_call


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
            count_call(  # the progress line of the stage (calls/min, ETA)
                str(body["bucket"]),
                answered=body.get("actual") is not None,
                rate_limited=body.get("retry_after") is not None,
            )
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
