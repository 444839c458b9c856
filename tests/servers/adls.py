"""An ADLS Gen2 (DFS) compatible endpoint on loopback, with a managed-identity token endpoint.

It speaks the part of the Data Lake Storage Gen2 REST API that ``abfss://`` locations
use for small files (``fmf_spark.clients.adls``), as the service does:

- ``PUT /{fs}/{path}?resource=file`` creates (or empties) a file, parents implied;
- ``PATCH ...?action=append&position=N`` stages bytes at ``N``;
  ``PATCH ...?action=flush&position=L`` commits the first ``L`` staged bytes;
- ``GET /{fs}/{path}`` reads a committed file, ``HEAD`` says it exists and its
  ``x-ms-resource-type``;
- ``GET /{fs}?resource=filesystem&directory=d&recursive=false`` lists one folder level,
  ``maxResults`` at a time with ``x-ms-continuation``.

Every request needs ``Authorization: Bearer <token>`` with the token the server hands
out at ``/msi/token`` (the App Service managed-identity protocol azure-identity speaks
when ``IDENTITY_ENDPOINT``/``IDENTITY_HEADER`` are set): 401 otherwise. Errors carry
``x-ms-error-code`` and the service's JSON error body. Files live in memory.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.servers.http import send_json

TOKEN = "local-adls-token"
IDENTITY_HEADER = "local-identity-header"


@dataclass
class AdlsState:
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)
    staged: dict[tuple[str, str], bytearray] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    page_size: int = 2

    def put(self, filesystem: str, path: str, data: bytes) -> None:
        self.files[(filesystem, path.strip("/"))] = data

    def folders(self, filesystem: str) -> set[str]:
        out: set[str] = set()
        for fs, path in self.files:
            if fs == filesystem:
                parts = path.split("/")[:-1]
                out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        return out


def _handler(state: AdlsState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _error(self, status: int, code: str, message: str) -> None:
            body = {"error": {"code": code, "message": message}}
            if self.command == "HEAD":
                self.send_response(status)
                self.send_header("x-ms-error-code", code)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            send_json(self, status, body, {"x-ms-error-code": code})

        def _parse(self) -> tuple[str, str, dict[str, str]] | None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            state.requests.append(f"{self.command} {url.path} {url.query}".strip())
            if url.path == "/msi/token":
                self._token(query)
                return None
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._error(401, "InvalidAuthenticationInfo", "Server failed to authenticate.")
                return None
            parts = urllib.parse.unquote(url.path).lstrip("/").split("/", 1)
            return parts[0], (parts[1] if len(parts) > 1 else ""), query

        def _token(self, query: dict[str, str]) -> None:
            if self.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
                send_json(self, 401, {"error": "bad identity header"})
                return
            expires = int(time.time()) + 3600
            send_json(
                self,
                200,
                {
                    "access_token": TOKEN,
                    "expires_on": str(expires),
                    "resource": query.get("resource", ""),
                    "token_type": "Bearer",
                },
            )

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_HEAD(self) -> None:
            parsed = self._parse()
            if parsed is None:
                return
            fs, path, _ = parsed
            kind = "file" if (fs, path) in state.files else None
            if kind is None and path in state.folders(fs):
                kind = "directory"
            if kind is None:
                self._error(404, "PathNotFound", "The specified path does not exist.")
                return
            self.send_response(200)
            self.send_header("x-ms-resource-type", kind)
            self.send_header("Content-Length", str(len(state.files.get((fs, path), b""))))
            self.end_headers()

        def do_GET(self) -> None:
            parsed = self._parse()
            if parsed is None:
                return
            fs, path, query = parsed
            if query.get("resource") == "filesystem":
                self._list(fs, query)
                return
            data = state.files.get((fs, path))
            if data is None:
                self._error(404, "PathNotFound", "The specified path does not exist.")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _list(self, fs: str, query: dict[str, str]) -> None:
            folder = query.get("directory", "").strip("/")
            if folder and folder not in state.folders(fs):
                self._error(404, "PathNotFound", "The specified path does not exist.")
                return
            prefix = f"{folder}/" if folder else ""
            entries = sorted(
                {(p, False) for f, p in state.files if f == fs and p.startswith(prefix)}
                | {(d, True) for d in state.folders(fs) if d.startswith(prefix)}
            )
            level = [(p, d) for p, d in entries if "/" not in p[len(prefix) :]]
            start = int(query.get("continuation") or 0)
            page = level[start : start + state.page_size]
            headers = {}
            if start + state.page_size < len(level):
                headers["x-ms-continuation"] = str(start + state.page_size)
            paths = [
                {"name": p, **({"isDirectory": "true"} if d else {"contentLength": "1"})}
                for p, d in page
            ]
            send_json(self, 200, {"paths": paths}, headers)

        def do_PUT(self) -> None:
            parsed = self._parse()
            if parsed is None:
                return
            fs, path, query = parsed
            self._body()
            if query.get("resource") != "file":
                self._error(400, "InvalidQueryParameterValue", "resource must be file")
                return
            state.files[(fs, path)] = b""
            state.staged[(fs, path)] = bytearray()
            send_json(self, 201, None)

        def do_PATCH(self) -> None:
            parsed = self._parse()
            if parsed is None:
                return
            fs, path, query = parsed
            body = self._body()
            staged = state.staged.get((fs, path))
            if staged is None:
                self._error(404, "PathNotFound", "The specified path does not exist.")
                return
            position = int(query.get("position", "-1"))
            if query.get("action") == "append":
                if position != len(staged):
                    self._error(400, "InvalidFlushPosition", "position is not the end")
                    return
                staged.extend(body)
                send_json(self, 202, None)
            elif query.get("action") == "flush":
                if position > len(staged):
                    self._error(400, "InvalidFlushPosition", "flush past the staged data")
                    return
                state.files[(fs, path)] = bytes(staged[:position])
                send_json(self, 200, None)
            else:
                self._error(400, "InvalidQueryParameterValue", "unknown action")

    return Handler


@contextmanager
def adls_server() -> Iterator[tuple[str, AdlsState]]:
    """Start the server on a free loopback port; yield ``(base URL, state)``."""
    state = AdlsState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def identity_env(base_url: str) -> dict[str, str]:
    """The environment that makes azure-identity's managed identity ask this server."""
    return {"IDENTITY_ENDPOINT": f"{base_url}/msi/token", "IDENTITY_HEADER": IDENTITY_HEADER}


def put_json(state: AdlsState, filesystem: str, path: str, doc: object) -> None:
    state.put(filesystem, path, json.dumps(doc).encode())
