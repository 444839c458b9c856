"""An HTTP proxy in front of moto that leaves DynamoDB BatchWriteItem items unprocessed.

moto processes every item, so to exercise ``UnprocessedItems`` handling over the real
protocol this proxy removes a chosen fraction of the items from a request before
forwarding it and returns them in ``UnprocessedItems``, as DynamoDB does when a
partition is over capacity. Which items: those whose key hashes into the first
``fraction`` of buckets, each at most ``times`` times, so the outcome does not depend
on timing or on a random seed. moto does not check SigV4 signatures, so rewriting
the body is fine.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class UnprocessedInjector:
    def __init__(self, fraction: float, times: int = 1) -> None:
        self.fraction = fraction
        self.times = times
        self.dropped = 0
        self.requests = 0
        self.items_seen: Counter[str] = Counter()
        self._drops: Counter[str] = Counter()
        self._lock = threading.Lock()

    def split(self, items: list[dict]) -> tuple[list[dict], list[dict]]:
        keep, drop = [], []
        with self._lock:
            self.requests += 1
            for item in items:
                ident = json.dumps(item["PutRequest"]["Item"], sort_keys=True)
                self.items_seen[ident] += 1
                bucket = int(hashlib.sha256(ident.encode()).hexdigest(), 16) % 1000
                if bucket < self.fraction * 1000 and self._drops[ident] < self.times:
                    self._drops[ident] += 1
                    self.dropped += 1
                    drop.append(item)
                else:
                    keep.append(item)
        return keep, drop


@contextmanager
def dynamo_fault_proxy(upstream: str, injector: UnprocessedInjector) -> Iterator[str]:
    target = urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in {"host", "content-length"}
            }
            headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            return resp.status, resp.getheaders(), data

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            target_op = self.headers.get("X-Amz-Target", "")
            dropped: dict[str, list[dict]] = {}
            if target_op.endswith(".BatchWriteItem"):
                request = json.loads(body)
                for table, items in list(request["RequestItems"].items()):
                    keep, drop = injector.split(items)
                    if drop:
                        dropped[table] = drop
                    if keep:
                        request["RequestItems"][table] = keep
                    else:
                        del request["RequestItems"][table]
                if not request["RequestItems"]:
                    data = json.dumps({"UnprocessedItems": dropped}).encode()
                    self._reply(200, [("x-amz-crc32", str(zlib.crc32(data) & 0xFFFFFFFF))], data)
                    return
                body = json.dumps(request).encode()
            status, headers, data = self._forward(body)
            if dropped and status == 200:
                response = json.loads(data)
                unprocessed = response.setdefault("UnprocessedItems", {})
                for table, items in dropped.items():
                    unprocessed.setdefault(table, []).extend(items)
                data = json.dumps(response).encode()
                # botocore checks the body against x-amz-crc32 (and silently retries
                # on a mismatch, which would hide the injected items): recompute it
                headers = [(k, v) for k, v in headers if k.lower() != "x-amz-crc32"]
                headers.append(("x-amz-crc32", str(zlib.crc32(data) & 0xFFFFFFFF)))
            self._reply(status, headers, data)

        def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
            self.send_response(status)
            for key, value in headers:
                if key.lower() not in {
                    "content-length",
                    "transfer-encoding",
                    "connection",
                    "date",
                    "server",
                }:
                    self.send_header(key, value)
            if not any(k.lower() == "content-type" for k, _ in headers):
                self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
