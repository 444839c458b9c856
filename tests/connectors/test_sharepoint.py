"""The SharePoint connector against the local Graph-compatible server (paging, 429, auth)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

from fmf_spark.config.models import FmfConfig
from fmf_spark.config.secrets import SecretResolver
from fmf_spark.connectors import get_connector
from fmf_spark.connectors.sharepoint import SharePointConnector
from fmf_spark.errors import ConnectorError, ConnectorThrottled
from fmf_spark.schemas import FILES_SCHEMA
from tests.servers.graph import GraphServer, graph_server

SITE = "contoso.sharepoint.com:/sites/finance"
SECRET = "graph-client-secret-value"
FILES = {
    "Shared/Reports/q1.md": b"# Q1\nrevenue up",
    "Shared/Reports/q2.md": b"# Q2\nrevenue flat",
    "Shared/Reports/2024/q3.md": b"# Q3",
    "Shared/Reports/2024/q4.txt": b"Q4 plain",
    "Shared/Reports/huge.bin": b"z" * 500,
    "Shared/Other/skip.md": b"outside the folder",
}


@pytest.fixture
def server() -> Iterator[GraphServer]:
    with graph_server(page_size=2) as srv:
        srv.add_client("app-id", SECRET)
        for path, data in FILES.items():
            srv.drive_files[(SITE, "Documents", path)] = data
        srv.modified[(SITE, "Documents", "Shared/Reports/q1.md")] = datetime(
            2026, 3, 1, 12, tzinfo=timezone.utc
        )
        srv.drives.add((SITE, "Archive"))
        yield srv


def _config(server: GraphServer, **extra) -> FmfConfig:
    spec = {
        "type": "sharepoint",
        "graph_url": server.graph_url,
        "authority_url": server.url,
        "tenant_id": "tenant-42",
        "client_id": "app-id",
        "site": SITE,
        "drive": "Documents",
        "folder": "Shared/Reports",
        "max_file_bytes": 100,
        "max_backoff_s": 2,
        **extra,
    }
    if "certificate_path" not in extra:
        spec["client_secret"] = {"secret": "sp_secret"}
    return FmfConfig.model_validate(
        {
            "secrets": {"names": {"sp_secret": {"provider": "env", "key": "SP_SECRET"}}},
            "connectors": {"sp": spec},
        }
    )


def _connector(server: GraphServer, secret: str = SECRET, **extra) -> SharePointConnector:
    cfg = _config(server, **extra)
    resolver = SecretResolver(cfg.secrets, environ={"SP_SECRET": secret})
    conn = get_connector("sp", cfg, resolver)
    assert isinstance(conn, SharePointConnector)
    return conn


def test_lists_folder_recursively_through_pages(server: GraphServer) -> None:
    conn = _connector(server)
    conn.precheck()
    infos = list(conn.list())
    assert [i.ref.path for i in infos] == [
        "huge.bin",
        "q1.md",
        "q2.md",
        "2024/q3.md",
        "2024/q4.txt",
    ]
    q1 = next(i for i in infos if i.ref.path == "q1.md")
    assert (q1.size, q1.modified) == (
        len(FILES["Shared/Reports/q1.md"]),
        datetime(2026, 3, 1, 12, tzinfo=timezone.utc),
    )
    assert [i.ref.path for i in conn.list("**/*.md")] == ["q1.md", "q2.md", "2024/q3.md"]
    # the Reports folder has 4 children at page size 2: two pages, linked by nextLink
    children = [
        p for m, p, s in server.requests if "Shared/Reports:/children" in p or "skiptoken" in p
    ]
    assert any("$skiptoken=2" in p for p in children)


def test_429_with_retry_after_is_waited_then_retried(server: GraphServer) -> None:
    waits: list[float] = []
    conn = _connector(server)
    conn._sleep = waits.append
    server.inject_fault(status=429, on_request=2, retry_after=1.5, path_regex="/children")
    server.inject_fault(status=503, on_request=1, retry_after=None, path_regex="/content")
    paths = [i.ref.path for i in conn.list("*.md")]
    assert paths == ["q1.md", "q2.md", "2024/q3.md"]
    with conn.open(next(iter(conn.list("q2.md"))).ref) as stream:
        assert stream.read() == FILES["Shared/Reports/q2.md"]
    assert waits[0] == 1.5  # Retry-After honoured
    assert 0 < waits[1] <= 2  # no Retry-After: bounded backoff
    assert conn.retries == 2
    assert [s for _, _, s in server.requests].count(429) == 1


def test_gives_up_after_max_retries(server: GraphServer) -> None:
    conn = _connector(server, max_retries=2)
    conn._sleep = lambda s: None
    server.inject_fault(status=503, on_request=1, retry_after=0, path_regex="/sites/", times=10)
    with pytest.raises(ConnectorThrottled) as err:
        conn.precheck()
    assert err.value.retryable and "after 2 retries" in err.value.message


def test_bad_secret_fails_precheck_without_leaking_it(server: GraphServer) -> None:
    conn = _connector(server, secret="wrong-secret-value")
    with pytest.raises(ConnectorError) as err:
        conn.precheck()
    assert err.value.code == "connector.auth"
    assert "wrong-secret-value" not in err.value.one_line()
    assert "wrong-secret-value" not in repr(conn)


def test_unknown_library(server: GraphServer) -> None:
    conn = _connector(server, drive="Nope")
    with pytest.raises(ConnectorError, match=r"no library 'Nope'.*found: Archive, Documents"):
        conn.precheck()


def _self_signed(tmp_path: Path, filename: str = "app.pem") -> tuple[Path, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fmf-test")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = tmp_path / filename
    path.write_bytes(key_pem + cert_pem)
    return path, cert_pem


def test_certificate_auth(server: GraphServer, tmp_path: Path) -> None:
    pem_path, cert_pem = _self_signed(tmp_path)
    server.add_certificate("app-id", cert_pem)
    conn = _connector(server, certificate_path=str(pem_path))
    assert [i.ref.path for i in conn.list("q1.md")] == ["q1.md"]
    other_path, _ = _self_signed(tmp_path, "unknown.pem")  # a key the server does not know
    other = _connector(server, certificate_path=str(other_path))
    with pytest.raises(ConnectorError) as err:
        other.precheck()
    assert err.value.code == "connector.auth"


def test_to_dataframe_downloads_on_executors(spark, server: GraphServer) -> None:
    conn = _connector(server)
    infos = {i.ref.path: i for i in conn.list()}
    server.inject_fault(status=429, on_request=1, retry_after=0.1, path_regex="/content")
    df = conn.to_dataframe(spark)
    rows = []
    for path, info in infos.items():
        data = FILES[f"Shared/Reports/{path}"]
        big = len(data) > 100
        rows.append(
            (
                "sp",
                info.ref.uri,
                path,
                len(data),
                info.modified,
                info.etag,
                None if big else data,
                "error" if big else "ok",
                ("connector.file_too_large", f"{path} is larger than max_file_bytes=100", False)
                if big
                else None,
            )
        )
    assertDataFrameEqual(df, spark.createDataFrame(rows, FILES_SCHEMA))
    assert [s for _, _, s in server.requests].count(429) == 1
