"""The task side of the quota broker: reserve before each call, report after it."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from fmf_spark.errors import InferenceError, LimiterUnreachable, QuotaExhausted
from fmf_spark.inference.base import RateLimitInfo
from fmf_spark.inference.limiter.bucket import Lease


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
