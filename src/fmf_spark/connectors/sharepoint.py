"""The ``sharepoint`` connector: files of a SharePoint document library, over Microsoft Graph.

Plain Graph REST over ``requests`` rather than office365-rest-python-client: every URL
comes from the config (``authority_url``, ``graph_url``), so the connector runs against
sovereign clouds and the local Graph-compatible test server alike, and throttling is
ours to handle: 429/503/502/504 and connection errors are retried up to ``max_retries``
times, waiting for ``Retry-After`` when given, else a bounded exponential backoff with
jitter, never longer than ``max_backoff_s``.

Auth is the OAuth2 client-credentials flow of the Microsoft identity platform, with a
client secret or a certificate (an RS256 ``client_assertion`` JWT signed with the PEM's
private key, ``x5t`` = the certificate's SHA-1 thumbprint). The secret and the PEM are
read on the driver and travel pickled inside the connector as ``SecretStr``; executors
register them for redaction and fetch their own tokens.

Listing: site by path, library by name, then the folder's children page by page
(``@odata.nextLink``), recursing into sub-folders. Downloads stream the ``/content``
redirect target.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import SecretStr

from fmf_spark._deps import require
from fmf_spark.config.connectors import SharePointConnectorConfig
from fmf_spark.connectors.base import (
    PathFilter,
    ResourceInfo,
    ResourceRef,
    files_dataframe,
    register_connector,
)
from fmf_spark.errors import ConnectorError, ConnectorThrottled
from fmf_spark.observability.logging import get_logger
from fmf_spark.observability.redaction import redact, register_secret

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from fmf_spark.config.secrets import SecretResolver

CONNECTOR_TYPE = "sharepoint"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
RETRY_STATUSES = {429, 502, 503, 504}
_log = get_logger("connectors.sharepoint")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def client_assertion(
    pem: bytes, client_id: str, audience: str, thumbprint_hex: str | None = None
) -> str:
    """An RS256 JWT client assertion for certificate auth (Microsoft identity platform).

    Args:
        pem: PEM holding the private key and the certificate.
        client_id: the application (client) id; ``iss`` and ``sub``.
        audience: the token endpoint URL.
        thumbprint_hex: the SHA-1 thumbprint; computed from the certificate when omitted.
    """
    require("cryptography", "sharepoint")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConnectorError("the certificate's private key must be RSA", code="connector.auth")
    if thumbprint_hex:
        thumb = bytes.fromhex(thumbprint_hex.replace(":", ""))
    else:
        cert = x509.load_pem_x509_certificate(pem)
        thumb = cert.fingerprint(hashes.SHA1())
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "x5t": _b64url(thumb)}
    payload = {
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "iat": now,
        "exp": now + 600,
    }
    signing_input = (
        f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(payload).encode())}"
    )
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class SharePointConnector:
    """Files under ``site / drive / folder``; paths are relative to ``folder``."""

    def __init__(
        self,
        name: str,
        config: SharePointConnectorConfig,
        client_secret: SecretStr | None = None,
        certificate_pem: SecretStr | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if client_secret is None and certificate_pem is None:
            raise ConnectorError(
                f"{name}: set client_secret or certificate_path", code="config.invalid"
            )
        self.name = name
        self.config = config
        self.max_file_bytes = config.max_file_bytes
        self.folder = config.folder.strip("/")
        self._client_secret = client_secret
        self._certificate_pem = certificate_pem
        self._sleep = sleep
        self._session: Any = None
        self._token: str | None = None
        self._token_expiry = 0.0
        self._lock = threading.Lock()
        self._drive_id: str | None = None
        #: how many requests were retried (throttled or transient), for metrics and tests
        self.retries = 0

    def __repr__(self) -> str:
        return (
            f"SharePointConnector(name={self.name!r}, site={self.config.site!r}, "
            f"drive={self.config.drive!r}, folder={self.folder!r})"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_session=None, _token=None, _token_expiry=0.0, _lock=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def on_executor(self) -> None:
        for secret in (self._client_secret, self._certificate_pem):
            if secret is not None:
                register_secret(secret.get_secret_value())

    # --- HTTP ---------------------------------------------------------------------------

    @property
    def session(self) -> Any:
        if self._session is None:
            requests = require("requests", "sharepoint")
            self._session = requests.Session()
        return self._session

    def _token_url(self) -> str:
        return f"{self.config.authority_url.rstrip('/')}/{self.config.tenant_id}/oauth2/v2.0/token"

    def _fetch_token(self) -> str:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.config.client_id,
            "scope": GRAPH_SCOPE,
        }
        if self._client_secret is not None:
            form["client_secret"] = self._client_secret.get_secret_value()
        else:
            assert self._certificate_pem is not None  # checked in __init__
            form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            form["client_assertion"] = client_assertion(
                self._certificate_pem.get_secret_value().encode(),
                self.config.client_id,
                self._token_url(),
                self.config.certificate_thumbprint,
            )
        response = self._send("POST", self._token_url(), data=form, auth=False)
        if response.status_code != 200:
            try:
                detail = response.json().get("error_description") or response.text
            except ValueError:
                detail = response.text
            raise ConnectorError(
                f"{self.name}: token request failed ({response.status_code}): {redact(str(detail))[:300]}",
                code="connector.auth",
                hint="check tenant_id, client_id and the client secret or certificate",
            )
        body = response.json()
        token = str(body["access_token"])
        register_secret(token)
        self._token = token
        self._token_expiry = time.time() + float(body.get("expires_in", 3600))
        return token

    def _bearer(self, refresh: bool = False) -> str:
        with self._lock:
            if refresh or self._token is None or self._token_expiry - time.time() < 120:
                return self._fetch_token()
            return self._token

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        cap = self.config.max_backoff_s
        if retry_after:
            try:
                return min(cap, max(0.0, float(retry_after)))
            except ValueError:
                pass  # an HTTP date: fall back to our own backoff
        return min(cap, 0.5 * 2**attempt) * (0.5 + random.random() / 2)

    def _send(self, method: str, url: str, *, auth: bool = True, **kwargs: Any) -> Any:
        """One request with throttling/transient retries and one token refresh on 401."""
        requests = require("requests", "sharepoint")
        refreshed = False
        attempt = 0
        while True:
            headers = dict(kwargs.pop("headers", {}) or {})
            if auth:
                headers["Authorization"] = f"Bearer {self._bearer()}"
            try:
                response = self.session.request(
                    method, url, headers=headers, timeout=(10, 120), **kwargs
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= self.config.max_retries:
                    raise ConnectorError(
                        f"{method} {url}: {type(exc).__name__} after {attempt} retries",
                        code="connector.unreachable",
                        retryable=True,
                    ) from None
                self.retries += 1
                self._sleep(self._backoff(attempt, None))
                attempt += 1
                continue
            if auth and response.status_code == 401 and not refreshed:
                refreshed = True
                response.close()
                self._bearer(refresh=True)
                continue
            if response.status_code in RETRY_STATUSES:
                retry_after = response.headers.get("Retry-After")
                response.close()
                if attempt >= self.config.max_retries:
                    raise ConnectorThrottled(
                        f"{method} {url}: HTTP {response.status_code} after {attempt} retries",
                        hint="lower the parallelism or raise connectors.<name>.max_retries",
                    )
                wait = self._backoff(attempt, retry_after)
                _log.info("graph %s on %s; retrying in %.1fs", response.status_code, url, wait)
                self.retries += 1
                self._sleep(wait)
                attempt += 1
                continue
            return response

    def _get_json(self, url: str) -> dict[str, Any]:
        response = self._send("GET", url)
        if response.status_code == 404:
            raise ConnectorError(f"{self.name}: not found: {url}", code="connector.not_found")
        if response.status_code in (401, 403):
            raise ConnectorError(
                f"{self.name}: access denied ({response.status_code}) to {url}",
                code="connector.denied",
                hint="grant the app Sites.Read.All (or Sites.Selected on this site)",
            )
        if response.status_code >= 400:
            raise ConnectorError(
                f"{self.name}: HTTP {response.status_code} on {url}: {response.text[:200]}"
            )
        result: dict[str, Any] = response.json()
        return result

    # --- Graph navigation -----------------------------------------------------------------

    @property
    def graph(self) -> str:
        return self.config.graph_url.rstrip("/")

    def drive_id(self) -> str:
        if self._drive_id is None:
            host, _, site_path = self.config.site.partition(":")
            site = self._get_json(f"{self.graph}/sites/{host}:{quote(site_path)}")
            drives = self._get_json(f"{self.graph}/sites/{site['id']}/drives")
            for drive in drives.get("value", []):
                if drive.get("name") == self.config.drive:
                    self._drive_id = str(drive["id"])
                    break
            else:
                names = ", ".join(d.get("name", "?") for d in drives.get("value", []))
                raise ConnectorError(
                    f"{self.name}: no library '{self.config.drive}' in {self.config.site} "
                    f"(found: {names or 'none'})",
                    code="connector.not_found",
                )
        return self._drive_id

    def _children_url(self, folder: str) -> str:
        base = f"{self.graph}/drives/{self.drive_id()}/root"
        if not folder:
            return f"{base}/children"
        return f"{base}:/{quote(folder)}:/children"

    def _iter_children(self, url: str) -> Iterator[dict[str, Any]]:
        next_url: str | None = url
        while next_url:
            page = self._get_json(next_url)
            yield from page.get("value", [])
            next_url = page.get("@odata.nextLink")

    def precheck(self) -> None:
        self.drive_id()
        next(iter(self._iter_children(self._children_url(self.folder))), None)

    def list(self, selector: str | Sequence[str] | None = None) -> Iterator[ResourceInfo]:
        keep = PathFilter(self.config.include, self.config.exclude, selector)
        drive_id = self.drive_id()
        pending = [(self.folder, self._children_url(self.folder))]
        while pending:
            folder, url = pending.pop(0)
            for item in self._iter_children(url):
                item_path = f"{folder}/{item['name']}" if folder else str(item["name"])
                rel = item_path[len(self.folder) :].lstrip("/")
                if "folder" in item:
                    pending.append(
                        (item_path, f"{self.graph}/drives/{drive_id}/items/{item['id']}/children")
                    )
                    continue
                if "file" not in item or not keep(rel):
                    continue
                yield ResourceInfo(
                    ref=ResourceRef(
                        self.name,
                        str(item.get("webUrl") or item_path),
                        rel,
                        f"{drive_id}/{item['id']}",
                    ),
                    size=int(item["size"]) if item.get("size") is not None else None,
                    modified=_parse_time(item.get("lastModifiedDateTime")),
                    etag=item.get("eTag"),
                )

    def open(self, ref: ResourceRef) -> IO[bytes]:
        drive_id, _, item_id = ref.handle.partition("/")
        url = f"{self.graph}/drives/{drive_id}/items/{item_id}/content"
        response = self._send("GET", url, stream=True)
        if response.status_code != 200:
            response.close()
            code = "connector.not_found" if response.status_code == 404 else "connector.error"
            raise ConnectorError(
                f"download {ref.path}: HTTP {response.status_code}",
                code=code,
                retryable=response.status_code >= 500,
            )
        raw = response.raw
        raw.decode_content = True
        stream: IO[bytes] = raw
        return stream

    def to_dataframe(
        self, spark: SparkSession, selector: str | Sequence[str] | None = None
    ) -> DataFrame:
        return files_dataframe(spark, self, self.list(selector))


def _factory(
    name: str, config: SharePointConnectorConfig, resolver: SecretResolver | None
) -> SharePointConnector:
    secret = pem = None
    if config.client_secret is not None:
        if resolver is None:
            raise ConnectorError(f"{name}: a secret resolver is needed", code="config.invalid")
        secret = resolver.resolve(config.client_secret)
    elif config.certificate_path is not None:
        try:
            pem_text = Path(config.certificate_path).expanduser().read_text()
        except OSError as exc:
            raise ConnectorError(
                f"{name}: cannot read certificate_path: {exc.strerror}", code="config.invalid"
            ) from None
        register_secret(pem_text)
        pem = SecretStr(pem_text)
    return SharePointConnector(name, config, secret, pem)


register_connector(CONNECTOR_TYPE, _factory)  # type: ignore[arg-type]
