"""An OTLP/HTTP receiver on loopback: what a collector gets from fmf, decoded.

``POST /v1/traces`` and ``POST /v1/metrics`` take protobuf bodies (gzip or not), decode
them with ``opentelemetry-proto`` and keep every payload, raw and decoded, with the
request headers. :meth:`OtlpReceiver.spans` flattens the spans with their resource and
attributes as plain dicts; :meth:`OtlpReceiver.metric_points` does the same for metric
data points. ``required_headers`` makes the receiver answer 401 without them, like a
collector with an authenticator.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind)


def attributes(items: Any) -> dict[str, Any]:
    """OTLP ``KeyValue`` list -> dict."""
    return {kv.key: _value(kv.value) for kv in items}


@dataclass
class Payload:
    path: str
    headers: dict[str, str]
    raw: bytes
    decoded: Any


@dataclass
class OtlpReceiver:
    """The receiver's state; see the module docstring."""

    url: str = ""
    payloads: list[Payload] = field(default_factory=list)
    required_headers: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def traces(self) -> list[Payload]:
        with self.lock:
            return [p for p in self.payloads if p.path == "/v1/traces"]

    def metrics(self) -> list[Payload]:
        with self.lock:
            return [p for p in self.payloads if p.path == "/v1/metrics"]

    def clear(self) -> None:
        with self.lock:
            self.payloads.clear()

    def spans(self) -> list[dict[str, Any]]:
        """Every span received: ids as hex, attributes, events, status, resource."""
        out = []
        for payload in self.traces():
            for rs in payload.decoded.resource_spans:
                resource = attributes(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        out.append(
                            {
                                "name": s.name,
                                "trace_id": s.trace_id.hex(),
                                "span_id": s.span_id.hex(),
                                "parent_id": s.parent_span_id.hex() or None,
                                "attributes": attributes(s.attributes),
                                "events": [
                                    {"name": e.name, "attributes": attributes(e.attributes)}
                                    for e in s.events
                                ],
                                "status": s.status.code,
                                "resource": resource,
                                "start": s.start_time_unix_nano,
                                "end": s.end_time_unix_nano,
                            }
                        )
        return out

    def metric_points(self) -> list[dict[str, Any]]:
        """Every data point: metric name, kind, temporality, attributes, value(s)."""
        out = []
        for payload in self.metrics():
            for rm in payload.decoded.resource_metrics:
                resource = attributes(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        kind = m.WhichOneof("data")
                        data = getattr(m, kind)
                        for p in data.data_points:
                            point = {
                                "name": m.name,
                                "kind": kind,
                                "temporality": getattr(data, "aggregation_temporality", None),
                                "attributes": attributes(p.attributes),
                                "resource": resource,
                            }
                            if kind == "histogram":
                                point["count"] = p.count
                                point["sum"] = p.sum
                            else:
                                which = p.WhichOneof("value")
                                point["value"] = getattr(p, which) if which else None
                            out.append(point)
        return out


def _handler(state: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    kinds = {
        "/v1/traces": (
            trace_service_pb2.ExportTraceServiceRequest,
            trace_service_pb2.ExportTraceServiceResponse,
        ),
        "/v1/metrics": (
            metrics_service_pb2.ExportMetricsServiceRequest,
            metrics_service_pb2.ExportMetricsServiceResponse,
        ),
    }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _reply(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            kind = kinds.get(self.path)
            if kind is None:
                self._reply(404)
                return
            for name, value in state.required_headers.items():
                if self.headers.get(name) != value:
                    self._reply(401)
                    return
            body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
            request = kind[0]()
            request.ParseFromString(body)
            with state.lock:
                state.payloads.append(
                    Payload(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, body, request
                    )
                )
            self._reply(200, kind[1]().SerializeToString())

    return Handler


@contextmanager
def otlp_receiver(required_headers: dict[str, str] | None = None) -> Iterator[OtlpReceiver]:
    """Run an :class:`OtlpReceiver` on a free loopback port for the block."""
    state = OtlpReceiver(required_headers=dict(required_headers or {}))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
