"""SharePoint Excel sink: rows into a worksheet through the Microsoft Graph workbook API.

Per micro-batch, on the driver:

1. find the workbook by path in the document library; if missing, upload a new
   ``.xlsx`` (built with openpyxl) holding the sheet and the header row;
2. open a workbook session (``createSession``, ``persistChanges: true``) and *always*
   close it (``closeSession`` in ``finally``), so Excel Online never keeps a lock;
3. create the worksheet if missing; read its used range (header + keys);
4. ``upsert`` (default): rows whose key is already in the sheet are rewritten in place,
   new keys are appended below; ``append``: every row is appended.
   Values are written with ``PATCH .../range(address='A2:K9')``, in chunks.

Idempotence: in ``upsert`` mode a replayed batch finds its keys already in the sheet
and rewrites the same rows, so the row count does not change. ``append`` mode is
at-least-once (a replayed batch appends again); use it only for logs.

Requests, auth (client secret or certificate) and throttling are the shared
:class:`~fmf_spark.clients.graph.GraphClient`'s: 429/502/503/504 are honoured with
``Retry-After`` when given, else exponential backoff with jitter, up to ``max_retries``.
``accessConflict`` (409: someone else holds
the workbook) is surfaced at once as ``export.conflict`` instead of looping: the fix is
to close the workbook or retry later, not to hammer it.

Excel limits the sink: 1,048,576 rows per sheet (a batch that would pass it fails)
and 32,767 characters per cell (longer text is cut, ending in ``[truncated]``).
Values starting with ``=`` are written with a leading apostrophe so model output is
never evaluated as a formula.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr

from fmf_spark._deps import require
from fmf_spark.clients.graph import GraphClient, GraphErrors
from fmf_spark.config.exporters import ExporterConfig
from fmf_spark.config.graph import GraphAccessConfig
from fmf_spark.errors import (
    ExportAuthError,
    ExportConflict,
    ExportError,
    ExportSchemaMismatch,
    ExportThrottled,
)
from fmf_spark.exporters.base import BatchContext, BatchResult, register_exporter
from fmf_spark.exporters.frames import flatten_structs
from fmf_spark.observability.logging import get_logger
from fmf_spark.observability.redaction import redact

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from fmf_spark.config.secrets import SecretResolver

EXPORTER_TYPE = "sharepoint_excel"
MAX_CELL_CHARS = 32767
MAX_ROWS = 1_048_576
ERRORS = GraphErrors(
    base=ExportError, throttled=ExportThrottled, prefix="export", auth=ExportAuthError
)

log = get_logger(__name__)


class SharePointExcelExporterConfig(ExporterConfig, GraphAccessConfig):
    type: Literal["sharepoint_excel"] = "sharepoint_excel"
    site: str = Field(description="Site as 'host.sharepoint.com:/sites/name'.")
    drive: str = "Documents"
    workbook_path: str
    sheet: str = "outputs"
    mode: Literal["append", "upsert"] = "upsert"
    max_retries: int = Field(default=6, ge=0, description="Throttling retries per request.")
    rows_per_request: int = Field(default=500, gt=0, description="Rows per range PATCH.")


def column_letter(index: int) -> str:
    """1 -> A, 26 -> Z, 27 -> AA."""
    letters = ""
    while index > 0:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def cell_value(value: Any) -> Any:
    """A Python value as a Graph range value ("" clears; null would mean 'unchanged')."""
    if value is None:
        return ""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return ""
    if isinstance(value, bool | int | float):
        return value
    text = str(value)
    if len(text) > MAX_CELL_CHARS:
        text = text[: MAX_CELL_CHARS - 12] + " [truncated]"
    if text.startswith("="):
        text = "'" + text
    return text


class WorkbookCalls:
    """The workbook calls of one batch over the shared Graph client, errors mapped."""

    def __init__(self, cfg: SharePointExcelExporterConfig, graph: GraphClient) -> None:
        self.cfg = cfg
        self.graph = graph

    @property
    def retries(self) -> int:
        return self.graph.retries

    def call(
        self,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...] = (200, 201),
        session_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """A Graph call that must succeed; errors mapped to the ExportError family."""
        if session_id:
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "workbook-session-id": session_id}
        response = self.graph.send(method, path, **kwargs)
        if response.status_code in ok:
            return response
        raise self._error(method, path, response)

    def _error(self, method: str, path: str, response: Any) -> ExportError:
        try:
            err = response.json().get("error", {})
        except ValueError:
            err = {}
        code = str(err.get("code", "")) if isinstance(err, dict) else ""
        message = str(err.get("message", "")) if isinstance(err, dict) else response.text[:200]
        text = f"{method} {path}: HTTP {response.status_code} {code}: {redact(message)}"
        inner = str((err.get("innerError") or {}).get("code", "")) if isinstance(err, dict) else ""
        if response.status_code == 409 or "accessConflict" in (code, inner):
            return ExportConflict(
                text,
                code="export.conflict",
                hint="the workbook is locked by another session or user; retry later",
                retryable=True,
            )
        if response.status_code in (401, 403):
            return ExportAuthError(text, hint="grant the app Sites.ReadWrite.All or Sites.Selected")
        return ExportError(text)

    def drive_id(self) -> str:
        return self.graph.drive_id(self.cfg.site, self.cfg.drive)


class SharePointExcelExporter:
    """Writes micro-batches into an Excel worksheet on SharePoint (see module docstring)."""

    def __init__(
        self,
        name: str,
        cfg: SharePointExcelExporterConfig,
        client_secret: SecretStr | None = None,
        certificate_pem: SecretStr | None = None,
    ) -> None:
        self.name = name
        self.cfg = cfg
        self._client_secret = client_secret
        self._certificate_pem = certificate_pem

    def client(self) -> WorkbookCalls:
        """A fresh client per batch: its retries are the batch's."""
        graph = GraphClient(
            who=f"sink '{self.name}'",
            client_secret=self._client_secret,
            certificate_pem=self._certificate_pem,
            errors=ERRORS,
            **self.cfg.client_options(),
        )
        return WorkbookCalls(self.cfg, graph)

    def precheck(self) -> None:
        self.client().drive_id()

    # --- workbook plumbing ----------------------------------------------------------------

    def _item_path(self) -> str:
        return quote(self.cfg.workbook_path.strip("/"))

    def _ensure_workbook(self, client: WorkbookCalls, header: list[str]) -> str:
        drive = client.drive_id()
        found = client.call("GET", f"/drives/{drive}/root:/{self._item_path()}", ok=(200, 404))
        if found.status_code == 200:
            return str(found.json()["id"])
        openpyxl = require("openpyxl")
        book = openpyxl.Workbook()
        sheet = book.active
        sheet.title = self.cfg.sheet
        sheet.append(header)
        buf = io.BytesIO()
        book.save(buf)
        created = client.call(
            "PUT",
            f"/drives/{drive}/root:/{self._item_path()}:/content",
            data=buf.getvalue(),
            headers={
                "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            },
        )
        log.info("sink %s: created workbook %s", self.name, self.cfg.workbook_path)
        return str(created.json()["id"])

    def write_batch(self, df: DataFrame, ctx: BatchContext) -> BatchResult:
        flat = flatten_structs(df)
        header = flat.columns
        missing = [k for k in self.cfg.key_fields if k not in header]
        if missing:
            raise ExportSchemaMismatch(f"sink '{self.name}': key field(s) {missing} not in outputs")
        client = self.client()
        item = self._ensure_workbook(client, header)
        base = f"/drives/{client.drive_id()}/items/{item}/workbook"
        session = client.call("POST", f"{base}/createSession", json={"persistChanges": True})
        session_id = str(session.json()["id"])
        try:
            result = self._write(client, base, session_id, header, flat)
        finally:
            # a session left open keeps the workbook locked for minutes
            try:
                client.call("POST", f"{base}/closeSession", ok=(200, 204), session_id=session_id)
            except ExportError as exc:
                log.warning("sink %s: closing the workbook session failed: %s", self.name, exc)
        result.retries = client.retries
        return result

    def _write(
        self,
        client: WorkbookCalls,
        base: str,
        session_id: str,
        header: list[str],
        flat: DataFrame,
    ) -> BatchResult:
        sheet_path = f"{base}/worksheets/{quote(self.cfg.sheet)}"
        found = client.call("GET", sheet_path, ok=(200, 404), session_id=session_id)
        if found.status_code == 404:
            client.call(
                "POST",
                f"{base}/worksheets/add",
                json={"name": self.cfg.sheet},
                session_id=session_id,
            )
        used = client.call(
            "GET", f"{sheet_path}/usedRange(valuesOnly=true)", session_id=session_id
        ).json()
        values: list[list[Any]] = used.get("values") or [[""]]
        empty = all(v in ("", None) for row in values for v in row)
        if empty:
            self._patch(client, sheet_path, session_id, 1, [header])
            values = [header]
        existing_header = [str(v) for v in values[0]]
        if existing_header[: len(header)] != header:
            raise ExportSchemaMismatch(
                f"sink '{self.name}': sheet '{self.cfg.sheet}' header {existing_header} "
                f"differs from the outputs columns {header}",
                hint="export to a new sheet or workbook",
            )
        key_idx = [header.index(k) for k in self.cfg.key_fields]
        rows_by_key: dict[tuple[str, ...], int] = {}
        if self.cfg.mode == "upsert":
            for i, existing in enumerate(values[1:], start=2):
                rows_by_key[tuple(_key_text(existing[j]) for j in key_idx)] = i
        next_row = len(values) + 1
        result = BatchResult()
        updates: list[tuple[int, list[Any]]] = []
        appends: list[list[Any]] = []
        for record in _local_rows(flat):
            cells = [cell_value(v) for v in record]
            key = tuple(_key_text(record[j]) for j in key_idx)
            at = rows_by_key.get(key)
            if at is not None:
                updates.append((at, cells))
            else:
                appends.append(cells)
                if self.cfg.mode == "upsert":
                    rows_by_key[key] = next_row + len(appends) - 1
            if len(updates) + len(appends) >= self.cfg.rows_per_request:
                next_row = self._flush(
                    client, sheet_path, session_id, updates, appends, next_row, result
                )
                updates, appends = [], []
        self._flush(client, sheet_path, session_id, updates, appends, next_row, result)
        return result

    def _flush(
        self,
        client: WorkbookCalls,
        sheet_path: str,
        session_id: str,
        updates: list[tuple[int, list[Any]]],
        appends: list[list[Any]],
        next_row: int,
        result: BatchResult,
    ) -> int:
        # contiguous updated rows go in one PATCH each run
        updates.sort()
        run: list[list[Any]] = []
        start = 0
        for at, cells in updates:
            if run and at != start + len(run):
                self._patch(client, sheet_path, session_id, start, run)
                run = []
            if not run:
                start = at
            run.append(cells)
        if run:
            self._patch(client, sheet_path, session_id, start, run)
        if appends:
            if next_row + len(appends) - 1 > MAX_ROWS:
                raise ExportError(f"sink '{self.name}': sheet would exceed Excel's {MAX_ROWS} rows")
            self._patch(client, sheet_path, session_id, next_row, appends)
        result.written += len(updates) + len(appends)
        result.updated += len(updates)
        return next_row + len(appends)

    def _patch(
        self,
        client: WorkbookCalls,
        sheet_path: str,
        session_id: str,
        first_row: int,
        rows: list[list[Any]],
    ) -> None:
        width = len(rows[0])
        address = f"A{first_row}:{column_letter(width)}{first_row + len(rows) - 1}"
        client.call(
            "PATCH",
            f"{sheet_path}/range(address='{address}')",
            json={"values": rows},
            session_id=session_id,
        )


def _key_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _local_rows(df: DataFrame) -> Iterator[tuple[Any, ...]]:
    # one partition at a time on the driver; Graph writes are sequential per workbook
    for row in df.toLocalIterator(prefetchPartitions=False):
        yield tuple(row)


def _factory(
    name: str, cfg: SharePointExcelExporterConfig, resolver: SecretResolver
) -> SharePointExcelExporter:
    return SharePointExcelExporter(name, cfg, *cfg.credentials(resolver))


register_exporter(EXPORTER_TYPE, SharePointExcelExporterConfig, _factory)
