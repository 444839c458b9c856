"""Outlook ``.msg`` files: the [MS-OXMSG] property streams of an OLE2 compound file.

Read with ``olefile`` (BSD): ``extract-msg``, the usual library, is GPL-3.0 and cannot
ship in an Apache-2.0 wheel. The text is the same header block as an ``.eml``'s and
the plain-text body (the HTML body through the HTML converter when there is no plain
one); attachments (``__attach_version1.0_#…`` storages) become child documents. An
attached Outlook item (an embedded message) is counted in ``embedded_messages``, not
extracted.
"""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone
from typing import Any

from fmf_spark._deps import require
from fmf_spark.config.processing import ProcessingConfig
from fmf_spark.processing.base import Child, Loaded, LoaderSpec, register_loader
from fmf_spark.processing.formats.email import header_block, safe_name
from fmf_spark.processing.loaders import load_html
from fmf_spark.processing.text import ParseFailure

MSG = "application/vnd.ms-outlook"

# property ids ([MS-OXPROPS])
_SUBJECT = 0x0037
_SENDER_NAME = 0x0C1A
_SENDER_EMAIL = 0x0C1F
_DISPLAY_TO = 0x0E04
_DISPLAY_CC = 0x0E03
_BODY = 0x1000
_HTML = 0x1013
_MESSAGE_ID = 0x1035
_CODEPAGE = 0x3FFD
_SUBMIT_TIME = 0x0039
_DELIVERY_TIME = 0x0E06
_ATTACH_LONG_NAME = 0x3707
_ATTACH_NAME = 0x3704
_ATTACH_DATA = 0x3701
_ATTACH_METHOD = 0x3705
_EMBEDDED = 5  # afEmbeddedMessage

_PT_UNICODE = 0x001F
_PT_STRING8 = 0x001E
_PT_BINARY = 0x0102


def _fixed_properties(ole: Any, storage: str, header: int) -> dict[int, bytes]:
    """The 8-byte values of a storage's ``__properties_version1.0`` stream by id."""
    path = f"{storage}__properties_version1.0"
    if not ole.exists(path):
        return {}
    raw = ole.openstream(path).read()
    out = {}
    for offset in range(header, len(raw) - 15, 16):
        tag, _flags = struct.unpack_from("<II", raw, offset)
        out[(tag >> 16) & 0xFFFF] = raw[offset + 8 : offset + 16]
    return out


class _Storage:
    def __init__(self, ole: Any, prefix: str, header: int) -> None:
        self.ole = ole
        self.prefix = prefix
        self.fixed = _fixed_properties(ole, prefix, header)
        codepage = self.long(_CODEPAGE)
        self.encoding = f"cp{codepage}" if codepage else "cp1252"

    def _stream(self, prop: int, kind: int) -> bytes | None:
        path = f"{self.prefix}__substg1.0_{prop:04X}{kind:04X}"
        if self.ole.exists(path) and self.ole.get_type(path) == 2:  # a stream
            return bytes(self.ole.openstream(path).read())
        return None

    def string(self, prop: int) -> str:
        raw = self._stream(prop, _PT_UNICODE)
        if raw is not None:
            return raw.decode("utf-16-le", errors="replace").rstrip("\x00")
        raw = self._stream(prop, _PT_STRING8)
        if raw is not None:
            try:
                return raw.decode(self.encoding, errors="replace").rstrip("\x00")
            except LookupError:
                return raw.decode("cp1252", errors="replace").rstrip("\x00")
        return ""

    def binary(self, prop: int) -> bytes | None:
        return self._stream(prop, _PT_BINARY)

    def long(self, prop: int) -> int | None:
        value = self.fixed.get(prop)
        return None if value is None else int(struct.unpack_from("<i", value)[0])

    def time(self, prop: int) -> str:
        value = self.fixed.get(prop)
        if value is None:
            return ""
        ticks = struct.unpack("<Q", value)[0]  # FILETIME: 100 ns since 1601-01-01 UTC
        if not ticks:
            return ""
        moment = datetime(1601, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=ticks // 10)
        return moment.isoformat()


def load_msg(data: bytes, cfg: ProcessingConfig) -> Loaded:
    """An Outlook ``.msg`` as markdown, its attachments as children."""
    olefile = require("olefile", "processing")
    try:
        ole = olefile.OleFileIO(data)
    except (OSError, ValueError, IndexError, EOFError) as exc:
        raise ParseFailure(f"MSG: {exc}", code="processing.corrupt") from None
    with ole:
        top = _Storage(ole, "", 32)
        subject = top.string(_SUBJECT)
        sender = top.string(_SENDER_NAME)
        address = top.string(_SENDER_EMAIL)
        if address and address != sender and "@" in address:
            sender = f"{sender} <{address}>" if sender else address
        date = top.time(_SUBMIT_TIME) or top.time(_DELIVERY_TIME)
        fields = [
            ("From", sender),
            ("To", top.string(_DISPLAY_TO)),
            ("Cc", top.string(_DISPLAY_CC)),
            ("Date", date),
        ]
        meta = {name.lower(): value for name, value in fields if value}
        if subject:
            meta["subject"] = subject
        message_id = top.string(_MESSAGE_ID)
        if message_id:
            meta["message_id"] = message_id
        body = top.string(_BODY)
        meta["body"] = "plain"
        if not body.strip():
            html = top.binary(_HTML) or top.string(_HTML).encode()
            body = load_html(html).text if html.strip() else ""
            meta["body"] = "html"
        children: list[Child] = []
        embedded = 0
        for entry in sorted({p[0] for p in ole.listdir(streams=True, storages=True)}):
            if not entry.lower().startswith("__attach_version1.0_#"):
                continue
            att = _Storage(ole, entry + "/", 8)
            if att.long(_ATTACH_METHOD) == _EMBEDDED:
                embedded += 1
                continue
            payload = att.binary(_ATTACH_DATA)
            if payload is None:
                continue
            name = att.string(_ATTACH_LONG_NAME) or att.string(_ATTACH_NAME)
            children.append(Child(safe_name(name, f"attachment-{len(children) + 1}"), payload))
    if children:
        meta["attachments"] = str(len(children))
    if embedded:
        meta["embedded_messages"] = str(embedded)
    text = header_block(subject, fields) + ("\n\n" + body.strip() if body.strip() else "")
    return Loaded(text, metadata=meta, children=children)


def _ole_sniff(streams: frozenset[str]) -> bool:
    return "__properties_version1.0" in streams and any(
        s.startswith("__substg1.0_") for s in streams
    )


register_loader(LoaderSpec(MSG, load_msg, ("msg",), ole_sniff=_ole_sniff))
