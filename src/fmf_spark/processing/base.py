"""The loader plug-in shape: one registry of loaders by content type.

A loader turns one file's bytes into markdown text (:class:`Loaded`) or raises
:class:`~fmf_spark.processing.text.ParseFailure` with a precise ``code``; the caller
turns that into an error row. A format is one module: it defines its load function and
registers a :class:`LoaderSpec` (content type, file extensions, and a test that
recognises its bytes: magic bytes, the members of a zip, or the streams of an OLE2
compound file) in :data:`LOADERS`. Built-in loaders live in
:mod:`fmf_spark.processing.loaders` and one module per format under
:mod:`fmf_spark.processing.formats`; a third-party module registers the same way and
is imported from the config's ``plugins:`` list.

A container (an archive, an e-mail with attachments) returns its members as
:class:`Child` items in ``Loaded.children``; the parse stage turns each into a
document row of its own, parsed by its own loader and linked by ``parent_doc_id``
(see :func:`fmf_spark.processing.parse.expand_children`).

Example:
    >>> from fmf_spark.processing.base import LOADERS, Loaded, LoaderSpec
    >>> def load_ini(data, cfg):
    ...     return Loaded(data.decode())
    >>> LOADERS.register("text/x-ini", LoaderSpec("text/x-ini", load_ini, ("ini",)))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fmf_spark.registry import Registry

if TYPE_CHECKING:
    import zipfile

    from fmf_spark.config.processing import ProcessingConfig


@dataclass(frozen=True)
class Child:
    """A document inside another one: an e-mail attachment, an archive member.

    Attributes:
        name: its name inside the parent (attachment file name, member path); its
            extension is the type hint its loader gets.
        data: its bytes (empty when ``error`` is set).
        error: ``(code, message)`` when the parent refused to hand it out (an unsafe
            member path, a member over a limit): it still becomes a row, an error row.
    """

    name: str
    data: bytes = b""
    error: tuple[str, str] | None = None


@dataclass
class Loaded:
    """What a loader produced: markdown text, pages, notes for ``metadata``, children.

    ``page_starts`` (the character offset of each page in ``text``) makes the
    chunker's ``page`` strategy cut at pages (PDF pages, slides, sheets); ``text``
    is then used as it is, so the loader normalises each page itself.
    ``children`` may be a generator: an archive hands out one member at a time, so a
    large archive is never held inflated in memory.
    """

    text: str
    pages: int | None = None
    #: character offset where each page starts in ``text``
    page_starts: list[int] | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    children: Iterable[Child] = ()


LoadFunction = Callable[[bytes, "ProcessingConfig"], Loaded]


@dataclass(frozen=True)
class LoaderSpec:
    """One registered format.

    Attributes:
        content_type: the MIME type the loader reads (the registry key and the
            ``content_type`` column of the documents).
        load: ``(bytes, processing config) -> Loaded``; raises ``ParseFailure``.
        extensions: file extensions (lower case, no dot) that name this type.
        sniff: for binary formats, a test of the bytes (magic bytes) that recognises
            it whatever the file's name.
        zip_sniff: for a format stored as a zip (OOXML, OpenDocument, EPUB), a test of
            the open archive (its member names, a small ``mimetype`` member).
        ole_sniff: for a format stored in an OLE2 compound file (legacy Office,
            Outlook ``.msg``), a test of its stream paths (``"/"``-joined, lower case).
    """

    content_type: str
    load: LoadFunction
    extensions: tuple[str, ...] = ()
    sniff: Callable[[bytes], bool] | None = None
    zip_sniff: Callable[[zipfile.ZipFile], bool] | None = None
    ole_sniff: Callable[[frozenset[str]], bool] | None = None


#: the loaders, by content type
LOADERS: Registry[LoaderSpec] = Registry(
    "loader",
    builtins=(
        "fmf_spark.processing.loaders",
        "fmf_spark.processing.formats.docx",
        "fmf_spark.processing.formats.pptx",
        "fmf_spark.processing.formats.email",
        "fmf_spark.processing.formats.msg",
        "fmf_spark.processing.formats.archive",
        "fmf_spark.processing.formats.odf",
        "fmf_spark.processing.formats.rtf",
        "fmf_spark.processing.formats.epub",
        "fmf_spark.processing.formats.structured",
        "fmf_spark.processing.formats.ole",
        "fmf_spark.processing.formats.tiff",
    ),
)


def register_loader(spec: LoaderSpec) -> LoaderSpec:
    """Register a format; registering a content type twice raises ``ValueError``."""
    return LOADERS.register(spec.content_type, spec)
