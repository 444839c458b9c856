"""An OpenAI-, Azure OpenAI- and Bedrock-compatible HTTP endpoint with real quota rules.

Routes:

- ``POST /v1/chat/completions`` (OpenAI; ``stream: true`` answers with server-sent events),
  also at ``/serving-endpoints/chat/completions`` (Databricks Model Serving's
  OpenAI-compatible route, the endpoint's name as ``model``);
- ``POST /openai/deployments/{name}/chat/completions?api-version=...`` (Azure OpenAI);
- ``POST /model/{id}/converse`` (Bedrock Converse, reached by boto3 through ``endpoint_url``);
- ``GET /stats`` (counters), ``POST /admin/reset``, ``POST /admin/storm``,
  ``POST /admin/faults`` (test and benchmark control), ``GET /health``.

The quota rules are in :class:`~fmf_spark.simulator.settings.SimulatorSettings`. The
stats count every request that arrived, every 429 (by cause), every fault, the tokens
charged, and ``repeat_success``: requests whose exact body had already been answered
successfully (a client that calls twice for the same row shows up here). Requests are
also counted per ``user`` (the OpenAI request field; ``""`` for requests that name
none) under ``by_user``, so a benchmark can tell a co-tenant on the same deployment
from its own traffic.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from fmf_spark.inference.tokens import TOKENS_PER_MESSAGE, TOKENS_REPLY_PRIMING, count_tokens
from fmf_spark.observability.logging import get_logger
from fmf_spark.simulator import answers
from fmf_spark.simulator.settings import FAULT_KINDS, FaultRule, SimulatorSettings

log = get_logger(__name__)

_AZURE = re.compile(r"^/openai/deployments/([^/]+)/chat/completions$")
_BEDROCK = re.compile(r"^/model/(.+)/converse$")
#: the context window the simulator pretends every model has
CONTEXT_WINDOW = 128_000


@dataclass
class _Request:
    route: str  # openai | azure | bedrock
    model: str
    messages: list[dict[str, str]]
    max_tokens: int | None
    stop: list[str] | None
    schema: dict[str, Any] | None
    tool_name: str | None
    stream: bool
    include_usage: bool
    body_key: str
    user: str | None = None

    @property
    def last_user(self) -> str:
        for m in reversed(self.messages):
            if m["role"] == "user":
                return m["content"]
        return ""


@dataclass
class _Admission:
    ok: bool
    window: int
    retry_after: float = 0.0
    remaining_requests: float | None = None
    remaining_tokens: float | None = None


class _Quota:
    """Fixed-window RPM/TPM accounting, charged at admission."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self.window = -1
        self.requests = 0.0
        self.tokens = 0.0
        #: per window: requests admitted, tokens charged
        self.history: dict[int, list[float]] = {}
        #: the same per window and user
        self.by_user: dict[tuple[int, str], list[float]] = {}

    def admit(self, tokens: int | None, now: float, user: str = "") -> _Admission:
        """Admit one request charged ``tokens`` if the current window has room for it.

        ``tokens=None`` charges nothing and admits nothing: it only reads what is left
        (for answers that never reach admission, so they carry the headers too).
        """
        limit_r, limit_t = self.settings.window_limits()
        w = self.settings.window_s
        with self.lock:
            idx = int(now // w)
            if idx != self.window:
                self.window, self.requests, self.tokens = idx, 0.0, 0.0
            ok = tokens is not None
            if tokens is not None:
                over_r = limit_r is not None and self.requests + 1 > limit_r
                over_t = limit_t is not None and self.tokens + tokens > limit_t
                ok = not (over_r or over_t)
            if ok and tokens is not None:
                self.requests += 1
                self.tokens += tokens
                for entry in (
                    self.history.setdefault(idx, [0.0, 0.0]),
                    self.by_user.setdefault((idx, user), [0.0, 0.0]),
                ):
                    entry[0] += 1
                    entry[1] += tokens
            return _Admission(
                ok,
                idx,
                retry_after=(idx + 1) * w - now,
                remaining_requests=None if limit_r is None else max(0.0, limit_r - self.requests),
                remaining_tokens=None if limit_t is None else max(0.0, limit_t - self.tokens),
            )

    def refund(self, window: int, tokens: int, user: str = "") -> None:
        with self.lock:
            if window == self.window:
                self.tokens = max(0.0, self.tokens - tokens)
            if window in self.history:
                self.history[window][1] -= tokens
            if (window, user) in self.by_user:
                self.by_user[window, user][1] -= tokens


@dataclass
class _Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    counters: dict[str, int] = field(default_factory=dict)
    succeeded: set[str] = field(default_factory=set)
    first_ts: float | None = None
    last_ts: float | None = None
    #: per ``user`` of the request: the same counters, and first_ts / last_ts
    by_user: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, name: str, n: int = 1, user: str | None = None) -> None:
        """Add to a counter, and to the user's when ``user`` is given (``""``: unnamed)."""
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + n
            if user is not None:
                mine = self.by_user.setdefault(user, {})
                mine[name] = mine.get(name, 0) + n

    def arrived(self, ts: float, user: str) -> None:
        """Count one arrival (``requests``) and keep the first arrival's time."""
        self.add("requests", user=user)
        with self.lock:
            if self.first_ts is None:
                self.first_ts = ts
            self.by_user[user].setdefault("first_ts", ts)

    def answered(self, ts: float, user: str) -> None:
        """Move the last answer's time on."""
        with self.lock:
            self.last_ts = ts
            self.by_user[user]["last_ts"] = ts


class _Reply(Exception):
    """Raised inside the handler to send an error response."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


class SimulatorServer:
    """The simulator, on a thread of this process.

    Example:
        >>> with SimulatorServer(SimulatorSettings(requests_per_minute=60)) as sim:  # doctest: +SKIP
        ...     client = openai.OpenAI(base_url=sim.openai_base_url, api_key="x")
        ...     sim.stats()["accepted"]
    """

    def __init__(
        self, settings: SimulatorSettings | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings or SimulatorSettings()
        #: the quota windows' clock (epoch seconds); tests pass a fixed one
        self.clock = clock
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._rng = random.Random(self.settings.seed)
        self._fault_left: dict[int, int | None] = {}
        self._storm_until = 0.0
        self._storm_retry_after = 1.0
        self.reset()

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> str:
        """Start serving on a daemon thread; return the base URL (``http://host:port``)."""
        if self._httpd is not None:
            return self.url
        count_tokens("warm up")  # load the tokenizer now, not inside the first answer
        handler = type("_BoundHandler", (_Handler,), {"sim": self})
        httpd = ThreadingHTTPServer((self.settings.host, self.settings.port), handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, name="fmf-simulator", daemon=True
        )
        self._thread.start()
        log.debug("simulator listening on %s", self.url)
        return self.url

    def stop(self) -> None:
        """Stop serving (requests in flight on other threads are abandoned)."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the simulator is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def openai_base_url(self) -> str:
        """``base_url`` for the OpenAI SDK."""
        return self.url + "/v1"

    # --- control -------------------------------------------------------------------------

    def reset(self) -> None:
        """Zero the counters and the quota windows; re-arm the fault rules."""
        with self._lock:
            self._quota = _Quota(self.settings)
            self._stats = _Stats()
            self._fault_left = {i: r.times for i, r in enumerate(self.settings.faults)}
            self._storm_until = 0.0

    def set_faults(self, faults: list[FaultRule]) -> None:
        """Replace the targeted fault rules."""
        with self._lock:
            self.settings.faults = list(faults)
            self._fault_left = {i: r.times for i, r in enumerate(faults)}

    def storm(self, seconds: float, retry_after_s: float = 1.0) -> None:
        """Answer every request with 429 for ``seconds`` from now (a quota storm)."""
        with self._lock:
            self._storm_until = self.clock() + seconds
            self._storm_retry_after = retry_after_s

    def stats(self) -> dict[str, Any]:
        """Counters since the last reset.

        Keys: ``requests`` (arrived), ``accepted`` (admitted by the quota), ``ok``
        (answered 200), ``rejected_429`` (over quota), ``storm_429``, ``fault_<kind>``,
        ``tokens_charged``, ``prompt_tokens``, ``completion_tokens``, ``repeat_success``,
        ``max_requests_per_window``, ``max_tokens_per_window``, ``window_limits``,
        ``windows`` (``[window index, user, requests admitted, tokens charged]`` for
        every window and user),
        ``first_ts``/``last_ts`` (first arrival, last answer, epoch seconds), and
        ``by_user``: for each ``user`` of the requests (``""``: none named), its
        ``requests``, ``accepted``, ``ok``, ``rejected_429``, ``storm_429``,
        ``fault_rate_limit``, ``tokens_charged``, ``first_ts`` and ``last_ts``.
        """
        with self._stats.lock:
            data: dict[str, Any] = {
                k: 0
                for k in (
                    "requests",
                    "accepted",
                    "ok",
                    "rejected_429",
                    "storm_429",
                    "tokens_charged",
                    "prompt_tokens",
                    "completion_tokens",
                    "repeat_success",
                )
            }
            data.update(self._stats.counters)
            data["first_ts"] = self._stats.first_ts
            data["last_ts"] = self._stats.last_ts
            data["by_user"] = {u: dict(c) for u, c in self._stats.by_user.items()}
        with self._quota.lock:
            history = list(self._quota.history.values())
            windows = [[i, u, r, t] for (i, u), (r, t) in sorted(self._quota.by_user.items())]
        data["max_requests_per_window"] = max((h[0] for h in history), default=0)
        data["max_tokens_per_window"] = max((h[1] for h in history), default=0)
        data["windows"] = windows
        data["window_limits"] = list(self.settings.window_limits())
        data["window_s"] = self.settings.window_s
        return data

    # --- request handling ----------------------------------------------------------------

    def _latency(self) -> float:
        mean = self.settings.latency_ms / 1000.0
        if mean <= 0:
            return 0.0
        sigma = self.settings.latency_sigma
        if sigma <= 0:
            return mean
        with self._lock:
            return self._rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)

    def _targeted_fault(self, req: _Request, before_admission: bool) -> FaultRule | None:
        with self._lock:
            for i, rule in enumerate(self.settings.faults):
                if (rule.kind == "rate_limit") != before_admission:
                    continue
                if rule.match and rule.match not in req.last_user:
                    continue
                left = self._fault_left.get(i)
                if left is not None:
                    if left <= 0:
                        continue
                    self._fault_left[i] = left - 1
                return rule
        return None

    def _random_fault(self) -> str | None:
        s = self.settings
        with self._lock:
            x = self._rng.random()
        for kind, ratio in (
            ("server_error", s.error_5xx_ratio),
            ("timeout", s.timeout_ratio),
            ("content_filter", s.content_filter_ratio),
            ("malformed", s.malformed_ratio),
        ):
            if x < ratio:
                return kind
            x -= ratio
        return None

    def handle(self, req: _Request, auth_ok: bool) -> tuple[int, Any, dict[str, str], bool]:
        """Process one chat request; return (status, body, headers, stream)."""
        now = self.clock()
        st, user = self._stats, req.user or ""
        st.arrived(now, user)
        if not auth_ok:
            st.add("fault_auth")
            raise _error(req, "auth", "Access denied due to invalid subscription key.")
        # answers that never reach admission still say what is left of the window
        left = _ratelimit_headers(req, self._quota.admit(None, now))
        with self._lock:
            storm = now < self._storm_until
            storm_retry = self._storm_retry_after
        if storm:
            st.add("storm_429", user=user)
            raise _rate_limited(req, storm_retry, "Rate limit storm (simulated).", left)
        rule = self._targeted_fault(req, before_admission=True)
        if rule is not None:
            st.add("fault_rate_limit", user=user)
            raise _rate_limited(req, rule.retry_after_s, "Rate limit (injected fault).", left)
        limit = self.settings.daily_request_limit
        if limit is not None and st.counters.get("accepted", 0) >= limit:
            st.add("fault_quota_exhausted")
            raise _error(req, "quota_exhausted", "You exceeded your daily request quota.", left)

        prompt_tokens = _prompt_tokens(req)
        if prompt_tokens > CONTEXT_WINDOW:
            st.add("fault_context_length")
            raise _error(
                req, "context_length", "This model's maximum context length is exceeded.", left
            )
        max_tokens = req.max_tokens or self.settings.default_max_tokens
        charge = self.settings.charge(prompt_tokens, max_tokens)
        admission = self._quota.admit(charge, now, user)
        headers = _ratelimit_headers(req, admission)
        if not admission.ok:
            st.add("rejected_429", user=user)
            raise _rate_limited(
                req, admission.retry_after, "Requests exceed the rate limit.", headers
            )
        st.add("accepted", user=user)
        st.add("tokens_charged", charge, user=user)

        rule = self._targeted_fault(req, before_admission=False)
        kind = rule.kind if rule is not None else self._random_fault()
        time.sleep(self._latency())
        if kind is not None and kind not in ("content_filter_output", "invalid_json"):
            st.add(f"fault_{kind}")
            if kind == "timeout":
                time.sleep(self.settings.hang_s)
                raise _Reply(-1, None)
            if kind == "malformed":
                return 200, b'{"id": "chatcmpl-broken", "choices": [', headers, False
            raise _error(req, kind, f"Injected fault: {kind}.", headers)
        if kind is not None:
            st.add(f"fault_{kind}")

        text, finish = self._answer(req, max_tokens, kind)
        completion_tokens = count_tokens(text)
        if req.route == "bedrock" and max_tokens > completion_tokens:
            # Bedrock gives back the unused part of max_tokens once the answer is done
            self._quota.refund(admission.window, max_tokens - completion_tokens, user)
            st.add("tokens_charged", -(max_tokens - completion_tokens), user=user)
        st.add("ok", user=user)
        st.add("prompt_tokens", prompt_tokens)
        st.add("completion_tokens", completion_tokens)
        with st.lock:
            if req.body_key in st.succeeded:
                st.counters["repeat_success"] = st.counters.get("repeat_success", 0) + 1
            st.succeeded.add(req.body_key)
        st.answered(self.clock(), user)
        body = _success_body(req, text, finish, prompt_tokens, completion_tokens)
        return 200, body, headers, req.stream

    def _answer(self, req: _Request, max_tokens: int, kind: str | None) -> tuple[str, str]:
        if kind == "content_filter_output":
            return "", "content_filter"
        if req.schema is not None and kind != "invalid_json":
            return answers.dumps(answers.json_for_schema(req.schema, req.last_user)), "stop"
        text = answers.text_answer(req.model, req.last_user)
        if kind == "invalid_json":
            text = "Sure! Here is the JSON you asked for: {oops"
        text, _stopped = answers.apply_stop(text, req.stop)
        text, cut = answers.truncate_to_tokens(text, max_tokens)
        return text, "length" if cut else "stop"


# --- wire formats ----------------------------------------------------------------------------


def _prompt_tokens(req: _Request) -> int:
    total = TOKENS_REPLY_PRIMING
    for m in req.messages:
        total += TOKENS_PER_MESSAGE + count_tokens(m["content"])
    return total


def _ratelimit_headers(req: _Request, a: _Admission) -> dict[str, str]:
    """What is left of the window after this request, and when it resets (as Azure
    OpenAI and OpenAI send them); none on the Bedrock route, as Bedrock sends none."""
    if req.route == "bedrock":
        return {}
    headers = {}
    if a.remaining_requests is not None:
        headers["x-ratelimit-remaining-requests"] = str(int(a.remaining_requests))
        headers["x-ratelimit-reset-requests"] = f"{a.retry_after:.3f}s"
    if a.remaining_tokens is not None:
        headers["x-ratelimit-remaining-tokens"] = str(int(a.remaining_tokens))
        headers["x-ratelimit-reset-tokens"] = f"{a.retry_after:.3f}s"
    return headers


def _rate_limited(
    req: _Request, retry_after: float, message: str, headers: dict[str, str]
) -> _Reply:
    if req.route == "bedrock":
        # Bedrock throttles with a bare ThrottlingException: no Retry-After, no headers
        return _error(req, "rate_limit", "Too many requests, please wait before trying again.")
    headers = {
        **headers,
        "retry-after": str(max(1, math.ceil(retry_after))),
        "retry-after-ms": str(max(1, int(retry_after * 1000))),
    }
    return _error(req, "rate_limit", message, headers)


_OPENAI_ERRORS: dict[str, tuple[int, str, str]] = {
    "rate_limit": (429, "rate_limit_exceeded", "requests"),
    "server_error": (500, "server_error", "server_error"),
    "unavailable": (503, "service_unavailable", "server_error"),
    "request_timeout": (408, "timeout", "timeout"),
    "content_filter": (400, "content_filter", "invalid_request_error"),
    "bad_request": (400, "invalid_request", "invalid_request_error"),
    "context_length": (400, "context_length_exceeded", "invalid_request_error"),
    "auth": (401, "invalid_api_key", "invalid_request_error"),
    "quota_exhausted": (429, "insufficient_quota", "insufficient_quota"),
}

_BEDROCK_ERRORS: dict[str, tuple[int, str]] = {
    "rate_limit": (429, "ThrottlingException"),
    "server_error": (500, "InternalServerException"),
    "unavailable": (503, "ServiceUnavailableException"),
    "request_timeout": (408, "ModelTimeoutException"),
    "bad_request": (400, "ValidationException"),
    "context_length": (400, "ValidationException"),
    "auth": (403, "UnrecognizedClientException"),
    "quota_exhausted": (400, "ServiceQuotaExceededException"),
}


def _error(req: _Request, kind: str, message: str, headers: dict[str, str] | None = None) -> _Reply:
    headers = dict(headers or {})
    if req.route == "bedrock":
        if kind == "content_filter":
            # Bedrock guardrails answer 200 with stopReason=guardrail_intervened
            body = _bedrock_body(
                req, "Sorry, the model cannot answer this.", "guardrail_intervened", 0, 0
            )
            return _Reply(200, body, headers)
        if kind == "context_length":
            message = "Input is too long for requested model."
        if kind == "quota_exhausted":
            message = "CapacityLimitExceeded: " + message
        status, code = _BEDROCK_ERRORS[kind]
        headers["x-amzn-ErrorType"] = f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"
        return _Reply(status, {"message": message}, headers)
    status, code, etype = _OPENAI_ERRORS[kind]
    return _Reply(
        status, {"error": {"message": message, "type": etype, "param": None, "code": code}}, headers
    )


def _success_body(
    req: _Request, text: str, finish: str, prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    if req.route == "bedrock":
        stop = {"stop": "end_turn", "length": "max_tokens", "content_filter": "content_filtered"}
        return _bedrock_body(req, text, stop[finish], prompt_tokens, completion_tokens)
    return {
        "id": "chatcmpl-" + req.body_key[:24],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text or None},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _bedrock_body(
    req: _Request, text: str, stop: str, prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"text": text}]
    if req.tool_name and stop == "end_turn":
        try:
            tool_input = json.loads(text)
        except ValueError:
            tool_input = None  # the model answered in prose instead of calling the tool
        if tool_input is not None:
            tool_use = {"toolUseId": "tooluse_" + req.body_key[:16], "name": req.tool_name}
            content = [{"toolUse": {**tool_use, "input": tool_input}}]
            stop = "tool_use"
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {
            "inputTokens": prompt_tokens,
            "outputTokens": completion_tokens,
            "totalTokens": prompt_tokens + completion_tokens,
        },
        "metrics": {"latencyMs": 1},
    }


def _parse_openai(route: str, model: str, body: dict[str, Any], key: str) -> _Request:
    messages = [
        {"role": str(m.get("role", "user")), "content": _text(m.get("content"))}
        for m in body.get("messages", [])
    ]
    if not messages:
        raise ValueError("messages must not be empty")
    fmt = body.get("response_format") or {}
    schema = None
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
    elif fmt.get("type") == "json_object":
        schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    stop = body.get("stop")
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    return _Request(
        route=route,
        model=model or str(body.get("model", "")),
        messages=messages,
        max_tokens=int(max_tokens) if max_tokens else None,
        stop=[stop] if isinstance(stop, str) else stop,
        schema=schema,
        tool_name=None,
        stream=bool(body.get("stream")),
        include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
        body_key=key,
        user=str(body["user"]) if body.get("user") else None,
    )


def _parse_bedrock(model: str, body: dict[str, Any], key: str) -> _Request:
    messages = [{"role": "system", "content": _text(s)} for s in body.get("system", [])]
    for m in body.get("messages", []):
        messages.append({"role": str(m.get("role", "user")), "content": _text(m.get("content"))})
    if not body.get("messages"):
        raise ValueError("messages must not be empty")
    inference = body.get("inferenceConfig") or {}
    schema, tool_name = None, None
    tools = body.get("toolConfig") or {}
    choice = (tools.get("toolChoice") or {}).get("tool") or {}
    for tool in tools.get("tools", []):
        spec = tool.get("toolSpec") or {}
        if spec.get("name") == choice.get("name"):
            schema = (spec.get("inputSchema") or {}).get("json")
            tool_name = spec.get("name")
    return _Request(
        route="bedrock",
        model=model,
        messages=messages,
        max_tokens=inference.get("maxTokens"),
        stop=inference.get("stopSequences"),
        schema=schema,
        tool_name=tool_name,
        stream=False,
        include_usage=False,
        body_key=key,
    )


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, list):
        return "".join(_text(p) for p in content)
    return ""


class _Handler(BaseHTTPRequestHandler):
    sim: SimulatorServer
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes: without this, Nagle + delayed ACK
    # add ~40 ms to every answer
    disable_nagle_algorithm = True
    server_version = "fmf-simulator/1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and benchmarks
        return

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/stats":
            self._send(200, self.sim.stats())
        elif path == "/health":
            self._send(200, {"status": "ok"})
        else:
            self._send(404, {"error": {"message": f"no route {path}", "code": "not_found"}})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path.startswith("/admin/"):
            self._admin(path, raw)
            return
        try:
            body = json.loads(raw or b"{}")
            key = hashlib.sha256(raw).hexdigest()
            if path in ("/v1/chat/completions", "/serving-endpoints/chat/completions"):
                req = _parse_openai("openai", "", body, key)
            elif m := _AZURE.match(path):
                req = _parse_openai("azure", unquote(m.group(1)), body, key)
            elif m := _BEDROCK.match(path):
                req = _parse_bedrock(unquote(m.group(1)), body, key)
            else:
                self._send(404, {"error": {"message": f"no route {path}", "code": "not_found"}})
                return
        except (ValueError, TypeError, AttributeError) as exc:
            self._send(
                400, {"error": {"message": f"bad request: {exc}", "code": "invalid_request"}}
            )
            return
        try:
            status, payload, headers, stream = self.sim.handle(req, self._auth_ok(req))
        except _Reply as reply:
            if reply.status < 0:  # a hang that ends with a dropped connection
                self.close_connection = True
                return
            self._send(reply.status, reply.body, reply.headers)
            return
        if stream and isinstance(payload, dict):
            self._stream(req, payload, headers)
        else:
            self._send(status, payload, headers)

    def _auth_ok(self, req: _Request) -> bool:
        key = self.sim.settings.api_key
        if key is None or req.route == "bedrock":
            return True
        bearer = self.headers.get("Authorization", "")
        return self.headers.get("api-key") == key or bearer == f"Bearer {key}"

    def _stream(self, req: _Request, body: dict[str, Any], headers: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        choice = body["choices"][0]
        base = {"id": body["id"], "object": "chat.completion.chunk", "created": body["created"]}
        base["model"] = body["model"]
        text = choice["message"]["content"] or ""
        pieces = re.findall(r"\S+\s*", text) or [""]
        for i, piece in enumerate(pieces):
            delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
            self._chunk({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        self._chunk(
            {
                **base,
                "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}],
            }
        )
        if req.include_usage:
            self._chunk({**base, "choices": [], "usage": body["usage"]})
        self._raw_chunk(b"data: [DONE]\n\n")
        self._raw_chunk(b"")

    def _chunk(self, event: dict[str, Any]) -> None:
        self._raw_chunk(b"data: " + json.dumps(event).encode("utf-8") + b"\n\n")

    def _raw_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _admin(self, path: str, raw: bytes) -> None:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        if path == "/admin/reset":
            self.sim.reset()
        elif path == "/admin/storm":
            self.sim.storm(float(body.get("seconds", 30)), float(body.get("retry_after_s", 1.0)))
        elif path == "/admin/faults":
            rules = []
            for r in body.get("faults", []):
                if r.get("kind") not in FAULT_KINDS:
                    self._send(400, {"error": {"message": f"unknown fault {r.get('kind')}"}})
                    return
                rules.append(FaultRule(**r))
            self.sim.set_faults(rules)
        else:
            self._send(404, {"error": {"message": f"no route {path}"}})
            return
        self._send(200, {"status": "ok"})
