"""Chunking strategies and token counts, without Spark."""

from __future__ import annotations

import itertools
import random

import pytest

from fmf_spark.config.processing import ChunkingConfig
from fmf_spark.processing import chunk_id_for, chunk_text, count_tokens
from fmf_spark.processing.chunking import _joins
from fmf_spark.processing.synthetic import markdown_doc


def test_count_tokens_real_encodings() -> None:
    # reference values from OpenAI's tiktoken for the same strings
    assert count_tokens("hello world", "cl100k_base") == 2
    assert count_tokens("tiktoken is great!", "cl100k_base") == 6
    assert count_tokens("", "o200k_base") == 0
    long = "lorem ipsum " * 100_000  # over bpe-openai's per-call limit: counted in pieces
    # "l"+"orem", then " ipsum", " lorem" ... and the trailing space: as in one call
    assert count_tokens(long, "o200k_base") == 200_002


@pytest.fixture(scope="module")
def corpus() -> str:
    rng = random.Random(3)
    text = markdown_doc(rng, 60_000)
    table = "| k | v |\n|---|---|\n" + "\n".join(
        f"| {i} | Ünïcödé välue {i} 😀 |" for i in range(400)
    )
    blob = "base64:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo" * 200  # one "word" over budget
    return f"{text}\n\n## Data\n\n{table}\n\n## Blob\n\n{blob}\n\nThe end."


def _check(chunks, text: str, max_tokens: int) -> None:
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.text == text[c.char_start : c.char_end]
        assert c.text == c.text.strip() and c.text
        assert c.token_count == count_tokens(c.text, "o200k_base")
        assert c.token_count <= max_tokens
        assert c.chunk_id == chunk_id_for("doc", c.char_start, c.char_end)
    # nothing lost: every non-space character is in some chunk
    covered = [False] * len(text)
    for c in chunks:
        covered[c.char_start : c.char_end] = [True] * (c.char_end - c.char_start)
    assert all(covered[i] or text[i].isspace() for i in range(len(text)))


@pytest.mark.parametrize("strategy", ["tokens", "markdown", "page"])
def test_strategies_cover_text_within_budget(corpus: str, strategy: str) -> None:
    cfg = ChunkingConfig(strategy=strategy, max_tokens=200, overlap_tokens=30)
    pages = [0, corpus.index("## Data"), corpus.index("## Blob")]
    chunks = chunk_text("doc", corpus, cfg, page_starts=pages)
    _check(chunks, corpus, 200)
    again = chunk_text("doc", corpus, cfg, page_starts=pages)
    assert [c.chunk_id for c in again] == [c.chunk_id for c in chunks]  # stable across reruns
    if strategy == "page":
        assert {c.metadata["page"] for c in chunks} == {"1", "2", "3"}
        for c in chunks:
            page = int(c.metadata["page"])
            lo, hi = pages[page - 1], ([*pages, len(corpus)])[page]
            assert lo <= c.char_start and c.char_end <= hi


def test_tokens_strategy_overlap_is_exact(corpus: str) -> None:
    cfg = ChunkingConfig(strategy="tokens", max_tokens=100, overlap_tokens=20)
    chunks = chunk_text("doc", corpus, cfg)
    for prev, nxt in itertools.pairwise(chunks):
        assert nxt.char_start < prev.char_end  # windows overlap
        assert count_tokens(corpus[nxt.char_start : prev.char_end]) in range(18, 23)


def test_markdown_strategy_follows_structure() -> None:
    text = (
        "# Guide\n\nIntro paragraph.\n\n## Setup\n\n"
        + "Install the tool. " * 40
        + "\n\n## Usage\n\nRun it.\n\n### Flags\n\nUse --fast."
    )
    cfg = ChunkingConfig(strategy="markdown", max_tokens=120, overlap_tokens=0)
    chunks = chunk_text("doc", text, cfg)
    _check(chunks, text, 120)
    assert [(c.text.split("\n")[0][:17], c.metadata.get("headings")) for c in chunks] == [
        ("# Guide", "Guide"),  # the Setup section does not fit after it: new chunk
        ("## Setup", "Guide > Setup"),
        ("Install the tool.", "Guide > Setup"),  # the rest of Setup, then Usage, which fits
    ]
    assert chunks[0].text == "# Guide\n\nIntro paragraph."
    assert chunks[2].text.endswith(
        "Install the tool. \n\n## Usage\n\nRun it.\n\n### Flags\n\nUse --fast."
    )
    assert not any(c.text.split("\n")[-1].startswith("#") for c in chunks)  # no orphan heading


def test_markdown_overlap_starts_at_a_word(corpus: str) -> None:
    cfg = ChunkingConfig(strategy="markdown", max_tokens=150, overlap_tokens=40)
    chunks = chunk_text("doc", corpus, cfg)
    overlapping = [(p, n) for p, n in itertools.pairwise(chunks) if n.char_start < p.char_end]
    assert len(overlapping) > len(chunks) // 2
    for prev, nxt in overlapping:
        assert corpus[nxt.char_start - 1].isspace()
        assert count_tokens(corpus[nxt.char_start : prev.char_end]) <= 42


def test_small_and_empty_documents() -> None:
    cfg = ChunkingConfig(max_tokens=50)
    assert chunk_text("d", "", cfg) == []
    [only] = chunk_text("d", "  just this  ", cfg, base_metadata={"path": "a.md"})
    assert (only.text, only.char_start, only.char_end, only.token_count) == ("just this", 2, 11, 2)
    assert only.metadata == {"path": "a.md", "strategy": "markdown", "encoding": "o200k_base"}


_ODD_PIECES = [
    "don't", "l'été", "U.S.A.", "3.14159", "東京都", "emoji😀", "  double  spaces", "\t",
    "CamelCaseWord", "ÄÖÜäöü", "https://x.example/a?b=c", "snake_case", "(parens)", "--flag",
    "'quoted'", "1,000,000", "ﬁligature", "e\u0301", "ALLCAPS", "x", "\n", "\n\n", "- item",
    "## Heading", "| a | b |", "Ωμέγα", "привет", "a.b.c", "...", "!!!", "$100", "#tag", "/path",
    "end.\n/", "\r\n", "\n  \n", "\n   indented", "x \n\n", "\u2028", "\x0c", "'s", " 's",
]  # fmt: skip
_SEPARATORS = [" ", " ", " ", "\n", "\n\n", "\n  ", "\t", "", "  ", ".\n", "\n/"]


def _odd_text(rng: random.Random, words: int) -> str:
    return "".join(rng.choice(_ODD_PIECES) + rng.choice(_SEPARATORS) for _ in range(words))


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
def test_counts_add_up_where_the_chunker_says_they_do(encoding: str) -> None:
    """The chunker adds the counts of pieces split where ``_joins`` holds: check that
    claim against the tokenizer on odd text, at every such position."""
    rng = random.Random(7)
    checked = 0
    for _ in range(100):
        text = _odd_text(rng, rng.randint(5, 60))
        for p in range(1, len(text)):
            if not _joins(text, p):
                continue
            x, y = rng.randint(0, p - 1), rng.randint(p + 1, len(text))
            whole = count_tokens(text[x:y], encoding)
            parts = count_tokens(text[x:p], encoding) + count_tokens(text[p:y], encoding)
            assert whole == parts, (text[x:p], text[p:y])
            checked += 1
    assert checked > 1000


def test_token_counts_exact_on_adversarial_text() -> None:
    """Counts add up atoms' counts between safe cuts: check them on odd text."""
    pieces = _ODD_PIECES[:32]  # the list before "/path", "\\r\\n", indents and the like
    rng = random.Random(5)
    for trial in range(30):
        text = " ".join(rng.choice(pieces) for _ in range(rng.randint(200, 1500)))
        if trial % 2:  # and with every kind of separator, newlines and indents included
            text = _odd_text(rng, rng.randint(200, 1500))
        encoding = rng.choice(["o200k_base", "cl100k_base"])
        for strategy in ("markdown", "tokens"):
            cfg = ChunkingConfig(
                strategy=strategy,
                max_tokens=rng.choice([16, 40, 100, 300]),
                overlap_tokens=rng.choice([0, 5, 30]),
                encoding=encoding,
            )
            chunks = chunk_text(f"d{trial}", text, cfg)
            for c in chunks:
                assert c.token_count == count_tokens(c.text, encoding), (trial, strategy, c.text)
                assert c.token_count <= cfg.max_tokens
            covered = [False] * len(text)
            for c in chunks:
                covered[c.char_start : c.char_end] = [True] * (c.char_end - c.char_start)
            assert all(covered[i] or text[i].isspace() for i in range(len(text))), trial
