"""The loader plug-in shape: one registry of loaders by content type.

A loader turns one file's bytes into markdown text (:class:`Loaded`) or raises
:class:`~fmf_spark.processing.text.ParseFailure` with a precise ``code``; the caller
turns that into an error row. A format is one module: it defines its load function and
registers a :class:`LoaderSpec` (content type, file extensions, and a magic-bytes test
for binary formats) in :data:`LOADERS`. Built-in loaders live in
:mod:`fmf_spark.processing.loaders`; a third-party module registers the same way and
is imported from the config's ``plugins:`` list.

Example:
    >>> from fmf_spark.processing.base import LOADERS, Loaded, LoaderSpec
    >>> def load_ini(data, cfg):
    ...     return Loaded(data.decode())
    >>> LOADERS.register("text/x-ini", LoaderSpec("text/x-ini", load_ini, ("ini",)))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fmf_spark.registry import Registry

if TYPE_CHECKING:
    from fmf_spark.config.processing import ProcessingConfig


@dataclass
class Loaded:
    """What a loader produced: markdown text, pages, and notes for ``metadata``."""

    text: str
    pages: int | None = None
    #: character offset where each page starts in ``text`` (PDF only)
    page_starts: list[int] | None = None
    metadata: dict[str, str] = field(default_factory=dict)


LoadFunction = Callable[[bytes, "ProcessingConfig"], Loaded]


@dataclass(frozen=True)
class LoaderSpec:
    """One registered format.

    Attributes:
        content_type: the MIME type the loader reads (the registry key and the
            ``content_type`` column of the documents).
        load: ``(bytes, processing config) -> Loaded``; raises ``ParseFailure``.
        extensions: file extensions (lower case, no dot) that name this type.
        sniff: for binary formats, a test of the first bytes (or, for a zip-based
            format, of the whole file) that recognises it whatever the file's name.
    """

    content_type: str
    load: LoadFunction
    extensions: tuple[str, ...] = ()
    sniff: Callable[[bytes], bool] | None = None


#: the loaders, by content type
LOADERS: Registry[LoaderSpec] = Registry("loader", builtins=("fmf_spark.processing.loaders",))


def register_loader(spec: LoaderSpec) -> LoaderSpec:
    """Register a format; registering a content type twice raises ``ValueError``."""
    return LOADERS.register(spec.content_type, spec)
