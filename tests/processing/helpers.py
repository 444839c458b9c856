"""Helpers of the processing tests that need test-only libraries."""

from __future__ import annotations

import io


def encrypt_office(data: bytes, password: str = "s3cret") -> bytes:
    """An OOXML file encrypted with a password (ECMA-376 agile), as Office writes it."""
    import msoffcrypto

    out = io.BytesIO()
    msoffcrypto.OfficeFile(io.BytesIO(data)).encrypt(password, out)
    return out.getvalue()
