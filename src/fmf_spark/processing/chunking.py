"""Chunking: the pure-Python stage behind :func:`chunk_documents`.

Three strategies, all measured in real tokens of an OpenAI encoding:

- ``tokens``: fixed windows of ``max_tokens`` with ``overlap_tokens`` of overlap, cut on
  token boundaries (one encode of the document, offsets from the tokenizer).
- ``markdown``: recursive by structure. The text is cut into blocks at headings and
  blank lines; a block over budget is cut at lines, then sentences, then into windows
  of tokens ending before a space. Blocks are packed greedily up to ``max_tokens``,
  preferring to start a new chunk at a heading once the current one is half full; each
  chunk begins with at most (about 90% of) ``overlap_tokens`` of the previous one,
  starting at a word.
- ``page``: one chunk per page (PDF ``page_starts``), pages over budget cut by
  ``markdown``.

Every chunk is a span of the document's text (``text[char_start:char_end]``, edges
trimmed of whitespace) and its ``token_count`` is exact (the count of that text on its
own, summed from pieces only where the tokenizer's pieces provably add up), so no chunk
exceeds ``max_tokens``. ``chunk_id`` is the sha256 of
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
from fmf_spark.processing.tokens import (
    _MAX_CALL_CHARS,
    raw_token_counter,
    token_counter,
    token_offsets,
)


@dataclass(slots=True)
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


# Where a piece may start, coarse to fine. Blocks and lines start right after a newline;
# sentences start at the whitespace before them (" Next ..."), which is where BPE
# pre-tokenisation starts a piece, so the token counts of neighbouring pieces add up.
_BLOCK = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)*|\n(?=#{1,6}[ \t])")
_LINE = re.compile(r"\n")
_SENTENCE = re.compile(r"(?<=[.!?;:])(?=\s)")
_LEVELS = (_BLOCK, _LINE, _SENTENCE)  # below sentences: windows of tokens, at spaces
_WORD = re.compile(r"\s+")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+)$", re.M)
#: the same headings after a newline: a literal first character lets the regex engine
#: jump from newline to newline instead of trying ``^`` at every offset (30x faster)
_HEADING_AFTER_NL = re.compile(r"\n(#{1,6})[ \t]+([^\n]+)")
#: no token averages more than this many characters in practice: longer pieces are
#: cut without counting them first (counting a 5 MB table only to cut it is waste)
_MAX_CHARS_PER_TOKEN = 12
#: atoms shorter than this are recounted whole rather than from their last word
_SHORT_ATOM = 160

Counter = Callable[[str], int]
#: (start, end, tokens of text[start:end] on its own, starts with "#", joins): ``joins``
#: says the token counts of this atom and the text before it add up (see ``_joins``)
Atom = tuple[int, int, int, bool, bool]


def _joins(text: str, p: int) -> bool:
    """Whether BPE pre-tokenisation starts a piece at ``p`` whatever text surrounds it.

    Then ``count(text[x:y]) == count(text[x:p]) + count(text[p:y])`` for any
    ``x <= p <= y``: tokens never cross pieces. In the o200k and cl100k patterns that
    holds (1) right after a newline, unless a ``/`` follows (``.\n/`` is one piece) or
    the whitespace there runs into another newline or the end of the text, and (2) at a
    single space between a non-space and a letter (`` word``): no piece runs from a
    non-space into a space, and the space leads the letters after it.
    """
    n = len(text)
    if p <= 0 or p >= n:
        return True
    prev, ch = text[p - 1], text[p]
    if prev == "\n":
        if ch == "/":
            return False
        while ch.isspace():
            if ch in "\r\n":
                return False
            p += 1
            if p == n:
                return False
            ch = text[p]
        return True
    return ch == " " and p + 1 < n and text[p + 1].isalpha() and not prev.isspace()


def _token_spans(text: str, cfg: ChunkingConfig, count: Counter) -> list[tuple[int, int, int]]:
    """The ``tokens`` strategy: windows of ``max_tokens`` tokens, ``overlap_tokens`` apart.

    A window whose text counts over budget on its own (a slice can tokenise differently
    at its edges) gives back tokens at its end, and the next window starts no later
    than that end, so nothing falls between two windows.
    """
    size = cfg.max_tokens
    step = max(1, size - min(cfg.overlap_tokens, size - 1))
    offsets = token_offsets(text, cfg.encoding)
    total = len(offsets)
    spans = []
    i = 0
    while i < total:
        j = min(i + size, total)
        while True:
            a, b = offsets[i], offsets[j] if j < total else len(text)
            piece = text[a:b]
            a, b = a + len(piece) - len(piece.lstrip()), a + len(piece.rstrip())
            n = count(text[a:b]) if b > a else 0
            if n <= size or j - i <= 1:
                break
            j -= 1
        if b > a:
            spans.append((a, b, n))
        if j >= total:
            break
        i = max(i + 1, min(i + step, j))
    return spans


class _Packer:
    """Cuts a span into atoms within budget, then packs atoms into chunks.

    Every atom is counted once, on its own, with the tokenizer's Rust ``count`` (no
    token list is built). Atoms start where pre-tokenisation starts a piece (after a
    newline, or at the space before a word), so a chunk's count is the sum of its
    atoms' counts, corrected only at its edges: the overlap carried from the previous
    chunk is counted on its own, and the last atom, whose trailing whitespace the chunk
    drops, is recounted from its last word. Where an atom does not start at such a
    boundary the whole chunk is recounted. Counts are exact either way.
    """

    def __init__(self, text: str, cfg: ChunkingConfig, count: Counter) -> None:
        self.text = text
        self.max = cfg.max_tokens
        self.overlap = min(cfg.overlap_tokens, cfg.max_tokens // 2)
        self.encoding = cfg.encoding
        self.count = count
        self.raw_count = raw_token_counter(cfg.encoding)

    # -- atoms ---------------------------------------------------------------------

    def atoms(self, start: int, end: int) -> list[Atom]:
        """Contiguous atoms within budget covering the span (leading whitespace aside)."""
        out: list[Atom] = []
        self._atomise(start, end, 0, out)
        return out

    def _atomise(self, start: int, end: int, level: int, out: list[Atom]) -> None:
        text, limit = self.text, self.max
        # pieces up to this many characters are counted on their own; the counter needs
        # no splitting below _MAX_CALL_CHARS, so the tokenizer is called directly
        longest = limit * _MAX_CHARS_PER_TOKEN
        count = self.raw_count if longest < _MAX_CALL_CHARS else self.count
        a = start
        for b in [m.end() for m in _LEVELS[level].finditer(text, start, end)] + [end]:
            if b <= a:
                continue
            if b - a <= longest:
                n = count(text[a:b])
                if n <= limit:
                    ch = text[a]
                    if ch.isspace() or a == 0 or text[a - 1] != "\n" or ch == "/":
                        self._add(out, a, b, n)
                    else:  # the usual atom: it starts a line with a non-space
                        out.append((a, b, n, ch == "#", True))
                    a = b
                    continue
            if level + 1 < len(_LEVELS):
                self._atomise(a, b, level + 1, out)
            else:
                self._windows(a, b, out)
            a = b

    def _add(self, out: list[Atom], a: int, b: int, n: int) -> None:
        text = self.text
        if text[a].isspace() and not text[a:b].strip():
            if out and out[-1][1] == a:  # whitespace only: it ends the previous atom
                pa, _, _, heading, joins = out[-1]
                out[-1] = (pa, b, self.count(text[pa:b]), heading, joins)
            return  # leading whitespace of the span: no chunk starts with it
        out.append((a, b, n, text[a] == "#", _joins(text, a)))

    def _windows(self, a: int, b: int, out: list[Atom]) -> None:
        """A sentence over budget: windows of ``max`` tokens, ending before a space."""
        text, limit = self.text, self.max
        offsets = token_offsets(text[a:b], self.encoding)
        pos, k = a, 0
        while pos < b:
            k = bisect.bisect_left(offsets, pos - a, k)
            cut = b
            if len(offsets) - k > limit:
                cut = a + offsets[k + limit]
                space = text.rfind(" ", pos + 1, cut)
                while space > pos + 1 and text[space - 1] == " ":
                    space -= 1
                if space > pos:
                    cut = space
            self._add(out, pos, cut, self.count(text[pos:cut]))
            pos = cut

    # -- packing -------------------------------------------------------------------

    def _lstrip(self, a: int, b: int) -> int:
        text = self.text
        while a < b and text[a].isspace():
            a += 1
        return a

    def _rstrip(self, a: int, b: int) -> int:
        text = self.text
        while b > a and text[b - 1].isspace():
            b -= 1
        return b

    def _tail(self, atom: Atom, q: int) -> int:
        """The count of ``text[atom start:q]``: the atom without its trailing whitespace."""
        a, b, n = atom[0], atom[1], atom[2]
        if q == b:
            return n
        text, count = self.text, self.count
        if b - a > _SHORT_ATOM:
            y, tries = text.rfind(" ", a + 1, q), 0
            while y != -1 and tries < 8:
                if _joins(text, y):  # split at its last word: only the ends are recounted
                    return n - count(text[y:b]) + count(text[y:q])
                y, tries = text.rfind(" ", a + 1, y), tries + 1
        return count(text[a:q])

    def _exact(
        self,
        atoms: list[Atom],
        sums: list[int],
        breaks: list[int],
        c: int,
        h: int,
        k: int,
        j: int,
        q: int,
    ) -> int:
        """The count of ``text[c:q]``: ``h`` tokens before atom ``k``, atoms ``k..j-1``."""
        if j > k and (not h or atoms[k][4]) and breaks[j] == breaks[k + 1]:
            return h + sums[j - 1] - sums[k] + self._tail(atoms[j - 1], q)
        return self.count(self.text[c:q])

    def _carry(self, c: int, q: int, n: int, nxt: int) -> tuple[int, int] | None:
        """Where the next chunk starts to repeat at most ``overlap`` tokens of ``text[c:q]``.

        A word start about ``overlap`` tokens before ``q`` (estimated from the chunk's
        characters per token, then checked): (position, tokens up to ``nxt``).
        """
        text, target = self.text, self.overlap
        # aim a little short of the target: one count then usually confirms it
        span = int(0.9 * target * (q - c) / max(n, 1))
        for _ in range(4):
            pos = max(q - span, c + 1)
            if not text[pos - 1].isspace():  # mid-word: move to the next word
                m = _WORD.search(text, pos, q)
                if m is None:
                    return None
                pos = m.end()
            pos = self._lstrip(pos, q)
            if pos >= q:
                return None
            h = self.count(text[pos:nxt])
            if h <= target:
                return pos, h
            span = int((q - pos) * target / h * 0.9)
        return None

    def pack(self, start: int, end: int) -> list[tuple[int, int, int]]:
        text, count, limit = self.text, self.count, self.max
        atoms = self.atoms(start, end)
        n = len(atoms)
        sums = list(itertools.accumulate((t[2] for t in atoms), initial=0))
        breaks = list(itertools.accumulate((not t[4] for t in atoms), initial=0))
        # tokens from each atom to the next heading: a heading whose section does not fit
        # in what is left of the budget starts a new chunk (no orphan headings)
        section = [0] * (n + 1)
        for k in range(n - 1, -1, -1):
            section[k] = atoms[k][2] + (0 if k + 1 < n and atoms[k + 1][3] else section[k + 1])
        chunks: list[tuple[int, int, int]] = []
        i = 0
        # the next chunk starts before atom i: (position, tokens up to atom i, is overlap)
        carry: tuple[int, int, bool] | None = None
        while i < n or carry is not None:
            if carry is not None:
                c, h, overlap = carry
                k = i
            else:
                overlap = False
                c = self._lstrip(atoms[i][0], atoms[i][1])
                k, h = (i, 0) if c == atoms[i][0] else (i + 1, count(text[c : atoms[i][1]]))
            carry = None
            used, j = h, k
            while j < n and used + atoms[j][2] <= limit:
                if (
                    atoms[j][3]
                    and (j > k or (h and not overlap))
                    and (used >= limit // 2 or used + section[j] > limit)
                ):
                    break  # a heading: start the next chunk with it
                used += atoms[j][2]
                j += 1
            if j == k:
                if overlap:  # the overlap left no room for the next atom: drop it
                    continue
                if not h:  # an atom over budget on its own: cut below
                    j = k + 1
            q = self._rstrip(c, atoms[j - 1][1] if j > k else atoms[k - 1][1])
            exact = self._exact(atoms, sums, breaks, c, h, k, j, q)
            while exact > limit and j - 1 > k:
                j -= 1
                q = self._rstrip(c, atoms[j - 1][1])
                exact = self._exact(atoms, sums, breaks, c, h, k, j, q)
            if exact > limit and overlap:
                continue  # no room for the overlap: start at atom i itself
            i = j
            nxt = atoms[i][0] if i < n else end
            cut = exact > limit
            if cut:  # one piece over budget on its own: the rest starts the next chunk
                q = self._rstrip(c, self._shrink(c, q))
                exact = count(text[c:q])
            chunks.append((c, q, exact))
            if cut:  # no overlap here: the next chunk must start past this one's start
                rest = self._lstrip(q, nxt)
                if rest < nxt:
                    carry = (rest, count(text[rest:nxt]), False)
            elif self.overlap and i < n:
                found = self._carry(c, q, exact, nxt)
                if found is not None:
                    carry = (found[0], found[1], True)
        return chunks

    def _shrink(self, a: int, b: int) -> int:
        """The end of the longest prefix of ``text[a:b]`` within the budget, cut at a token.

        Never ``a`` itself: with a budget below one character's tokens (an emoji at
        ``max_tokens=1``) the first character goes alone rather than nothing at all.
        """
        offsets = token_offsets(self.text[a:b], self.encoding)
        j = min(self.max, len(offsets) - 1)
        while j > 1 and (offsets[j] == 0 or self.count(self.text[a : a + offsets[j]]) > self.max):
            j -= 1
        end = a + offsets[j] if j > 0 else b
        return end if end > a else a + 1


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
        self.path = ""

    def at(self, offset: int) -> str:
        k = bisect.bisect_right(self.positions, offset)
        if k == self.k:
            return self.path
        if k < self.k:  # offsets went backwards (page strategy never does): rebuild
            self.trail, self.k = [], 0
        for level, title in self.headings[self.k : k]:
            while self.trail and self.trail[-1][0] >= level:
                self.trail.pop()
            self.trail.append((level, title))
        self.k = k
        self.path = " > ".join(t for _, t in self.trail)
        return self.path


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
        spans = [(a, b, n, None) for a, b, n in _token_spans(text, cfg, count)]
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
    base = {**(base_metadata or {}), "strategy": cfg.strategy, "encoding": cfg.encoding}
    chunks = []
    for index, (a, b, n, page) in enumerate(spans):
        meta = base.copy()
        if page is not None:
            meta["page"] = str(page)
        if trail is not None:
            path = trail.at(a)
            if path:
                meta["headings"] = path
        chunks.append(Chunk(doc_id, chunk_id_for(doc_id, a, b), index, text[a:b], a, b, n, meta))
    return chunks
