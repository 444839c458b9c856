"""A Microsoft Graph-compatible HTTP server for the SharePoint tests, on loopback.

It speaks the subset of Graph and the Microsoft identity platform that the SharePoint
connector uses, over real HTTP (``ThreadingHTTPServer`` on ``127.0.0.1``, free port):

- ``POST /{tenant}/oauth2/v2.0/token``: client credentials, with a client secret
  (``client_secret``) or a certificate (``client_assertion``: an RS256 JWT whose signature
  is checked against the registered certificate's public key);
- ``GET /v1.0/sites/{host}:/{site path}``: a site by path;
- ``GET /v1.0/sites/{site-id}/drives``: the document libraries of a site;
- ``GET /v1.0/drives/{drive-id}/root/children`` and
  ``GET /v1.0/drives/{drive-id}/root:/{folder path}:/children``: folder children, ``$top``
  pages linked by ``@odata.nextLink`` (``$skiptoken``);
- ``GET /v1.0/drives/{drive-id}/root:/{item path}`` and ``.../items/{item-id}``: metadata;
- ``GET /v1.0/drives/{drive-id}/items/{item-id}/content``: ``302`` to a pre-authenticated
  download URL (``/_download/...``, no bearer token needed, like the real service);
- ``PUT /v1.0/drives/{drive-id}/root:/{item path}:/content``: simple upload.

Every ``/v1.0`` route needs ``Authorization: Bearer <token issued here>`` (else 401).

**Storage** (read and write it from tests and from extensions)::

    server.drive_files[(site, drive_name, item_path)] = b"bytes"

``site`` is spelled as in the connector config (``"contoso.sharepoint.com:/sites/team"``),
``drive_name`` is the library name (``"Documents"``), ``item_path`` has no leading slash
(``"folder/report.pdf"``). Folders exist implicitly (any prefix of a file path).
``server.modified[key]`` optionally holds a ``datetime`` (default: server start time).
Item and drive ids are stable hashes: :meth:`GraphServer.item_id`,
:meth:`GraphServer.drive_id`, :meth:`GraphServer.site_id`; :meth:`GraphServer.find_item`
maps an item id back to its key. Guard compound updates with ``server.lock``.

**Extending** (e.g. the Excel workbook API in another module)::

    def handle(server, req):                    # req: GraphRequest
        key = server.find_item(req.match["drive"], req.match["item"])
        return server.json(200, {"id": "..."})  # or GraphResponse(...)

    server.add_route("POST", r"/v1.0/drives/(?P<drive>[^/]+)/items/(?P<item>[^/]+)"
                     r"/workbook/tables/(?P<table>[^/]+)/rows", handle)

Routes added later win over the built-in ones (checked first); ``auth=False`` opts out of
the bearer check. Paths are matched against the URL-decoded path, without the query
string (in ``req.query``).

**Fault injection**: ``server.inject_fault(status=429, on_request=3, retry_after=1)``
answers the 3rd matching request (counting from the call) with that status and a
``Retry-After`` header; ``path_regex`` narrows the requests counted; ``times`` repeats
it on the following matching requests. ``server.requests`` logs every request as
``(method, path_with_query, status)``, for assertions about paging and retries.

Use :func:`graph_server` as a context manager (the SharePoint tests wrap it in a fixture).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

DriveKey = tuple[str, str, str]


@dataclass
class GraphRequest:
    """One request as a route handler sees it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    match: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8")).items()}


@dataclass
class GraphResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[["GraphServer", GraphRequest], GraphResponse]


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool


@dataclass
class _Fault:
    status: int
    on_request: int
    retry_after: float | None
    path_regex: re.Pattern[str] | None
    times: int
    seen: int = 0


def _hash_id(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:24].upper()


def _b64url_decode(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


class GraphServer:
    """The server state and routes; see the module docstring."""

    def __init__(self, page_size: int = 200) -> None:
        #: (site, drive_name, item_path) -> bytes
        self.drive_files: dict[DriveKey, bytes] = {}
        #: optional last-modified time per file
        self.modified: dict[DriveKey, datetime] = {}
        #: extra (site, drive_name) libraries that exist even when empty
        self.drives: set[tuple[str, str]] = set()
        #: client_id -> client secret (client-credential auth)
        self.clients: dict[str, str] = {}
        #: client_id -> PEM certificate (certificate auth)
        self.certificates: dict[str, bytes] = {}
        self.tokens: dict[str, float] = {}
        self.token_lifetime_s = 3600
        self.page_size = page_size
        self.requests: list[tuple[str, str, int]] = []
        self.lock = threading.RLock()
        self.started = datetime(2026, 1, 1, tzinfo=timezone.utc)
        self._routes: list[_Route] = []
        self._faults: list[_Fault] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._install_builtin_routes()

    # --- public helpers --------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def graph_url(self) -> str:
        return f"{self.url}/v1.0"

    def add_route(self, method: str, path_regex: str, handler: Handler, auth: bool = True) -> None:
        """Add a route; routes added later are matched first."""
        route = _Route(method.upper(), re.compile(f"^{path_regex}$"), handler, auth)
        with self.lock:
            self._routes.insert(0, route)

    def add_client(self, client_id: str, secret: str) -> None:
        self.clients[client_id] = secret

    def add_certificate(self, client_id: str, cert_pem: bytes) -> None:
        self.certificates[client_id] = cert_pem

    def inject_fault(
        self,
        status: int = 429,
        on_request: int = 1,
        retry_after: float | None = 1,
        path_regex: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the ``on_request``-th matching request (from now) with ``status``."""
        with self.lock:
            self._faults.append(
                _Fault(
                    status,
                    on_request,
                    retry_after,
                    re.compile(path_regex) if path_regex else None,
                    times,
                )
            )

    @staticmethod
    def site_id(site: str) -> str:
        host = site.split(":", 1)[0]
        return f"{host},{_hash_id('site', site)},{_hash_id('web', site)}"

    @staticmethod
    def drive_id(site: str, drive_name: str) -> str:
        return "b!" + _hash_id("drive", site, drive_name)

    @staticmethod
    def item_id(site: str, drive_name: str, item_path: str) -> str:
        return "01" + _hash_id("item", site, drive_name, item_path.strip("/"))

    def find_drive(self, drive_id: str) -> tuple[str, str] | None:
        for site, drive in self._all_drives():
            if self.drive_id(site, drive) == drive_id:
                return site, drive
        return None

    def find_item(self, drive_id: str, item_id: str) -> DriveKey | None:
        """The storage key of an item (a file or a folder path), or None."""
        drive = self.find_drive(drive_id)
        if drive is None:
            return None
        site, name = drive
        if item_id == "root":
            return (site, name, "")
        for path in self._all_paths(site, name):
            if self.item_id(site, name, path) == item_id:
                return (site, name, path)
        return None

    @staticmethod
    def json(status: int, payload: Any, headers: dict[str, str] | None = None) -> GraphResponse:
        body = json.dumps(payload).encode()
        return GraphResponse(status, body, {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def error(cls, status: int, code: str, message: str) -> GraphResponse:
        return cls.json(status, {"error": {"code": code, "message": message}})

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet tests
                return

            def _serve(self) -> None:
                server._dispatch(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    # --- dispatch ---------------------------------------------------------------------

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        path = unquote(split.path)
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in h.headers.items()}
        response = self._respond(h.command, path, query, headers, body)
        with self.lock:
            self.requests.append((h.command, h.path, response.status))
        h.send_response(response.status)
        for key, value in response.headers.items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(response.body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(response.body)

    def _respond(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> GraphResponse:
        fault = self._take_fault(path)
        if fault is not None:
            extra = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            return self.json(
                fault.status,
                {"error": {"code": "TooManyRequests", "message": "injected fault"}},
                extra,
            )
        with self.lock:
            routes = list(self._routes)
        path_known = False
        for route in routes:
            m = route.pattern.match(path)
            if m is None:
                continue
            path_known = True
            if route.method != method:
                continue
            if route.auth and not self._authorised(headers):
                return self.error(401, "InvalidAuthenticationToken", "Access token is missing")
            req = GraphRequest(method, path, query, headers, body, m.groupdict())
            try:
                return route.handler(self, req)
            except Exception as exc:  # a bug in a handler: a 500 the client can see
                return self.error(500, "generalException", f"{type(exc).__name__}: {exc}")
        if path_known:
            return self.error(405, "methodNotAllowed", f"{method} not allowed on {path}")
        return self.error(404, "itemNotFound", f"no route for {path}")

    def _take_fault(self, path: str) -> _Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.path_regex is not None and not fault.path_regex.search(path):
                    continue
                fault.seen += 1
                if fault.seen >= fault.on_request:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _authorised(self, headers: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return False
        expires = self.tokens.get(auth[7:].strip())
        return expires is not None and expires > time.time()

    # --- storage views ----------------------------------------------------------------

    def _all_drives(self) -> set[tuple[str, str]]:
        with self.lock:
            return {(s, d) for s, d, _ in self.drive_files} | set(self.drives)

    def _all_paths(self, site: str, drive: str) -> set[str]:
        with self.lock:
            files = [p for s, d, p in self.drive_files if s == site and d == drive]
        paths = set(files)
        for p in files:
            parts = p.split("/")
            for i in range(1, len(parts)):
                paths.add("/".join(parts[:i]))
        return paths

    def _is_folder(self, site: str, drive: str, path: str) -> bool:
        if path == "":
            return True
        with self.lock:
            if (site, drive, path) in self.drive_files:
                return False
        prefix = path + "/"
        return any(p.startswith(prefix) for p in self._all_paths(site, drive))

    def _item_json(self, site: str, drive: str, path: str) -> dict[str, Any]:
        name = path.rsplit("/", 1)[-1] if path else "root"
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        drive_id = self.drive_id(site, drive)
        item: dict[str, Any] = {
            "id": self.item_id(site, drive, path) if path else "root",
            "name": name,
            "parentReference": {
                "driveId": drive_id,
                "path": f"/drive/root:/{parent}" if parent else "/drive/root:",
            },
            "webUrl": f"https://{site.split(':', 1)[0]}{site.split(':', 1)[-1]}/{drive}/{quote(path)}",
        }
        if self._is_folder(site, drive, path):
            children = {p.split("/")[0] for p in self._children_names(site, drive, path)}
            item["folder"] = {"childCount": len(children)}
            item["lastModifiedDateTime"] = self.started.strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            with self.lock:
                data = self.drive_files[(site, drive, path)]
                modified = self.modified.get((site, drive, path), self.started)
            item["size"] = len(data)
            item["file"] = {"mimeType": "application/octet-stream"}
            item["eTag"] = '"{' + hashlib.md5(data).hexdigest() + '},1"'
            item["cTag"] = item["eTag"]
            item["lastModifiedDateTime"] = modified.astimezone(timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
            item["@microsoft.graph.downloadUrl"] = (
                f"{self.url}/_download/{drive_id}/{item['id']}?token={secrets.token_hex(8)}"
            )
        return item

    def _children_names(self, site: str, drive: str, folder: str) -> list[str]:
        prefix = f"{folder}/" if folder else ""
        names = set()
        for p in self._all_paths(site, drive):
            if p.startswith(prefix) and p != folder:
                rest = p[len(prefix) :]
                if "/" not in rest:
                    names.add(rest)
        return sorted(names)

    # --- built-in routes --------------------------------------------------------------

    def _install_builtin_routes(self) -> None:
        drive = r"/v1.0/drives/(?P<drive>[^/]+)"
        builtin: list[tuple[str, str, Handler, bool]] = [
            ("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", GraphServer._token, False),
            ("GET", r"/v1\.0/sites/(?P<host>[^/:]+):(?P<path>/.*)", GraphServer._site, True),
            ("GET", r"/v1\.0/sites/(?P<site>[^/]+)/drives", GraphServer._drives, True),
            ("GET", drive + r"/root/children", GraphServer._children, True),
            ("GET", drive + r"/root:/(?P<path>.+):/children", GraphServer._children, True),
            ("GET", drive + r"/items/(?P<item>[^/]+)/children", GraphServer._children, True),
            ("GET", drive + r"/items/(?P<item>[^/]+)/content", GraphServer._content, True),
            ("PUT", drive + r"/root:/(?P<path>.+):/content", GraphServer._upload, True),
            ("GET", drive + r"/root:/(?P<path>.+)", GraphServer._item, True),
            ("GET", drive + r"/items/(?P<item>[^/]+)", GraphServer._item, True),
            ("GET", r"/_download/(?P<drive>[^/]+)/(?P<item>[^/]+)", GraphServer._download, False),
        ]
        # add in reverse so the table above reads in match order
        for method, regex, handler, auth in reversed(builtin):
            self.add_route(method, regex, handler, auth)

    def _token(self, req: GraphRequest) -> GraphResponse:
        form = req.form()
        if form.get("grant_type") != "client_credentials":
            return self.json(400, {"error": "unsupported_grant_type"})
        client_id = form.get("client_id", "")
        if "client_secret" in form:
            ok = client_id in self.clients and secrets.compare_digest(
                self.clients[client_id], form["client_secret"]
            )
        elif "client_assertion" in form:
            ok = self._check_assertion(client_id, form["client_assertion"], req.match["tenant"])
        else:
            ok = False
        if not ok:
            return self.json(
                401,
                {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client."},
            )
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = time.time() + self.token_lifetime_s
        return self.json(
            200,
            {"token_type": "Bearer", "expires_in": self.token_lifetime_s, "access_token": token},
        )

    def _check_assertion(self, client_id: str, assertion: str, tenant: str) -> bool:
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        pem = self.certificates.get(client_id)
        if pem is None:
            return False
        try:
            head_b64, payload_b64, sig_b64 = assertion.split(".")
            header = json.loads(_b64url_decode(head_b64))
            payload = json.loads(_b64url_decode(payload_b64))
            cert = x509.load_pem_x509_certificate(pem)
            key = cert.public_key()
            if header.get("alg") != "RS256" or not isinstance(key, rsa.RSAPublicKey):
                return False
            key.verify(
                _b64url_decode(sig_b64),
                f"{head_b64}.{payload_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (ValueError, InvalidSignature):
            return False
        thumb = base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA1())).rstrip(b"=").decode()
        return (
            payload.get("iss") == client_id
            and payload.get("sub") == client_id
            and float(payload.get("exp", 0)) > time.time()
            and header.get("x5t") == thumb
            and tenant in str(payload.get("aud", ""))
        )

    def _site(self, req: GraphRequest) -> GraphResponse:
        site = f"{req.match['host']}:{req.match['path'].rstrip('/')}"
        if not any(s == site for s, _ in self._all_drives()):
            return self.error(404, "itemNotFound", "Requested site could not be found")
        return self.json(
            200,
            {
                "id": self.site_id(site),
                "name": site.rsplit("/", 1)[-1],
                "webUrl": f"https://{req.match['host']}{req.match['path']}",
            },
        )

    def _drives(self, req: GraphRequest) -> GraphResponse:
        names = sorted(d for s, d in self._all_drives() if self.site_id(s) == req.match["site"])
        if not names:
            return self.error(404, "itemNotFound", "Requested site could not be found")
        site = next(s for s, _ in self._all_drives() if self.site_id(s) == req.match["site"])
        return self.json(
            200,
            {
                "value": [
                    {"id": self.drive_id(site, n), "name": n, "driveType": "documentLibrary"}
                    for n in names
                ]
            },
        )

    def _resolve(self, req: GraphRequest) -> DriveKey | None:
        if "item" in req.match and req.match["item"] is not None:
            return self.find_item(req.match["drive"], req.match["item"])
        found = self.find_drive(req.match["drive"])
        if found is None:
            return None
        site, name = found
        path = (req.match.get("path") or "").strip("/")
        if path and path not in self._all_paths(site, name):
            return None
        return (site, name, path)

    def _children(self, req: GraphRequest) -> GraphResponse:
        key = self._resolve(req)
        if key is None or not self._is_folder(*key):
            return self.error(404, "itemNotFound", "The resource could not be found.")
        site, name, folder = key
        names = self._children_names(site, name, folder)
        top = min(int(req.query.get("$top", self.page_size)), self.page_size)
        start = int(req.query.get("$skiptoken", "0"))
        page = names[start : start + top]
        payload: dict[str, Any] = {
            "value": [self._item_json(site, name, f"{folder}/{n}" if folder else n) for n in page]
        }
        if start + top < len(names):
            # the real service returns an absolute, opaque link to the next page
            base = f"{self.url}{quote(req.path)}"
            payload["@odata.nextLink"] = f"{base}?$top={top}&$skiptoken={start + top}"
        return self.json(200, payload)

    def _item(self, req: GraphRequest) -> GraphResponse:
        key = self._resolve(req)
        if key is None:
            return self.error(404, "itemNotFound", "The resource could not be found.")
        return self.json(200, self._item_json(*key))

    def _content(self, req: GraphRequest) -> GraphResponse:
        key = self._resolve(req)
        if key is None or self._is_folder(*key):
            return self.error(404, "itemNotFound", "The resource could not be found.")
        location = self._item_json(*key)["@microsoft.graph.downloadUrl"]
        return GraphResponse(302, b"", {"Location": location})

    def _download(self, req: GraphRequest) -> GraphResponse:
        key = self.find_item(req.match["drive"], req.match["item"])
        if key is None or "token" not in req.query:
            return self.error(404, "itemNotFound", "The resource could not be found.")
        with self.lock:
            data = self.drive_files.get(key)
        if data is None:
            return self.error(404, "itemNotFound", "The resource could not be found.")
        return GraphResponse(200, data, {"Content-Type": "application/octet-stream"})

    def _upload(self, req: GraphRequest) -> GraphResponse:
        found = self.find_drive(req.match["drive"])
        if found is None:
            return self.error(404, "itemNotFound", "The drive could not be found.")
        key = (found[0], found[1], req.match["path"].strip("/"))
        with self.lock:
            created = key not in self.drive_files
            self.drive_files[key] = req.body
            self.modified[key] = datetime.now(timezone.utc)
        return self.json(201 if created else 200, self._item_json(*key))


@contextmanager
def graph_server(page_size: int = 200) -> Iterator[GraphServer]:
    """Start a :class:`GraphServer` on a free loopback port; stop it on exit."""
    server = GraphServer(page_size=page_size)
    server.start()
    try:
        yield server
    finally:
        server.stop()
