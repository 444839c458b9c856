"""Chunking: the pure-Python stage behind :func:`chunk_documents`.

Three strategies, all measured in real tokens of an OpenAI encoding:

- ``tokens``: fixed windows of ``max_tokens`` with ``overlap_tokens`` of overlap, cut on
  token boundaries (one encode of the document, offsets from the tokenizer).
- ``markdown``: recursive by structure. The text is cut into blocks at headings and
  blank lines; a block over budget is cut at lines, then sentences, then words, then
  tokens. Blocks are packed greedily up to ``max_tokens``, preferring to start a new
  chunk at a heading once the current one is half full; each chunk begins with about
  ``overlap_tokens`` of the previous one, snapped to a word boundary.
- ``page``: one chunk per page (PDF ``page_starts``), pages over budget cut by
  ``markdown``.

Every chunk is a span of the document's text (``text[char_start:char_end]``, edges
trimmed of whitespace) and its ``token_count`` is exact (recounted, never estimated),
so no chunk exceeds ``max_tokens``. ``chunk_id`` is the sha256 of
``doc_id:char_start:char_end``: the same document and config give the same ids.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from fmf_spark.config.processing import ChunkingConfig
from fmf_spark.processing.tokens import token_counter, token_offsets


@dataclass
class Chunk:
    doc_id: str
    chunk_id: str
    chunk_index: int
    text: str
    char_start: int
    char_end: int
    token_count: int
    metadata: dict[str, str] = field(default_factory=dict)


def chunk_id_for(doc_id: str, start: int, end: int) -> str:
    return hashlib.sha256(f"{doc_id}:{start}:{end}".encode()).hexdigest()


# split levels, coarse to fine; each regex marks where a piece may end
_BLOCK = re.compile(r"\n[ \t]*\n\s*|\n(?=#{1,6}[ \t])")
_LINE = re.compile(r"\n")
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+")
_WORD = re.compile(r"\s+")
_LEVELS = (_LINE, _SENTENCE, _WORD)
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+)$", re.M)
#: the same headings after a newline: a literal first character lets the regex engine
#: jump from newline to newline instead of trying ``^`` at every offset (30x faster)
_HEADING_AFTER_NL = re.compile(r"\n(#{1,6})[ \t]+([^\n]+)")
#: no token averages more than this many characters in practice: longer pieces are
#: cut without counting them first (counting a 5 MB table only to cut it is waste)
_MAX_CHARS_PER_TOKEN = 12

Counter = Callable[[str], int]


def _cut(text: str, start: int, end: int, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    spans = []
    pos = start
    for m in pattern.finditer(text, start, end):
        e = m.end()
        if pos < e < end:
            spans.append((pos, e))
            pos = e
    spans.append((pos, end))
    return spans


def _token_windows(
    text: str, start: int, end: int, size: int, step: int, encoding: str
) -> list[tuple[int, int]]:
    offsets = token_offsets(text[start:end], encoding)
    spans = []
    for i in range(0, len(offsets), step):
        a = start + offsets[i]
        b = start + offsets[i + size] if i + size < len(offsets) else end
        spans.append((a, b))
        if i + size >= len(offsets):
            break
    return spans


class _Packer:
    """Cuts a span into atoms within budget, then packs atoms into chunks.

    The document is tokenised once (token start offsets); an atom's size is the number
    of tokens starting inside it, found by bisection, so cutting costs no tokenizer
    calls. A chunk's ``token_count`` is exact for the chunk on its own: the first and
    last lines are recounted, the lines between are taken from the document's
    tokenisation when both cuts fall on token boundaries after a newline (BPE
    pre-tokenisation restarts there), else the whole chunk is recounted.
    """

    def __init__(self, text: str, cfg: ChunkingConfig, count: Counter) -> None:
        self.text = text
        self.max = cfg.max_tokens
        self.overlap = min(cfg.overlap_tokens, cfg.max_tokens // 2)
        self.encoding = cfg.encoding
        self.count = count
        self.starts = token_offsets(text, cfg.encoding)

    def _tokens_in(self, a: int, b: int) -> int:
        return bisect.bisect_left(self.starts, b) - bisect.bisect_left(self.starts, a)

    def _is_boundary(self, pos: int) -> bool:
        i = bisect.bisect_left(self.starts, pos)
        return i < len(self.starts) and self.starts[i] == pos

    def _safe(self, pos: int) -> bool:
        """Whether BPE pre-tokenisation restarts at ``pos`` whatever precedes it.

        True for a token start that is a single space between a non-space and a letter
        (`` word``): in the OpenAI patterns no piece runs from a non-space into a
        space, and the space always leads the letters after it. So tokenising a slice
        that starts or ends at ``pos`` gives the same pieces as the whole document.
        """
        text = self.text
        return (
            0 < pos < len(text) - 1
            and text[pos] == " "
            and text[pos + 1].isalpha()
            and not text[pos - 1].isspace()
            and self._is_boundary(pos)
        )

    def exact(self, a: int, b: int) -> int:
        """The token count of ``text[a:b]`` on its own, recounting only its edges."""
        text, safe = self.text, self._safe
        x = text.find(" ", a + 1, b)
        tries = 0
        while x != -1 and not (x_ok := safe(x)) and tries < 8:
            x, tries = text.find(" ", x + 1, b), tries + 1
        if x == -1 or not x_ok:
            return self.count(text[a:b])
        y = text.rfind(" ", x + 1, b - 1)  # a safe y must lie after x
        tries = 0
        while y != -1 and not (y_ok := safe(y)) and tries < 8:
            y, tries = text.rfind(" ", x + 1, y), tries + 1
        if y == -1 or not y_ok:
            return self.count(text[a:b])
        return self.count(text[a:x]) + self._tokens_in(x, y) + self.count(text[y:b])

    def atoms(self, start: int, end: int) -> list[tuple[int, int, int, bool]]:
        """(start, end, tokens, starts_with_heading) pieces covering the span."""
        out: list[tuple[int, int, int, bool]] = []
        self._atomise(start, end, 0, out)
        return out

    def _atomise(
        self, start: int, end: int, level: int, out: list[tuple[int, int, int, bool]]
    ) -> None:
        text, starts = self.text, self.starts
        pattern = _BLOCK if level == 0 else _LEVELS[level - 1]
        # the spans are contiguous: one bisection per cut, each searching past the last
        lo = bisect.bisect_left(starts, start)
        for a, b in _cut(text, start, end, pattern):
            hi = bisect.bisect_left(starts, b, lo)
            n, lo = hi - lo, hi
            if n <= self.max:
                out.append((a, b, n, text.startswith("#", a)))
            elif level < len(_LEVELS):
                self._atomise(a, b, level + 1, out)
            else:  # one "word" over budget (a base64 blob): cut on token boundaries
                i = bisect.bisect_left(self.starts, a)
                j = bisect.bisect_left(self.starts, b)
                cuts = [*self.starts[i : j : self.max], b]
                if cuts[0] != a:
                    cuts[0] = a
                for x, y in itertools.pairwise(cuts):
                    out.append((x, y, self._tokens_in(x, y), False))

    def _trim(self, a: int, b: int) -> tuple[int, int]:
        text = self.text
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        return a, b

    def _overlap_start(self, a: int, b: int) -> int:
        """Where the last ~``overlap`` tokens of ``text[a:b]`` begin, at a word start."""
        i = bisect.bisect_left(self.starts, a)
        j = bisect.bisect_left(self.starts, b)
        pos = self.starts[max(i, j - self.overlap)] if j > i else a
        if pos > a and not self.text[pos - 1].isspace():
            m = _WORD.search(self.text, pos, b)  # mid-word: move to the next word
            pos = m.end() if m else b
        return pos

    def pack(self, start: int, end: int) -> list[tuple[int, int, int]]:
        atoms = self.atoms(start, end)
        chunks: list[tuple[int, int, int]] = []
        i, n = 0, len(atoms)
        # tokens from each atom to the next heading: a heading whose section does not fit
        # in what is left of the budget starts a new chunk (no orphan headings)
        section = [0] * (n + 1)
        for k in range(n - 1, -1, -1):
            section[k] = atoms[k][2] + (0 if k + 1 < n and atoms[k + 1][3] else section[k + 1])
        carry: int | None = None
        while i < n:
            first = atoms[i][0] if carry is None else carry
            used = 0 if carry is None else self._tokens_in(carry, atoms[i][0])
            j = i
            while j < n and used + atoms[j][2] <= self.max:
                if (
                    j > i
                    and atoms[j][3]
                    and (used >= self.max // 2 or used + section[j] > self.max)
                ):
                    break  # a heading: start the next chunk with it
                used += atoms[j][2]
                j += 1
            if j == i:  # the overlap left no room for the next atom: drop it
                if carry is not None:
                    carry = None
                    continue
                j = i + 1  # cannot happen (atoms fit the budget); never loop forever
            a, b = self._trim(first, atoms[j - 1][1])
            exact = self.exact(a, b)
            while exact > self.max and j - 1 > i:
                j -= 1
                a, b = self._trim(first, atoms[j - 1][1])
                exact = self.exact(a, b)
            if exact > self.max and carry is not None:
                carry = None
                continue
            if exact > self.max:  # an atom whose standalone count exceeds the budget
                b = self._shrink(a, b)
                exact = self.count(self.text[a:b])
            if b > a:
                chunks.append((a, b, exact))
            i = j
            carry = self._overlap_start(a, b) if self.overlap and i < n and b > a else None
            if carry is not None and not a < carry < b:
                carry = None  # repeating the whole previous chunk (or nothing) is no overlap
        return chunks

    def _shrink(self, a: int, b: int) -> int:
        """Move ``b`` back, token by token, until ``text[a:b]`` fits the budget."""
        i = bisect.bisect_left(self.starts, a)
        j = bisect.bisect_left(self.starts, b)
        while j > i + 1 and self.count(self.text[a:b]) > self.max:
            j -= 1
            b = self.starts[j]
        return b


class _HeadingTrail:
    """The heading trail (``A > B > C``) in force at increasing offsets."""

    def __init__(self, text: str) -> None:
        first = _HEADING.match(text)  # a heading on the first line has no newline before it
        found = [(0, len(first.group(1)), first.group(2).strip())] if first else []
        found += [
            (m.start() + 1, len(m.group(1)), m.group(2).strip())
            for m in _HEADING_AFTER_NL.finditer(text)
        ]
        self.positions = [f[0] for f in found]
        self.headings = [(f[1], f[2]) for f in found]
        self.trail: list[tuple[int, str]] = []
        self.k = 0

    def at(self, offset: int) -> str:
        k = bisect.bisect_right(self.positions, offset)
        if k < self.k:  # offsets went backwards (page strategy never does): rebuild
            self.trail, self.k = [], 0
        for level, title in self.headings[self.k : k]:
            while self.trail and self.trail[-1][0] >= level:
                self.trail.pop()
            self.trail.append((level, title))
        self.k = k
        return " > ".join(t for _, t in self.trail)


def chunk_text(
    doc_id: str,
    text: str,
    cfg: ChunkingConfig,
    page_starts: list[int] | None = None,
    base_metadata: dict[str, str] | None = None,
) -> list[Chunk]:
    """Cut one document's text into chunks (see the module docstring).

    Example:
        >>> from fmf_spark.config.processing import ChunkingConfig
        >>> chunks = chunk_text("d1", "# A\\n\\nshort text", ChunkingConfig(max_tokens=50))
        >>> [(c.chunk_index, c.text, c.token_count) for c in chunks]
        [(0, '# A\\n\\nshort text', 5)]
    """
    if not text:
        return []
    count = token_counter(cfg.encoding)
    spans: list[tuple[int, int, int, int | None]] = []  # start, end, tokens, page
    if cfg.strategy == "tokens":
        step = max(1, cfg.max_tokens - min(cfg.overlap_tokens, cfg.max_tokens - 1))
        for a, b in _token_windows(text, 0, len(text), cfg.max_tokens, step, cfg.encoding):
            piece = text[a:b]
            a, b = a + len(piece) - len(piece.lstrip()), a + len(piece.rstrip())
            if b <= a:
                continue
            n = count(text[a:b])
            while n > cfg.max_tokens:  # a slice can tokenise differently at its edges
                b = a + len(text[a : b - 1].rstrip())
                n = count(text[a:b])
            spans.append((a, b, n, None))
    else:
        packer = _Packer(text, cfg, count)
        if cfg.strategy == "page" and page_starts:
            bounds = [*page_starts, len(text)]
            for p in range(len(page_starts)):
                for a, b, n in packer.pack(bounds[p], bounds[p + 1]):
                    spans.append((a, b, n, p + 1))
        else:
            spans = [(a, b, n, None) for a, b, n in packer.pack(0, len(text))]
    trail = _HeadingTrail(text) if cfg.strategy != "tokens" else None
    chunks = []
    for index, (a, b, n, page) in enumerate(spans):
        meta = dict(base_metadata or {})
        meta["strategy"] = cfg.strategy
        meta["encoding"] = cfg.encoding
        if page is not None:
            meta["page"] = str(page)
        if trail is not None:
            path = trail.at(a)
            if path:
                meta["headings"] = path
        chunks.append(Chunk(doc_id, chunk_id_for(doc_id, a, b), index, text[a:b], a, b, n, meta))
    return chunks
