"""JSON, NDJSON (JSON Lines) and XML as markdown that shows their structure.

JSON (stdlib ``json``): an object's scalar members are a ``- **key**: value`` list and
its nested members headed sections (``#`` by depth); an array of flat objects is a
markdown table, an array of scalars a list. NDJSON: one record per line; records that
are all flat objects make one table (a row each), others one line each. XML (lxml,
entities and DTDs never loaded, no network): an element with children is a heading, leaf
elements ``- **name**: text``, attributes in parentheses; repeated flat records (a
``<row>`` per item) a table.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fmf_spark._deps import require
from fmf_spark.config.processing import ProcessingConfig
from fmf_spark.processing.base import Loaded, LoaderSpec, register_loader
from fmf_spark.processing.formats.docx import join_blocks
from fmf_spark.processing.loaders import markdown_table
from fmf_spark.processing.text import ParseFailure, decode_text

JSON = "application/json"
NDJSON = "application/x-ndjson"
XML = "application/xml"

Block = tuple[str, str]


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list)


def _heading(level: int, title: str) -> Block:
    return "heading", "#" * min(level, 6) + " " + title


def _table(records: list[dict[str, Any]]) -> str:
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    header = list(columns)
    rows = [[_scalar(r[c]) if c in r else "" for c in header] for r in records]
    return markdown_table([header, *rows])


def _flat_records(items: list[Any]) -> bool:
    return bool(items) and all(
        isinstance(i, dict) and i and all(_is_scalar(v) for v in i.values()) for i in items
    )


def json_blocks(value: Any, level: int = 1) -> Iterator[Block]:
    """Markdown blocks of a JSON value (headings deepen with ``level``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if _is_scalar(item):
                yield "list", f"- **{key}**: {_scalar(item)}"
        for key, item in value.items():
            if not _is_scalar(item):
                yield _heading(level, str(key))
                yield from json_blocks(item, level + 1)
    elif isinstance(value, list):
        if all(_is_scalar(v) for v in value):
            for item in value:
                yield "list", f"- {_scalar(item)}"
        elif _flat_records(value):
            yield "table", _table(value)
        else:
            for n, item in enumerate(value, start=1):
                if _is_scalar(item):
                    yield "list", f"- {_scalar(item)}"
                else:
                    yield _heading(level, str(n))
                    yield from json_blocks(item, level + 1)
    else:
        yield "text", _scalar(value)


def load_json(data: bytes, cfg: ProcessingConfig) -> Loaded:
    """A JSON document as structured markdown."""
    text, encoding = decode_text(data)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseFailure(f"JSON: {exc}", code="processing.corrupt") from None
    return Loaded(join_blocks(json_blocks(value)), metadata={"encoding": encoding})


def load_ndjson(data: bytes, cfg: ProcessingConfig) -> Loaded:
    """JSON Lines: one record per line (a table when they are all flat objects)."""
    text, encoding = decode_text(data)
    records: list[Any] = []
    invalid = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            invalid += 1
    if invalid and not records:
        raise ParseFailure("NDJSON: no line is valid JSON", code="processing.corrupt")
    meta = {"encoding": encoding, "records": str(len(records))}
    if invalid:
        meta["invalid_lines"] = str(invalid)
    if _flat_records(records):
        return Loaded(_table(records), metadata=meta)
    lines = []
    for record in records:
        if isinstance(record, dict):
            lines.append(
                "- "
                + "; ".join(
                    f"{k}: {_scalar(v) if _is_scalar(v) else json.dumps(v, ensure_ascii=False)}"
                    for k, v in record.items()
                )
            )
        else:
            lines.append("- " + json.dumps(record, ensure_ascii=False))
    return Loaded("\n".join(lines), metadata=meta)


# --- XML ------------------------------------------------------------------------------------


def _name(el: Any) -> str:
    tag = el.tag if isinstance(el.tag, str) else ""
    return tag.rsplit("}", 1)[-1]


def _attrs(el: Any) -> str:
    if not el.attrib:
        return ""
    return " (" + ", ".join(f"{k.rsplit('}', 1)[-1]}={v}" for k, v in el.attrib.items()) + ")"


def _elements(el: Any) -> list[Any]:
    return [c for c in el if isinstance(c.tag, str)]


def _text(el: Any) -> str:
    """An element's own text; entity references (never expanded) and comments left out."""
    parts = [el.text or ""]
    parts.extend(c.tail or "" for c in el if not isinstance(c.tag, str))
    return " ".join("".join(parts).split())


def _leaf(el: Any) -> bool:
    return not _elements(el)


def _record(el: Any) -> dict[str, str] | None:
    """A flat record: attributes and leaf children, each name once."""
    children = _elements(el)
    if not children or not all(_leaf(c) for c in children):
        return None
    names = [_name(c) for c in children]
    if len(set(names)) != len(names):
        return None
    record = {k.rsplit("}", 1)[-1]: v for k, v in el.attrib.items()}
    record.update({_name(c): _text(c) for c in children})
    return record


def xml_blocks(el: Any, level: int = 1) -> Iterator[Block]:
    """Markdown blocks of an XML element."""
    children = _elements(el)
    own = _text(el)
    if own:
        yield "text", own
    i = 0
    while i < len(children):
        child = children[i]
        if _leaf(child):
            text = _text(child)
            yield "list", f"- **{_name(child)}**{_attrs(child)}: {text}".rstrip(": ")
            i += 1
            continue
        # a run of same-named flat records is a table
        j = i
        records = []
        while j < len(children) and _name(children[j]) == _name(child):
            record = _record(children[j])
            if record is None:
                break
            records.append(record)
            j += 1
        if len(records) >= 2:
            yield _heading(level, _name(child))
            yield "table", _table(records)
            i = j
            continue
        yield _heading(level, _name(child) + _attrs(child))
        yield from xml_blocks(child, level + 1)
        i += 1


def load_xml(data: bytes, cfg: ProcessingConfig) -> Loaded:
    """An XML document as structured markdown (the root element is the title)."""
    etree = require("lxml.etree", "processing")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ParseFailure(f"XML: {exc}", code="processing.corrupt") from None
    blocks = [_heading(1, _name(root) + _attrs(root)), *xml_blocks(root, 2)]
    return Loaded(join_blocks(blocks), metadata={"root": _name(root)})


register_loader(LoaderSpec(JSON, load_json, ("json",)))
register_loader(LoaderSpec(NDJSON, load_ndjson, ("ndjson", "jsonl")))
register_loader(LoaderSpec(XML, load_xml, ("xml",)))
