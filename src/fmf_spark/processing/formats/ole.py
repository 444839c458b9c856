"""OLE2 compound files: legacy binary Office formats and password-protected OOXML.

A ``.doc``, ``.xls`` or ``.ppt`` (Office 97-2003) is recognised by its streams and
refused with ``processing.legacy_format`` and the conversion to run: nothing on PyPI
that an Apache-2.0 wheel may ship reads ``.doc`` or ``.ppt`` text faithfully
(``antiword``/``catdoc`` are GPL programs, not Python packages), and LibreOffice is a
system install the platforms do not have. (``xlrd`` could read ``.xls`` values; the
three are refused alike for now.) A password-protected ``.docx``/``.xlsx``/``.pptx`` is an
OLE2 file holding ``EncryptionInfo`` and ``EncryptedPackage``: ``processing.encrypted``.
"""

from __future__ import annotations

from typing import NoReturn

from fmf_spark.config.processing import ProcessingConfig
from fmf_spark.processing import text as types
from fmf_spark.processing.base import Loaded, LoaderSpec, LoadFunction, register_loader
from fmf_spark.processing.text import ParseFailure, ole_streams

DOC = "application/msword"
XLS = "application/vnd.ms-excel"
PPT = "application/vnd.ms-powerpoint"

#: content type -> (what it is, its stream, the modern extension to convert to)
_LEGACY = {
    DOC: ("Word 97-2003 document (.doc)", "worddocument", "docx"),
    XLS: ("Excel 97-2003 workbook (.xls)", "workbook", "xlsx"),
    PPT: ("PowerPoint 97-2003 presentation (.ppt)", "powerpoint document", "pptx"),
}


def _is_encrypted(streams: frozenset[str]) -> bool:
    return "encryptedpackage" in streams and "encryptioninfo" in streams


def refuse_ole(data: bytes, expected: str) -> None:
    """Raise the precise error for OLE2 bytes given to an OOXML loader; else return.

    Args:
        data: the file's bytes.
        expected: what the loader reads ("DOCX"), for the message.

    Raises:
        ParseFailure: ``processing.encrypted`` (password-protected OOXML),
            ``processing.legacy_format`` (a renamed ``.doc``/``.xls``/``.ppt``) or
            ``processing.corrupt``.
    """
    if not data.startswith(types.OLE2_MAGIC):
        return
    streams = ole_streams(data) or frozenset()
    if _is_encrypted(streams):
        raise ParseFailure(
            f"password-protected {expected} (an encrypted Office package)",
            code="processing.encrypted",
            hint="remove the password in Office, or decrypt it with msoffcrypto-tool",
        )
    for content_type, (_, stream, _) in _LEGACY.items():
        if stream in streams or (content_type == XLS and "book" in streams):
            _legacy(content_type)
    raise ParseFailure(
        f"an OLE2 compound file, not a {expected} package", code="processing.corrupt"
    )


def _legacy(content_type: str) -> NoReturn:
    what, _, modern = _LEGACY[content_type]
    raise ParseFailure(
        f"{what}: legacy binary Office formats are not read; convert it to .{modern} "
        f"(soffice --headless --convert-to {modern} FILE, or save it from Office as .{modern})",
        code="processing.legacy_format",
    )


def _load_legacy(content_type: str) -> LoadFunction:
    def load(data: bytes, cfg: ProcessingConfig) -> Loaded:
        _legacy(content_type)

    return load


def _load_ole(data: bytes, cfg: ProcessingConfig) -> Loaded:
    streams = ole_streams(data) or frozenset()
    if _is_encrypted(streams):
        refuse_ole(data, "Office document")
    raise ParseFailure(
        "an OLE2 compound file that is not a Word, Excel, PowerPoint or Outlook document",
        code="processing.unsupported_type",
    )


register_loader(
    LoaderSpec(
        DOC,
        _load_legacy(DOC),
        ("doc", "dot"),
        ole_sniff=lambda s: "worddocument" in s,
    )
)
register_loader(
    LoaderSpec(
        XLS,
        _load_legacy(XLS),
        ("xls", "xlt"),
        ole_sniff=lambda s: "workbook" in s or "book" in s,
    )
)
register_loader(
    LoaderSpec(
        PPT,
        _load_legacy(PPT),
        ("ppt", "pps", "pot"),
        ole_sniff=lambda s: "powerpoint document" in s,
    )
)
register_loader(LoaderSpec(types.OLE2, _load_ole))
