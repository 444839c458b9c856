"""``${...}`` references in step inputs: parsing and validation against scopes.

A step input is text with references, e.g. ``"Title: ${doc.metadata.title}"``:

- ``${chunk.<field>}``: ``text``, ``chunk_id``, ``chunk_index``, ``char_start``,
  ``char_end``, ``token_count``, ``metadata.<key>``. In a document-scope step the
  values of the document's chunks are gathered in chunk order.
- ``${doc.<field>}``: ``doc_id``, ``path``, ``uri``, ``source``, ``content_type``,
  ``pages``, ``size``, ``text``, ``metadata.<key>``.
- ``${steps.<id>.output_text}``, ``${steps.<id>.output_json}``,
  ``${steps.<id>.output_json.<field>[.<field>...]}``: the output of an earlier step for
  the same row (joined on ``chunk_id``, or ``doc_id`` when the earlier step is
  document-scope; gathered in chunk order when the earlier step is finer-grained).
- ``${all.<id>.output_text}`` (or ``.output_json...``): every successful output of an
  earlier step, in document path then chunk order, joined by the step's ``separator``.

Write ``$${`` for a literal ``${``. Every reference is checked before any Spark work:
unknown fields, later or unknown steps, JSON fields missing from the referenced
prompt's response schema, and scope mismatches are errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fmf_spark.errors import ChainError

CHUNK_FIELDS = ("text", "chunk_id", "chunk_index", "char_start", "char_end", "token_count")
DOC_FIELDS = ("doc_id", "path", "uri", "source", "content_type", "pages", "size", "text")
OUTPUT_FIELDS = ("output_text", "output_json")
_REF = re.compile(r"\$\$\{|\$\{([^{}]*)\}")
_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")


@dataclass(frozen=True)
class Ref:
    """One parsed reference.

    Attributes:
        kind: ``chunk``, ``doc``, ``steps`` or ``all``.
        field: the field after the prefix (``text``, ``metadata.title``,
            ``output_json.summary``).
        step: the referenced step, for ``steps`` and ``all``.
    """

    kind: str
    field: str
    step: str | None = None

    @property
    def text(self) -> str:
        middle = f"{self.step}." if self.step else ""
        return f"${{{self.kind}.{middle}{self.field}}}"

    @property
    def json_path(self) -> list[str]:
        """For ``output_json.a.b``: ``["a", "b"]``; else ``[]``."""
        parts = self.field.split(".")
        return parts[1:] if parts[0] == "output_json" else []

    @property
    def metadata_key(self) -> str | None:
        return self.field.split(".", 1)[1] if self.field.startswith("metadata.") else None


Part = str | Ref


def parse_input(text: str) -> list[Part]:
    """Split an input into literal text and references.

    Raises:
        ChainError: a malformed reference (unknown prefix, bad field, unclosed ``${``).

    Example:
        >>> parse_input("Doc ${doc.path}")
        ['Doc ', Ref(kind='doc', field='path', step=None)]
    """
    parts: list[Part] = []
    literal: list[str] = []
    pos = 0
    for match in _REF.finditer(text):
        literal.append(text[pos : match.start()])
        pos = match.end()
        if match.group(0) == "$${":
            literal.append("${")
            continue
        if literal and "".join(literal):
            parts.append("".join(literal))
        literal = []
        parts.append(parse_ref(match.group(1)))
    rest = text[pos:]
    if "${" in rest:
        raise ChainError(f"unclosed '${{' in input {text!r}", hint="write $${ for a literal ${")
    literal.append(rest)
    if "".join(literal):
        parts.append("".join(literal))
    return parts


def parse_ref(expr: str) -> Ref:
    """Parse the inside of ``${...}``."""
    pieces = expr.strip().split(".")
    head = pieces[0]
    if head in ("chunk", "doc"):
        field = ".".join(pieces[1:])
        allowed = CHUNK_FIELDS if head == "chunk" else DOC_FIELDS
        if field in allowed:
            return Ref(head, field)
        if len(pieces) == 3 and pieces[1] == "metadata" and _KEY.match(pieces[2]):
            return Ref(head, field)
        raise ChainError(
            f"unknown field in ${{{expr}}}",
            hint=f"{head}. fields: {', '.join(allowed)}, metadata.<key>",
        )
    if head in ("steps", "all"):
        if len(pieces) < 3 or pieces[2] not in OUTPUT_FIELDS:
            raise ChainError(
                f"bad reference ${{{expr}}}",
                hint=f"write ${{{head}.<step>.output_text}} or ${{{head}.<step>.output_json.<field>}}",
            )
        if pieces[2] == "output_text" and len(pieces) > 3:
            raise ChainError(
                f"output_text has no fields: ${{{expr}}}", hint="use output_json.<field>"
            )
        if any(not _KEY.match(p) for p in pieces[1:]):
            raise ChainError(f"bad name in ${{{expr}}}")
        return Ref(head, ".".join(pieces[2:]), pieces[1])
    raise ChainError(
        f"unknown reference ${{{expr}}}",
        hint="references start with chunk., doc., steps. or all.",
    )


def refs_of(parts: list[Part]) -> list[Ref]:
    return [p for p in parts if isinstance(p, Ref)]


# --- validation ---------------------------------------------------------------------------

#: how a value reaches a row of a target scope: join (1:1), gather (many:1), broadcast (1:all)
Mode = str


def resolve_mode(ref: Ref, target_scope: str, source_scope: str | None) -> Mode:
    """How ``ref`` is evaluated in a step of ``target_scope``.

    Args:
        ref: the reference.
        target_scope: scope of the step that uses it.
        source_scope: scope of the referenced step (for ``steps``/``all``).

    Returns:
        ``direct``, ``join_chunk``, ``join_doc``, ``gather_chunks`` or ``broadcast``.

    Raises:
        ChainError: the reference makes no sense in that scope.
    """
    if ref.kind == "all":
        return "broadcast"
    if ref.kind == "chunk":
        if target_scope == "chunk":
            return "direct"
        if target_scope == "document":
            return "gather_chunks"
        raise ChainError(
            f"{ref.text} cannot be used in an all-scope step (one call for the whole run)",
            hint="gather an earlier step's outputs with ${all.<step>.output_text}",
        )
    if ref.kind == "doc":
        if target_scope in ("chunk", "document"):
            return "direct"
        raise ChainError(
            f"{ref.text} cannot be used in an all-scope step",
            hint="gather an earlier document-scope step with ${all.<step>.output_text}",
        )
    # steps.<id>
    if source_scope == "all":
        return "broadcast"
    if target_scope == "all":
        raise ChainError(
            f"{ref.text} refers to a {source_scope}-scope step from an all-scope step",
            hint=f"use ${{all.{ref.step}.{ref.field}}} to gather its outputs in order",
        )
    if source_scope == "chunk":
        return "join_chunk" if target_scope == "chunk" else "gather_chunks"
    return "join_doc"


def check_json_path(ref: Ref, schema: dict[str, Any] | None, source_ref: str) -> None:
    """``output_json.<a>.<b>`` must exist in the referenced prompt's response schema.

    Raises:
        ChainError: no schema, or a field the schema does not declare.
    """
    path = ref.json_path
    if not ref.field.startswith("output_json"):
        return
    if schema is None:
        raise ChainError(
            f"{ref.text}: step '{ref.step}' (prompt {source_ref}) has no response_schema, "
            "so its output is not JSON",
            hint=f"use ${{{ref.kind}.{ref.step}.output_text}}, or give the prompt a response_schema",
        )
    node: dict[str, Any] = schema
    for depth, name in enumerate(path):
        props = node.get("properties") if isinstance(node, dict) else None
        if not isinstance(props, dict) or name not in props:
            where = ".".join(path[:depth]) or "the top level"
            known = ", ".join(sorted(props)) if isinstance(props, dict) else "none"
            raise ChainError(
                f"{ref.text}: the response schema of {source_ref} has no field '{name}' at "
                f"{where} (fields: {known})"
            )
        node = props[name]
