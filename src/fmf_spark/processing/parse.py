"""Parse one file to a document: the pure-Python stage behind :func:`parse_documents`.

:func:`parse_file` never raises for bad input: it returns a :class:`ParsedDocument`
with ``status='error'`` and a precise ``error.code``:

``processing.empty``, ``processing.too_large``, ``processing.binary_content``,
``processing.corrupt``, ``processing.encrypted``, ``processing.zip_bomb``,
``processing.unsupported_type``, ``processing.legacy_format``, ``processing.timeout``,
``processing.ocr_disabled``, ``processing.ocr_unavailable``, ``processing.ocr_failed``,
``processing.unsafe_path`` and ``processing.too_deep`` (child documents), and
``processing.parse_failed`` for a loader bug (the exception type and message are kept).

A container's members (e-mail attachments, archive members) are parsed by
:func:`expand_children` into documents of their own, linked to their parent.

Time limit: ``SIGALRM`` interrupts a parse that runs longer than ``parse_timeout_s``
when called on a process's main thread (Spark's Python workers, the CLI, the
benchmark loop); tesseract gets its own timeout. A single long call inside C code
(lxml, zlib) is interrupted when it returns to Python.
"""

from __future__ import annotations

import hashlib
import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fmf_spark.config.processing import ProcessingConfig
from fmf_spark.errors import FmfError, ParseFailure, ParseTimeout, error_struct
from fmf_spark.processing.base import LOADERS, Child, Loaded
from fmf_spark.processing.text import detect_type, normalize

__all__ = ["ParseTimeout", "ParsedDocument", "doc_id_for", "parse_file", "time_limit"]


@dataclass
class ParsedDocument:
    """The outcome of parsing one file (the document columns that parsing decides)."""

    doc_id: str
    content_type: str | None
    text: str | None
    pages: int | None
    metadata: dict[str, str] = field(default_factory=dict)
    status: str = "ok"
    error: dict[str, Any] | None = None
    #: members the loader handed out, not parsed yet (see :func:`expand_children`)
    children: Iterable[Child] = field(default=(), repr=False, compare=False)


@dataclass
class ChildDocument:
    """A parsed child document and where it sits in its parent.

    ``path`` and ``uri`` are the parent's with ``!/<name>`` appended (as in a jar
    URL), so a member's own extension still names its type.
    """

    path: str
    uri: str
    size: int | None
    parent_doc_id: str
    attachment_name: str
    depth: int
    doc: ParsedDocument


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`ParseTimeout` in this thread after ``seconds`` (main thread only)."""
    if (
        seconds <= 0
        or not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise ParseTimeout(f"parsing took longer than {seconds:g}s (parse_timeout_s)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def doc_id_for(content: bytes | None, uri: str) -> str:
    """sha256 of the content; of ``uri:<uri>`` when there is no content (error rows)."""
    if content is None:
        return hashlib.sha256(f"uri:{uri}".encode()).hexdigest()
    return hashlib.sha256(content).hexdigest()


def _load(content_type: str, data: bytes, cfg: ProcessingConfig) -> Loaded:
    spec = LOADERS.find(content_type)
    if spec is None:
        raise ParseFailure(f"no loader for {content_type}", code="processing.unsupported_type")
    return spec.load(data, cfg)


def parse_file(
    content: bytes | None, path: str, cfg: ProcessingConfig, uri: str | None = None
) -> ParsedDocument:
    """Parse one file's bytes into markdown text; failures become an error outcome.

    Args:
        content: the file's bytes.
        path: its path (the extension is a hint; the content decides).
        cfg: the ``processing`` config (size and time limits, OCR).
        uri: used for the ``doc_id`` of a file without content.

    Example:
        >>> from fmf_spark.config.processing import ProcessingConfig
        >>> doc = parse_file(b"# Title\\r\\n\\r\\n\\r\\nbody  ", "a.md", ProcessingConfig())
        >>> (doc.status, doc.content_type, doc.text)
        ('ok', 'text/markdown', '# Title\\n\\nbody')
    """
    doc_id = doc_id_for(content, uri or path)
    if content is None:
        return _failed(doc_id, None, {}, "processing.no_content", "the file has no content")
    content_type, meta = detect_type(content, path)
    if len(content) == 0:
        return _failed(doc_id, content_type, meta, "processing.empty", "the file is empty")
    if len(content) > cfg.max_file_bytes:
        return _failed(
            doc_id,
            content_type,
            meta,
            "processing.too_large",
            f"{len(content)} bytes is over processing.max_file_bytes={cfg.max_file_bytes}",
        )
    try:
        with time_limit(cfg.parse_timeout_s):
            loaded = _load(content_type, content, cfg)
            text = loaded.text if loaded.page_starts is not None else normalize(loaded.text)
    except FmfError as exc:
        return _failed(doc_id, content_type, meta, exc.code, exc.message, exc.retryable)
    except RecursionError:
        return _failed(
            doc_id, content_type, meta, "processing.corrupt", "structure nested too deeply"
        )
    except MemoryError:
        return _failed(
            doc_id, content_type, meta, "processing.too_large", "out of memory while parsing"
        )
    except Exception as exc:  # a loader bug: still a row that says what happened
        return _failed(
            doc_id, content_type, meta, "processing.parse_failed", f"{type(exc).__name__}: {exc}"
        )
    meta.update(loaded.metadata)
    if loaded.page_starts is not None:
        meta["page_starts"] = ",".join(str(s) for s in loaded.page_starts)
    if not text.strip():
        failed = _failed(
            doc_id, content_type, meta, "processing.no_text", "no text could be extracted"
        )
        failed.children = loaded.children
        return failed
    return ParsedDocument(doc_id, content_type, text, loaded.pages, meta, children=loaded.children)


def expand_children(
    parent: ParsedDocument,
    path: str,
    uri: str,
    cfg: ProcessingConfig,
    *,
    depth: int = 1,
    _budget: list[int] | None = None,
) -> Iterator[ChildDocument]:
    """Parse a document's children, and theirs, depth first; every child is a row.

    Limits (``processing``): ``max_depth`` (a member deeper than that is an error row
    ``processing.too_deep``), ``max_children`` per parent (the rest are counted in the
    parent's ``children_skipped`` metadata), ``max_expanded_bytes`` over all the
    descendants of one file (past it, ``processing.zip_bomb`` rows); each child also
    meets ``max_file_bytes`` and the parse time limit like any file. A member the
    loader refused (an unsafe path) arrives with its error and stays an error row.

    Args:
        parent: a result of :func:`parse_file`; its ``children`` are consumed.
        path: the parent's path (children get ``<path>!/<name>``).
        uri: the parent's URI (children get ``<uri>!/<name>``).
        cfg: the ``processing`` config.
        depth: the depth of ``parent``'s children (1 for a file's own).

    Example:
        >>> from fmf_spark.config.processing import ProcessingConfig
        >>> from fmf_spark.processing.synthetic_office import zip_bytes
        >>> cfg = ProcessingConfig()
        >>> doc = parse_file(zip_bytes({"a.md": b"# A"}), "x.zip", cfg)
        >>> [(c.path, c.doc.text) for c in expand_children(doc, "x.zip", "file:///x.zip", cfg)]
        [('x.zip!/a.md', '# A')]
    """
    budget = _budget if _budget is not None else [cfg.max_expanded_bytes]
    children, parent.children = parent.children, ()
    taken = skipped = 0
    for child in children:
        if taken >= cfg.max_children:
            skipped += 1
            continue
        taken += 1
        child_path = f"{path}!/{child.name}"
        child_uri = f"{uri}!/{child.name}"
        content: bytes | None = child.data if child.error is None else None
        if child.error is not None:
            doc = _failed(doc_id_for(None, child_uri), None, {}, *child.error)
        elif depth > cfg.max_depth:
            doc = _failed(
                doc_id_for(child.data, child_uri),
                None,
                {},
                "processing.too_deep",
                f"nested {depth} levels deep, over processing.max_depth={cfg.max_depth}",
            )
        elif len(child.data) > budget[0]:
            doc = _failed(
                doc_id_for(child.data, child_uri),
                None,
                {},
                "processing.zip_bomb",
                f"the members of this file together inflate to over "
                f"processing.max_expanded_bytes={cfg.max_expanded_bytes}",
            )
        else:
            budget[0] -= len(child.data)
            doc = parse_file(child.data, child_path, cfg, child_uri)
        doc.metadata.update(
            parent_doc_id=parent.doc_id, attachment_name=child.name, depth=str(depth)
        )
        yield ChildDocument(
            child_path,
            child_uri,
            None if content is None else len(content),
            parent.doc_id,
            child.name,
            depth,
            doc,
        )
        yield from expand_children(doc, child_path, child_uri, cfg, depth=depth + 1, _budget=budget)
    if skipped:
        parent.metadata["children_skipped"] = str(skipped)


def _failed(
    doc_id: str,
    content_type: str | None,
    meta: dict[str, str],
    code: str,
    message: str,
    retryable: bool = False,
) -> ParsedDocument:
    return ParsedDocument(
        doc_id,
        content_type,
        None,
        None,
        meta,
        "error",
        error_struct(code, message, retryable),
    )
