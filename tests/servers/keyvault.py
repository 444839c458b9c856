"""A Key-Vault-compatible HTTPS endpoint on loopback, with a self-signed certificate.

It speaks the part of the Key Vault REST API that ``azure-keyvault-secrets`` uses to
read a secret: ``GET /secrets/{name}[/{version}]?api-version=...``. Like the real
service, a request without a bearer token gets ``401`` with a ``WWW-Authenticate``
challenge; the SDK then asks its credential for a token and retries. Unknown names
answer ``404 SecretNotFound`` in Key Vault's error shape.
"""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.servers.http import send_json

TOKEN = "local-kv-token"


def make_self_signed(folder: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for 127.0.0.1/localhost; return (cert, key)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "kv-cert.pem", folder / "kv-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class KeyVaultState:
    secrets: dict[str, str] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)


def _handler(state: KeyVaultState, base_url: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(
            self, status: int, body: dict | None, headers: dict[str, str] | None = None
        ) -> None:
            send_json(self, status, body, headers, "application/json; charset=utf-8")

        def do_GET(self) -> None:
            state.requests.append(self.path)
            auth = self.headers.get("Authorization", "")
            if auth != f"Bearer {TOKEN}":
                challenge = (
                    'Bearer authorization="https://login.microsoftonline.com/tenant", '
                    'resource="https://vault.azure.net"'
                )
                self._send(
                    401,
                    {"error": {"code": "Unauthorized", "message": "no token"}},
                    {"WWW-Authenticate": challenge},
                )
                return
            path = self.path.split("?", 1)[0].strip("/").split("/")
            if len(path) < 2 or path[0] != "secrets":
                self._send(400, {"error": {"code": "BadParameter", "message": "bad path"}})
                return
            name = path[1]
            if name not in state.secrets:
                self._send(
                    404,
                    {
                        "error": {
                            "code": "SecretNotFound",
                            "message": f"A secret with (name/id) {name} was not found in this key vault.",
                        }
                    },
                )
                return
            self._send(
                200,
                {
                    "value": state.secrets[name],
                    "id": f"{base_url[0]}/secrets/{name}/0123456789abcdef",
                    "attributes": {
                        "enabled": True,
                        "created": 1700000000,
                        "updated": 1700000000,
                        "recoveryLevel": "Recoverable",
                    },
                },
            )

    return Handler


@contextmanager
def keyvault_server(
    folder: Path, secrets: dict[str, str]
) -> Iterator[tuple[str, Path, KeyVaultState]]:
    """Serve ``secrets`` over HTTPS; yield (vault URL, CA certificate path, state)."""
    cert, key = make_self_signed(folder)
    state = KeyVaultState(dict(secrets))
    base: list[str] = [""]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state, base))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    base[0] = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base[0], cert, state
    finally:
        server.shutdown()
        server.server_close()
