"""The Graph-compatible test server itself: auth, paging, download, faults, extension."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.servers.graph import GraphRequest, GraphResponse, GraphServer, graph_server

SITE = "contoso.sharepoint.com:/sites/team"


@pytest.fixture
def server() -> Iterator[GraphServer]:
    with graph_server(page_size=2) as srv:
        srv.add_client("app", "s3cret-value")
        for i in range(5):
            srv.drive_files[(SITE, "Documents", f"reports/r{i}.txt")] = f"report {i}".encode()
        srv.drive_files[(SITE, "Documents", "top.md")] = b"# top"
        yield srv


def _token(server: GraphServer) -> dict[str, str]:
    r = requests.post(
        f"{server.url}/tenant-1/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "app",
            "client_secret": "s3cret-value",
            "scope": "https://graph.microsoft.com/.default",
        },
        timeout=5,
    )
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_auth_site_drives_paging_download(server: GraphServer) -> None:
    assert requests.get(f"{server.graph_url}/sites/x:/y", timeout=5).status_code == 401
    bad = requests.post(
        f"{server.url}/t/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": "app", "client_secret": "no"},
        timeout=5,
    )
    assert bad.status_code == 401
    auth = _token(server)
    site = requests.get(
        f"{server.graph_url}/sites/contoso.sharepoint.com:/sites/team", headers=auth, timeout=5
    ).json()
    assert site["id"] == GraphServer.site_id(SITE)
    drives = requests.get(
        f"{server.graph_url}/sites/{site['id']}/drives", headers=auth, timeout=5
    ).json()
    assert [d["name"] for d in drives["value"]] == ["Documents"]
    url: str | None = (
        f"{server.graph_url}/drives/{drives['value'][0]['id']}/root:/reports:/children"
    )
    names, pages = [], 0
    while url:
        page = requests.get(url, headers=auth, timeout=5).json()
        names += [item["name"] for item in page["value"]]
        url = page.get("@odata.nextLink")
        pages += 1
    assert names == [f"r{i}.txt" for i in range(5)]
    assert pages == 3
    item_id = GraphServer.item_id(SITE, "Documents", "reports/r3.txt")
    content = requests.get(
        f"{server.graph_url}/drives/{drives['value'][0]['id']}/items/{item_id}/content",
        headers=auth,
        timeout=5,
    )
    assert content.content == b"report 3"
    assert content.history[0].status_code == 302


def test_fault_injection_and_extension(server: GraphServer) -> None:
    auth = _token(server)
    server.inject_fault(status=429, on_request=2, retry_after=7, path_regex="/sites/")
    url = f"{server.graph_url}/sites/contoso.sharepoint.com:/sites/team"
    assert requests.get(url, headers=auth, timeout=5).status_code == 200
    throttled = requests.get(url, headers=auth, timeout=5)
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "7")
    assert requests.get(url, headers=auth, timeout=5).status_code == 200

    def echo(srv: GraphServer, req: GraphRequest) -> GraphResponse:
        return srv.json(200, {"item": srv.find_item(req.match["drive"], req.match["item"])})

    drive_id = GraphServer.drive_id(SITE, "Documents")
    item_id = GraphServer.item_id(SITE, "Documents", "top.md")
    server.add_route("GET", r"/v1.0/drives/(?P<drive>[^/]+)/items/(?P<item>[^/]+)/workbook", echo)
    got = requests.get(
        f"{server.graph_url}/drives/{drive_id}/items/{item_id}/workbook", headers=auth, timeout=5
    ).json()
    assert got == {"item": [SITE, "Documents", "top.md"]}
    put = requests.put(
        f"{server.graph_url}/drives/{drive_id}/root:/new/book.xlsx:/content",
        data=b"xlsx",
        headers=auth,
        timeout=5,
    )
    assert put.status_code == 201
    assert server.drive_files[(SITE, "Documents", "new/book.xlsx")] == b"xlsx"
