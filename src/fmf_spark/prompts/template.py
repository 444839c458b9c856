"""Prompt templates: ``{{ name }}`` placeholders, parsed once, rendered many times.

The double-brace syntax is the one MLflow's prompt registry uses, so a version mirrored
there renders the same way in the MLflow UI. A ``{{`` or ``}}`` that is not part of a
well-formed ``{{ identifier }}`` is an error rather than text left as is, because a typo
such as ``{{ text }`` would otherwise reach the model unrendered (write ``{ {`` for a
literal pair of braces).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from fmf_spark.errors import PromptError

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_STRAY = re.compile(r"\{\{|\}\}")


@dataclass(frozen=True)
class Literal:
    """A run of template text copied as is."""

    text: str


@dataclass(frozen=True)
class Placeholder:
    """A ``{{ name }}`` slot filled with the value of variable ``name``."""

    name: str


Part = Literal | Placeholder


def parse_template(template: str) -> list[Part]:
    """Split ``template`` into literal text and placeholders.

    Raises:
        PromptError: a ``{{`` or ``}}`` that is not part of a ``{{ identifier }}``.

    Example:
        >>> parse_template("Hi {{ name }}!")
        [Literal(text='Hi '), Placeholder(name='name'), Literal(text='!')]
    """
    parts: list[Part] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(template):
        _check_literal(template[pos : match.start()], template)
        if match.start() > pos:
            parts.append(Literal(template[pos : match.start()]))
        parts.append(Placeholder(match.group(1)))
        pos = match.end()
    _check_literal(template[pos:], template)
    if pos < len(template):
        parts.append(Literal(template[pos:]))
    return parts


def _check_literal(text: str, template: str) -> None:
    stray = _STRAY.search(text)
    if stray is not None:
        snippet = text[max(0, stray.start() - 20) : stray.end() + 20]
        raise PromptError(
            f"malformed placeholder near {snippet!r} in template {template[:60]!r}",
            hint="placeholders are written {{ name }} with a Python-identifier name",
        )


def variables_of(template: str) -> list[str]:
    """The variable names a template uses, in order of first use."""
    seen: dict[str, None] = {}
    for part in parse_template(template):
        if isinstance(part, Placeholder):
            seen.setdefault(part.name, None)
    return list(seen)


def render(template: str, values: Mapping[str, object]) -> str:
    """Fill every placeholder; ``None`` renders as an empty string.

    Raises:
        PromptError: a placeholder has no value in ``values``.
    """
    out: list[str] = []
    for part in parse_template(template):
        if isinstance(part, Literal):
            out.append(part.text)
        elif part.name not in values:
            raise PromptError(f"no value for template variable '{part.name}'")
        else:
            value = values[part.name]
            out.append("" if value is None else str(value))
    return "".join(out)
