"""The Excel workbook API on top of the Graph test server (:mod:`tests.servers.graph`).

Routes added with ``GraphServer.add_route``; the workbook is a real ``.xlsx`` kept in
``server.drive_files`` and edited with openpyxl on every write, so a test reads the
result back exactly as a user would download it:

- ``POST .../items/{id}/workbook/createSession`` -> ``{"id", "persistChanges"}``;
- ``POST .../workbook/closeSession`` (header ``workbook-session-id``);
- ``GET .../workbook/worksheets/{name}``; ``POST .../workbook/worksheets/add``;
- ``GET .../worksheets/{name}/usedRange(valuesOnly=true)`` -> ``address``, ``values``;
- ``PATCH .../worksheets/{name}/range(address='A2:C4')`` with ``{"values": [[...]]}``.

Requests inside a session must carry a session id that is open (else 400
``invalidSessionId``, as Excel Online does). ``Workbook.sessions_open`` and
``Workbook.sessions_created`` let tests check every session was closed.
``Workbook.lock_conflicts = n`` answers the next ``n`` ``createSession`` calls with
409 ``accessConflict`` (someone else holds the file).
Like Excel, a leading apostrophe marks a text value and is not stored.
"""

from __future__ import annotations

import io
import re
import secrets
from typing import Any

from openpyxl import Workbook as XlsxWorkbook
from openpyxl import load_workbook
from openpyxl.utils import column_index_from_string, get_column_letter

from tests.servers.graph import GraphRequest, GraphResponse, GraphServer

_ITEM = r"/v1\.0/drives/(?P<drive>[^/]+)/items/(?P<item>[^/]+)/workbook"
_SHEET = _ITEM + r"/worksheets/(?P<sheet>[^/(]+)"
_ADDRESS = re.compile(r"^([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?$")


class Workbook:
    """Installs the workbook routes on a GraphServer and tracks sessions."""

    def __init__(self, server: GraphServer) -> None:
        self.server = server
        self.sessions_open: set[str] = set()
        self.sessions_created = 0
        self.lock_conflicts = 0
        routes = [
            ("POST", _ITEM + r"/createSession", self._create_session),
            ("POST", _ITEM + r"/closeSession", self._close_session),
            ("POST", _ITEM + r"/worksheets/add", self._add_sheet),
            ("GET", _SHEET, self._get_sheet),
            ("GET", _SHEET + r"/usedRange(?:\(valuesOnly=true\))?", self._used_range),
            ("PATCH", _SHEET + r"/range\(address='(?P<address>[^']+)'\)", self._patch_range),
        ]
        for method, regex, handler in routes:
            server.add_route(method, regex, handler)

    # --- helpers -------------------------------------------------------------------

    def _key(self, req: GraphRequest) -> tuple[str, str, str] | None:
        return self.server.find_item(req.match["drive"], req.match["item"])

    def _load(self, key: tuple[str, str, str]) -> Any:
        with self.server.lock:
            return load_workbook(io.BytesIO(self.server.drive_files[key]))

    def _save(self, key: tuple[str, str, str], book: Any) -> None:
        buf = io.BytesIO()
        book.save(buf)
        with self.server.lock:
            self.server.drive_files[key] = buf.getvalue()

    def _session_ok(self, req: GraphRequest) -> GraphResponse | None:
        sid = req.headers.get("workbook-session-id")
        if sid is None or sid not in self.sessions_open:
            return self.server.error(400, "invalidSessionId", "The session is not valid.")
        return None

    @staticmethod
    def read_rows(data: bytes, sheet: str) -> list[tuple[Any, ...]]:
        """All rows of a sheet of an .xlsx (tests read results back with this)."""
        book = load_workbook(io.BytesIO(data))
        return [tuple(r) for r in book[sheet].iter_rows(values_only=True)]

    @staticmethod
    def new_xlsx(sheet: str, rows: list[list[Any]]) -> bytes:
        book = XlsxWorkbook()
        ws = book.active
        ws.title = sheet
        for row in rows:
            ws.append(row)
        buf = io.BytesIO()
        book.save(buf)
        return buf.getvalue()

    # --- routes ----------------------------------------------------------------------

    def _create_session(self, server: GraphServer, req: GraphRequest) -> GraphResponse:
        if self._key(req) is None:
            return server.error(404, "itemNotFound", "The resource could not be found.")
        with server.lock:
            if self.lock_conflicts > 0:
                self.lock_conflicts -= 1
                return server.json(
                    409,
                    {
                        "error": {
                            "code": "accessConflict",
                            "message": "The file is locked for editing by another user.",
                        }
                    },
                )
            sid = "cluster=PUS1&session=" + secrets.token_hex(8)
            self.sessions_open.add(sid)
            self.sessions_created += 1
        persist = bool((req.json() or {}).get("persistChanges", True))
        return server.json(201, {"id": sid, "persistChanges": persist})

    def _close_session(self, server: GraphServer, req: GraphRequest) -> GraphResponse:
        bad = self._session_ok(req)
        if bad is not None:
            return bad
        with server.lock:
            self.sessions_open.discard(req.headers["workbook-session-id"])
        return GraphResponse(204)

    def _sheet_json(self, ws: Any) -> dict[str, Any]:
        return {"id": "{" + ws.title + "}", "name": ws.title, "visibility": "Visible"}

    def _get_sheet(self, server: GraphServer, req: GraphRequest) -> GraphResponse:
        key = self._key(req)
        if key is None:
            return server.error(404, "itemNotFound", "The resource could not be found.")
        book = self._load(key)
        if req.match["sheet"] not in book.sheetnames:
            return server.error(404, "ItemNotFound", "The requested resource doesn't exist.")
        return server.json(200, self._sheet_json(book[req.match["sheet"]]))

    def _add_sheet(self, server: GraphServer, req: GraphRequest) -> GraphResponse:
        bad = self._session_ok(req)
        if bad is not None:
            return bad
        key = self._key(req)
        if key is None:
            return server.error(404, "itemNotFound", "The resource could not be found.")
        name = (req.json() or {}).get("name")
        book = self._load(key)
        if name in book.sheetnames:
            return server.error(409, "ItemAlreadyExists", "A worksheet with that name exists.")
        ws = book.create_sheet(name)
        self._save(key, book)
        return server.json(201, self._sheet_json(ws))

    def _used_range(self, server: GraphServer, req: GraphRequest) -> GraphResponse:
        key = self._key(req)
        if key is None:
            return server.error(404, "itemNotFound", "The resource could not be found.")
        book = self._load(key)
        sheet = req.match["sheet"]
        if sheet not in book.sheetnames:
            return server.error(404, "ItemNotFound", "The requested resource doesn't exist.")
        ws = book[sheet]
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
        if not rows or all(v is None for r in rows for v in r):
            # Excel reports an empty sheet as the single empty cell A1
            return server.json(200, {"address": f"{sheet}!A1", "values": [[""]]})
        width = max(len(r) for r in rows)
        values = [[("" if v is None else v) for v in r] + [""] * (width - len(r)) for r in rows]
        address = f"{sheet}!A1:{get_column_letter(width)}{len(rows)}"
        return server.json(
            200,
            {"address": address, "rowCount": len(rows), "columnCount": width, "values": values},
        )

    def _patch_range(self, server: GraphServer, req: GraphRequest) -> GraphResponse:
        bad = self._session_ok(req)
        if bad is not None:
            return bad
        key = self._key(req)
        if key is None:
            return server.error(404, "itemNotFound", "The resource could not be found.")
        m = _ADDRESS.match(req.match["address"])
        if m is None:
            return server.error(400, "InvalidArgument", "The argument is invalid or missing.")
        c1, r1 = column_index_from_string(m.group(1)), int(m.group(2))
        c2 = column_index_from_string(m.group(3)) if m.group(3) else c1
        r2 = int(m.group(4)) if m.group(4) else r1
        values = (req.json() or {}).get("values")
        if (
            not isinstance(values, list)
            or len(values) != r2 - r1 + 1
            or any(len(row) != c2 - c1 + 1 for row in values)
        ):
            return server.error(
                400,
                "InvalidArgument",
                "The number of rows or columns in the input array "
                "doesn't match the size or dimensions of the range.",
            )
        with server.lock:
            book = self._load(key)
            sheet = req.match["sheet"]
            if sheet not in book.sheetnames:
                return server.error(404, "ItemNotFound", "The requested resource doesn't exist.")
            ws = book[sheet]
            for i, row in enumerate(values):
                for j, value in enumerate(row):
                    if value is None:
                        continue  # null leaves the cell unchanged
                    if isinstance(value, str) and value.startswith("'"):
                        value = value[1:]
                    cell = ws.cell(row=r1 + i, column=c1 + j, value=None if value == "" else value)
                    if isinstance(value, str) and value.startswith("="):
                        cell.data_type = "s"  # text, not a formula
            self._save(key, book)
        return server.json(200, {"address": f"{sheet}!{req.match['address']}"})
