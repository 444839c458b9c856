"""Deterministic answers: the same request always gets the same answer.

Free text is derived from the last user message (so a test can see its input went
through); a request with a JSON schema gets valid JSON for that schema, with values
derived from a hash of the input.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from fmf_spark.inference.tokens import count_tokens

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def text_answer(model: str, last_user: str) -> str:
    """A sentence that quotes the start of the input."""
    words = _WORD.findall(last_user)[:24]
    return f"[{model}] Answer about: {' '.join(words)}."


def truncate_to_tokens(text: str, max_tokens: int) -> tuple[str, bool]:
    """Cut ``text`` to at most ``max_tokens`` tokens; True when it was cut."""
    if count_tokens(text) <= max_tokens:
        return text, False
    words = text.split(" ")
    while words and count_tokens(" ".join(words)) > max_tokens:
        words.pop()
    return " ".join(words), True


def apply_stop(text: str, stop: list[str] | None) -> tuple[str, bool]:
    """Cut ``text`` at the first stop sequence; True when one was found."""
    cut = len(text)
    for s in stop or []:
        i = text.find(s)
        if s and i != -1:
            cut = min(cut, i)
    return text[:cut], cut < len(text)


def json_for_schema(schema: Mapping[str, Any], last_user: str) -> Any:
    """A value valid for ``schema`` (the common JSON-schema subset), derived from input."""
    words = _WORD.findall(last_user) or ["text"]
    defs = dict(schema.get("$defs", {}) or schema.get("definitions", {}) or {})
    return _value(schema, defs, words, _seed(last_user), depth=0)


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        name = ref.rsplit("/", 1)[-1]
        return dict(defs.get(name, {}))
    return schema


def _value(
    schema: Mapping[str, Any], defs: Mapping[str, Any], words: list[str], seed: int, depth: int
) -> Any:
    schema = _resolve(schema, defs)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][seed % len(schema["enum"])]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            options = [o for o in schema[key] if _resolve(o, defs).get("type") != "null"]
            return _value((options or schema[key])[0], defs, words, seed, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {}) or {}
        return {
            name: _value(sub, defs, words, seed >> (i % 16) ^ i, depth + 1)
            for i, (name, sub) in enumerate(props.items())
        }
    if kind == "array":
        count = max(int(schema.get("minItems", 1)), 1)
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        if depth > 6:
            count = int(schema.get("minItems", 0))
        items = schema.get("items", {}) or {}
        return [_value(items, defs, words, seed + i, depth + 1) for i in range(count)]
    if kind == "integer":
        low = int(schema.get("minimum", 0))
        high = int(schema.get("maximum", low + 100))
        return low + seed % (high - low + 1)
    if kind == "number":
        lo = float(schema.get("minimum", 0.0))
        hi = float(schema.get("maximum", lo + 1.0))
        return round(lo + (seed % 1000) / 999 * (hi - lo), 3)
    if kind == "boolean":
        return bool(seed % 2)
    if kind == "null":
        return None
    fmt = schema.get("format")
    if fmt == "date":
        return f"2024-01-{1 + seed % 28:02d}"
    if fmt == "date-time":
        return f"2024-01-{1 + seed % 28:02d}T00:00:00Z"
    start = seed % len(words)
    text = " ".join(words[start : start + 3])
    if "maxLength" in schema:
        text = text[: int(schema["maxLength"])]
    if len(text) < int(schema.get("minLength", 0)):
        text = text.ljust(int(schema["minLength"]), "x")
    return text


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
