"""Small files on ADLS Gen2 and Fabric OneLake (``abfss://``), through the DFS REST API.

``abfss://<container>@<host>/<path>`` is ``https://<host>/<container>/<path>``: for
OneLake the container is the workspace and the path starts with the item
(``fmf_lh.Lakehouse/Files/...``). The config, the prompts and a chain file are read,
and ``run.yaml`` written, with plain HTTPS calls: the driver needs them before a Spark
session exists, and a Spark Connect client has no Hadoop file system to ask.

The bearer token (scope ``https://storage.azure.com/.default``) comes from, in order:

1. Fabric's ``notebookutils.credentials.getToken("storage")``, the identity the
   notebook or Spark job definition runs as;
2. azure-identity's ``DefaultAzureCredential`` (the ``azure`` extra): a service
   principal's ``AZURE_*`` variables, a managed identity, the Azure CLI's sign-in.

``FMF_ADLS_ENDPOINT`` (e.g. ``http://127.0.0.1:10004``) replaces ``https://<host>`` for
every account: a private endpoint, or a local DFS-compatible server in tests.

Example:
    >>> text = adls_client().read("abfss://ws@onelake.dfs.fabric.microsoft.com/lh.Lakehouse/Files/fmf/conf/fmf.yaml")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from fmf_spark.errors import FmfError

SCHEMES = ("abfss://", "abfs://")
STORAGE_SCOPE = "https://storage.azure.com/.default"
API_VERSION = "2023-11-03"
ENDPOINT_ENV = "FMF_ADLS_ENDPOINT"

#: ``() -> (token, expires_on epoch seconds)``
TokenSource = Callable[[], tuple[str, float]]


def is_adls(uri: str) -> bool:
    """Whether ``uri`` is an ``abfss://`` (or ``abfs://``) location."""
    return uri.startswith(SCHEMES)


def split(uri: str) -> tuple[str, str, str]:
    """``abfss://fs@host/a/b`` -> ``("host", "fs", "a/b")``."""
    rest = uri.split("://", 1)[1]
    authority, _, path = rest.partition("/")
    container, at, host = authority.partition("@")
    if not at or not container or not host:
        raise FmfError(
            f"{uri} is not an abfss:// location",
            code="storage.read",
            hint="abfss://<container or workspace>@<account host>/<path>",
        )
    return host, container, path.strip("/")


def _fabric_token() -> tuple[str, float] | None:
    try:
        import notebookutils  # type: ignore[import-not-found]  # Fabric's runtime only
    except ImportError:
        return None
    token = notebookutils.credentials.getToken("storage")
    return str(token), time.time() + 300  # Fabric refreshes it; ask again in 5 minutes


def default_token_source() -> TokenSource:
    """Fabric's identity when running in Fabric, else ``DefaultAzureCredential``."""
    credential: Any = None

    def token() -> tuple[str, float]:
        nonlocal credential
        fabric = _fabric_token()
        if fabric is not None:
            return fabric
        if credential is None:
            from fmf_spark._deps import require

            credential = require("azure.identity").DefaultAzureCredential()
        access = credential.get_token(STORAGE_SCOPE)
        return str(access.token), float(access.expires_on)

    return token


class AdlsClient:
    """Read, write, test and list files over the DFS REST API with a bearer token.

    Args:
        token_source: where tokens come from (default: :func:`default_token_source`).
        endpoint: replaces ``https://<host>`` (default: ``$FMF_ADLS_ENDPOINT``).
        timeout_s: per request.
    """

    def __init__(
        self,
        token_source: TokenSource | None = None,
        *,
        endpoint: str | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        self._source = token_source or default_token_source()
        self._endpoint = endpoint if endpoint is not None else os.environ.get(ENDPOINT_ENV)
        self._timeout_s = timeout_s
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the token
        return f"AdlsClient(endpoint={self._endpoint!r})"

    # --- requests ----------------------------------------------------------------------

    def _bearer(self) -> str:
        with self._lock:
            if self._token is None or self._token[1] - time.time() < 120:
                try:
                    self._token = self._source()
                except FmfError:
                    raise
                except Exception as exc:  # azure-identity's CredentialUnavailableError...
                    raise FmfError(
                        f"no token for Azure storage: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}",
                        code="storage.auth",
                        hint="sign in (az login), set AZURE_CLIENT_ID/AZURE_TENANT_ID/"
                        "AZURE_CLIENT_SECRET, or run where a managed identity is assigned",
                    ) from None
            return self._token[0]

    def _url(self, uri: str, **query: str) -> str:
        host, container, path = split(uri)
        base = (self._endpoint or f"https://{host}").rstrip("/")
        url = f"{base}/{urllib.parse.quote(container)}"
        if path:
            url += "/" + urllib.parse.quote(path)
        return f"{url}?{urllib.parse.urlencode(query)}" if query else url

    def _call(
        self, method: str, url: str, action: str, uri: str, body: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(url, data=body, method=method)
        request.add_header("Authorization", f"Bearer {self._bearer()}")
        request.add_header("x-ms-version", API_VERSION)
        if body is not None:
            request.add_header("Content-Length", str(len(body)))
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and action in ("exists", "list"):
                return 404, dict(exc.headers), b""
            raise self._error(action, uri, exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FmfError(
                f"cannot {_verb(action)} {uri}: {reason}", code=f"storage.{_verb(action)}"
            ) from None

    @staticmethod
    def _error(action: str, uri: str, exc: urllib.error.HTTPError) -> FmfError:
        code = exc.headers.get("x-ms-error-code", "") if exc.headers else ""
        message = ""
        with contextlib.suppress(ValueError):
            message = json.loads(exc.read() or b"{}").get("error", {}).get("message", "")
        first = message.splitlines()[0] if message else ""
        reason = " ".join(p for p in (str(exc.code), code, first) if p)
        hint = (
            "the identity needs a Storage Blob Data role on the account (OneLake: a workspace role)"
            if exc.code in (401, 403)
            else "check the abfss:// location"
        )
        return FmfError(
            f"cannot {_verb(action)} {uri}: {reason}", code=f"storage.{_verb(action)}", hint=hint
        )

    # --- operations --------------------------------------------------------------------

    def read(self, uri: str) -> bytes:
        """The whole file.

        Raises:
            FmfError: ``storage.read`` with the HTTP status and the service's error code.
        """
        return self._call("GET", self._url(uri), "read", uri)[2]

    def exists(self, uri: str) -> bool:
        """Whether a file (not a folder) exists at ``uri``."""
        status, headers, _ = self._call("HEAD", self._url(uri), "exists", uri)
        return status != 404 and headers.get("x-ms-resource-type", "file") == "file"

    def write(self, uri: str, data: bytes) -> None:
        """Create or replace the file: create, append the bytes, flush (commit) them.

        Raises:
            FmfError: ``storage.write`` with the HTTP status and the service's error code.
        """
        self._call("PUT", self._url(uri, resource="file"), "write", uri, b"")
        if data:
            self._call("PATCH", self._url(uri, action="append", position="0"), "write", uri, data)
        self._call(
            "PATCH", self._url(uri, action="flush", position=str(len(data))), "write", uri, b""
        )

    def list_files(self, uri: str) -> list[str]:
        """Names of the files directly in folder ``uri``, sorted; none when it is missing."""
        host, container, path = split(uri)
        root = f"abfss://{container}@{host}"
        names: list[str] = []
        continuation = ""
        while True:
            query = {"resource": "filesystem", "recursive": "false"}
            if path:
                query["directory"] = path
            if continuation:
                query["continuation"] = continuation
            status, headers, body = self._call("GET", self._url(root, **query), "list", uri)
            if status == 404:
                return []
            for entry in json.loads(body or b"{}").get("paths", []):
                if str(entry.get("isDirectory", "false")).lower() != "true":
                    names.append(str(entry["name"]).rsplit("/", 1)[-1])
            continuation = headers.get("x-ms-continuation", "")
            if not continuation:
                return sorted(names)


def _verb(action: str) -> str:
    return "write" if action == "write" else "read"


_client: AdlsClient | None = None
_client_lock = threading.Lock()


def adls_client() -> AdlsClient:
    """The process's client (its token is reused until it is about to expire)."""
    global _client
    with _client_lock:
        if _client is None:
            _client = AdlsClient()
        return _client
