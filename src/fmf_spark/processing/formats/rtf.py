"""Rich Text Format (``.rtf``) as text, with ``striprtf`` (BSD-3).

Control words, font and colour tables and embedded pictures are dropped; ``\\par``
breaks, ``\\'xx`` escapes in the document's code page (``\\ansicpg``) and ``\\u``
Unicode escapes become text. Table cells come out separated by ``|``.
"""

from __future__ import annotations

import re

from fmf_spark._deps import require
from fmf_spark.config.processing import ProcessingConfig
from fmf_spark.processing.base import Loaded, LoaderSpec, register_loader
from fmf_spark.processing.text import ParseFailure

RTF = "application/rtf"
_CODEPAGE = re.compile(rb"\\ansicpg(\d+)")


def load_rtf(data: bytes, cfg: ProcessingConfig) -> Loaded:
    """An RTF file as text."""
    striprtf = require("striprtf.striprtf", "processing")
    match = _CODEPAGE.search(data[:4096])
    encoding = f"cp{int(match.group(1))}" if match else "cp1252"
    try:
        "".encode(encoding)
    except LookupError:
        encoding = "cp1252"
    # RTF is 7-bit: any byte above 127 is a stray; latin-1 keeps every byte as one char
    source = data.decode("latin-1")
    try:
        text = striprtf.rtf_to_text(source, encoding=encoding, errors="replace")
    except (ValueError, IndexError, LookupError) as exc:
        raise ParseFailure(f"RTF: {type(exc).__name__}: {exc}", code="processing.corrupt") from None
    return Loaded(text, metadata={"encoding": encoding})


register_loader(
    LoaderSpec(
        RTF, load_rtf, ("rtf",), sniff=lambda data: data[:6] == b"{\\rtf1" or data[:5] == b"{\\rtf"
    )
)
