"""One Microsoft Graph client: auth, throttling, paging, drives.

Used by the SharePoint connector (reads a document library) and the SharePoint Excel
sink (writes a workbook). Plain Graph REST over ``requests``: every URL comes from the
caller's config (``graph_url``, ``authority_url``), so the same code runs against
sovereign clouds and the local Graph-compatible test server. (office365-rest-python-client
cannot be pointed there: its Graph root comes from a fixed table of Microsoft clouds and
MSAL refuses a non-https authority; see docs/architecture-structure.md.)

- **Auth**: the OAuth2 client-credentials flow of the Microsoft identity platform, with
  a client secret or a certificate (an RS256 ``client_assertion`` JWT signed with the
  PEM's private key, ``x5t`` = the certificate's SHA-1 thumbprint). The token is cached
  until two minutes before it expires and fetched again once on a 401.
- **Throttling**: 429/502/503/504 and connection errors are retried up to
  ``max_retries`` times, waiting for ``Retry-After`` when given, else a bounded
  exponential backoff with jitter, never longer than ``max_backoff_s``.
- **Paging**: :meth:`GraphClient.pages` follows ``@odata.nextLink``.

Failures are raised in the caller's error family (:class:`GraphErrors`): a connector
raises ``ConnectorError``/``ConnectorThrottled``, a sink ``ExportError``/``ExportThrottled``.
The client pickles without its session and token (executors fetch their own).
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from fmf_spark._deps import require
from fmf_spark.errors import FmfError
from fmf_spark.observability.logging import get_logger
from fmf_spark.observability.redaction import redact, register_secret

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: a token is renewed this many seconds before it expires
TOKEN_MARGIN_S = 120

_log = get_logger(__name__)


@dataclass(frozen=True)
class GraphErrors:
    """How the caller's layer reports a Graph failure.

    Attributes:
        base: the layer's error (``ConnectorError``, ``ExportError``); codes are
            ``<prefix>.<kind>``: ``auth``, ``denied``, ``not_found``, ``unreachable``.
        throttled: raised when throttling outlasts the retries (retryable).
        auth: raised when no token can be had (default: ``base``).
        prefix: the code prefix, ``connector`` or ``export``.
    """

    base: type[FmfError]
    throttled: type[FmfError]
    prefix: str
    auth: type[FmfError] | None = None

    def make(
        self, kind: str, message: str, *, hint: str | None = None, retryable: bool | None = None
    ) -> FmfError:
        """The layer's error for a failure of ``kind`` (``auth``, ``denied``...)."""
        cls = self.auth if kind == "auth" and self.auth is not None else self.base
        return cls(message, code=f"{self.prefix}.{kind}", hint=hint, retryable=retryable)


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

    Raises:
        ValueError: the private key is not RSA.
    """
    require("cryptography", "sharepoint")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the certificate's private key must be RSA")
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


class GraphClient:
    """Authenticated, throttling-aware Graph requests (see the module docstring).

    Args:
        who: names the caller in messages (``sink 'excel'``, ``sp``).
        graph_url: the Graph root, e.g. ``https://graph.microsoft.com/v1.0``.
        authority_url: the identity platform, e.g. ``https://login.microsoftonline.com``.
        tenant_id: the directory (tenant) id.
        client_id: the application (client) id.
        client_secret: client-credential auth.
        certificate_pem: certificate auth: PEM with the private key and the certificate.
        certificate_thumbprint: its SHA-1 thumbprint (computed when omitted).
        max_retries: retries of a throttled or failed request.
        max_backoff_s: the longest wait between two tries.
        errors: the caller's error family.
        sleep: how to wait (tests record the waits).

    Example:
        >>> client = GraphClient(who="sp", graph_url=..., ...)  # doctest: +SKIP
        >>> client.drive_id("contoso.sharepoint.com:/sites/team", "Documents")  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        who: str,
        graph_url: str,
        authority_url: str,
        tenant_id: str,
        client_id: str,
        client_secret: SecretStr | None = None,
        certificate_pem: SecretStr | None = None,
        certificate_thumbprint: str | None = None,
        max_retries: int = 5,
        max_backoff_s: float = 60.0,
        errors: GraphErrors,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if client_secret is None and certificate_pem is None:
            raise errors.make("auth", f"{who}: set client_secret or certificate_path")
        self.who = who
        self.graph = graph_url.rstrip("/")
        self.token_url = f"{authority_url.rstrip('/')}/{tenant_id}/oauth2/v2.0/token"
        self.client_id = client_id
        self.max_retries = max_retries
        self.max_backoff_s = max_backoff_s
        self.errors = errors
        self._client_secret = client_secret
        self._certificate_pem = certificate_pem
        self._thumbprint = certificate_thumbprint
        self._sleep = sleep
        self._session: Any = None
        self._token: str | None = None
        self._token_expiry = 0.0
        self._lock = threading.Lock()
        self._drives: dict[tuple[str, str], str] = {}
        #: how many requests were retried (throttled or transient), for metrics and tests
        self.retries = 0

    def __repr__(self) -> str:
        return f"GraphClient({self.who!r}, {self.graph!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_session=None, _token=None, _token_expiry=0.0, _lock=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def register_secrets(self) -> None:
        """Mask the client secret and the certificate in this process's logs."""
        for secret in (self._client_secret, self._certificate_pem):
            if secret is not None:
                register_secret(secret.get_secret_value())

    def url(self, path: str) -> str:
        """A Graph URL from a path (``/drives/...``); full URLs pass through."""
        return path if path.startswith("http") else f"{self.graph}{path}"

    # --- auth -----------------------------------------------------------------------------

    @property
    def session(self) -> Any:
        if self._session is None:
            self._session = require("requests", "sharepoint").Session()
        return self._session

    def _token_form(self) -> dict[str, str]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "scope": GRAPH_SCOPE,
        }
        if self._client_secret is not None:
            form["client_secret"] = self._client_secret.get_secret_value()
            return form
        if self._certificate_pem is None:  # one of the two is checked in __init__
            raise self.errors.make("auth", f"{self.who}: set client_secret or certificate_path")
        try:
            assertion = client_assertion(
                self._certificate_pem.get_secret_value().encode(),
                self.client_id,
                self.token_url,
                self._thumbprint,
            )
        except ValueError as exc:
            raise self.errors.make("auth", f"{self.who}: {exc}") from None
        form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        form["client_assertion"] = assertion
        return form

    def _fetch_token(self) -> str:
        self.register_secrets()
        response = self.send("POST", self.token_url, data=self._token_form(), auth=False)
        if response.status_code != 200:
            try:
                detail = response.json().get("error_description") or response.text
            except ValueError:
                detail = response.text
            raise self.errors.make(
                "auth",
                f"{self.who}: token request failed ({response.status_code}): "
                f"{redact(str(detail))[:300]}",
                hint="check tenant_id, client_id and the client secret or certificate",
            )
        body = response.json()
        token = str(body["access_token"])
        register_secret(token)
        self._token = token
        self._token_expiry = time.time() + float(body.get("expires_in", 3600))
        return token

    def bearer(self, refresh: bool = False) -> str:
        """The access token, fetched when missing, near expiry or ``refresh``."""
        with self._lock:
            if refresh or self._token is None or self._token_expiry - time.time() < TOKEN_MARGIN_S:
                return self._fetch_token()
            return self._token

    # --- requests -------------------------------------------------------------------------

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(self.max_backoff_s, max(0.0, float(retry_after)))
            except ValueError:
                pass  # an HTTP date: fall back to our own backoff
        return min(self.max_backoff_s, 0.5 * 2**attempt) * (0.5 + random.random() / 2)

    def _wait(self, attempt: int, retry_after: str | None, what: str) -> None:
        wait = self._backoff(attempt, retry_after)
        _log.info("graph: %s; retrying in %.2fs", what, wait)
        self.retries += 1
        self._sleep(wait)

    def send(self, method: str, url: str, *, auth: bool = True, **kwargs: Any) -> Any:
        """One request with throttling/transient retries and one token refresh on 401.

        Returns the response whatever its status (the caller decides what is an error),
        except a throttling or connection failure that outlasts the retries.
        """
        requests = require("requests", "sharepoint")
        url = self.url(url)
        headers = dict(kwargs.pop("headers", None) or {})
        refreshed = False
        attempt = 0
        while True:
            if auth:
                headers["Authorization"] = f"Bearer {self.bearer()}"
            try:
                response = self.session.request(
                    method, url, headers=headers, timeout=(10, 120), **kwargs
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= self.max_retries:
                    raise self.errors.make(
                        "unreachable",
                        f"{method} {url}: {type(exc).__name__} after {attempt} retries",
                        retryable=True,
                    ) from None
                self._wait(attempt, None, f"{type(exc).__name__} on {url}")
                attempt += 1
                continue
            if auth and response.status_code == 401 and not refreshed:
                refreshed = True
                response.close()
                self.bearer(refresh=True)
                continue
            if response.status_code in RETRY_STATUSES:
                retry_after = response.headers.get("Retry-After")
                response.close()
                if attempt >= self.max_retries:
                    raise self.errors.throttled(
                        f"{method} {url}: HTTP {response.status_code} after {attempt} retries",
                        hint="Graph is throttling this app: lower the parallelism, raise "
                        "max_retries, or rerun later",
                    )
                self._wait(attempt, retry_after, f"{response.status_code} on {url}")
                attempt += 1
                continue
            return response

    def get_json(self, url: str) -> dict[str, Any]:
        """GET that must succeed; 404, 401/403 and other errors in the caller's family."""
        response = self.send("GET", url)
        if response.status_code == 404:
            raise self.errors.make("not_found", f"{self.who}: not found: {self.url(url)}")
        if response.status_code in (401, 403):
            raise self.errors.make(
                "denied",
                f"{self.who}: access denied ({response.status_code}) to {self.url(url)}",
                hint="grant the app Sites.Read.All / Sites.ReadWrite.All (or Sites.Selected "
                "on this site)",
            )
        if response.status_code >= 400:
            raise self.errors.make(
                "error",
                f"{self.who}: HTTP {response.status_code} on {self.url(url)}: "
                f"{redact(response.text[:200])}",
            )
        result: dict[str, Any] = response.json()
        return result

    def pages(self, url: str) -> Iterator[dict[str, Any]]:
        """The items of a collection, page after page (``@odata.nextLink``)."""
        next_url: str | None = url
        while next_url:
            page = self.get_json(next_url)
            yield from page.get("value", [])
            next_url = page.get("@odata.nextLink")

    def drive_id(self, site: str, drive: str) -> str:
        """The id of document library ``drive`` in ``site`` (``host:/sites/name``)."""
        key = (site, drive)
        if key not in self._drives:
            host, _, site_path = site.partition(":")
            found = self.get_json(f"/sites/{host}:{quote(site_path)}")
            drives = self.get_json(f"/sites/{found['id']}/drives").get("value", [])
            for item in drives:
                if item.get("name") == drive:
                    self._drives[key] = str(item["id"])
                    break
            else:
                names = ", ".join(d.get("name", "?") for d in drives)
                raise self.errors.make(
                    "not_found",
                    f"{self.who}: no library '{drive}' in {site} (found: {names or 'none'})",
                )
        return self._drives[key]
