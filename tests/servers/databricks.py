"""A Databricks-workspace-compatible HTTP endpoint on loopback: the secrets API.

It speaks the part of the workspace REST API that databricks-sdk's ``dbutils.secrets``
uses off Databricks: ``GET /api/2.0/secrets/get?scope=<s>&key=<k>`` answers
``{"key", "value"}`` with the value base64-encoded. Like the real workspace, a request
without the bearer token gets ``401`` and an unknown scope or key ``404
RESOURCE_DOES_NOT_EXIST``, in the workspace's error shape. Other paths (the SDK first
asks ``/.well-known/databricks-config`` for host metadata) answer ``404``.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from tests.servers.http import send_json

TOKEN = "local-databricks-token"


@dataclass
class WorkspaceState:
    """Secret values by ``(scope, key)``, and the secret reads the server answered."""

    secrets: dict[tuple[str, str], str] = field(default_factory=dict)
    reads: list[tuple[str, str]] = field(default_factory=list)


def _handler(state: WorkspaceState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: dict[str, str]) -> None:
            send_json(self, status, body)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path != "/api/2.0/secrets/get":
                self._send(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": url.path})
                return
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(
                    401, {"error_code": "UNAUTHENTICATED", "message": "Invalid access token."}
                )
                return
            query = parse_qs(url.query)
            scope, key = query.get("scope", [""])[0], query.get("key", [""])[0]
            value = state.secrets.get((scope, key))
            if value is None:
                self._send(
                    404,
                    {
                        "error_code": "RESOURCE_DOES_NOT_EXIST",
                        "message": f"Failed to get secret {key} for scope {scope}.",
                    },
                )
                return
            state.reads.append((scope, key))
            encoded = base64.b64encode(value.encode("utf-8")).decode("ascii")
            self._send(200, {"key": key, "value": encoded})

    return Handler


@contextmanager
def workspace_server(secrets: dict[tuple[str, str], str]) -> Iterator[tuple[str, WorkspaceState]]:
    """Serve ``secrets`` on a free loopback port; yield ``(host URL, state)``."""
    state = WorkspaceState(secrets=dict(secrets))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
