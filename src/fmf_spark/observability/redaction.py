"""Mask every resolved secret value wherever text leaves the process.

A process-wide registry of secret values (filled by the secret resolver as it resolves,
and by executors as they receive a client's key) and :func:`redact`, which replaces
each value, its URL-encoded forms and any SAS ``sig=`` query value with ``***``.
Log handlers, the CLI's error printer, ``run.yaml`` and the MLflow params all pass
through it. Values shorter than 4 characters are not registered: masking them would
mangle ordinary text and they are not credentials anyone should use.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import quote, quote_plus

MASK = "***"
_MIN_LEN = 4
_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None

# SAS tokens and signed URLs: the signature is a secret even when we never resolved it.
_SAS_SIG = re.compile(
    r"(?i)([?&](?:sig|signature|x-amz-signature|x-amz-security-token)=)[^&\s'\"]+"
)
_BEARER = re.compile(
    r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+"
)


def register_secret(value: str | None) -> None:
    """Add a secret value (and its encoded forms) to the masks of this process."""
    global _pattern
    if not value or len(value) < _MIN_LEN:
        return
    forms = {value, quote(value, safe=""), quote_plus(value), quote(value)}
    with _lock:
        if forms <= _values:
            return
        _values.update(forms)
        # longest first, so a value that contains another is masked whole
        ordered = sorted(_values, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in ordered))


def clear_secrets() -> None:
    """Forget every registered value (tests only)."""
    global _pattern
    with _lock:
        _values.clear()
        _pattern = None


def redact(text: str) -> str:
    """Return ``text`` with every registered secret and SAS signature masked."""
    if not text:
        return text
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _SAS_SIG.sub(lambda m: m.group(1) + MASK, text)
    return _BEARER.sub(lambda m: m.group(1) + MASK, text)


def registered_count() -> int:
    """How many secret forms are registered (for diagnostics; never the values)."""
    return len(_values)
