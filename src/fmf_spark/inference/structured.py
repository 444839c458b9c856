"""Structured output: parse the model's JSON and validate it against the requested schema."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from fmf_spark._deps import require
from fmf_spark.errors import InvalidOutput

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)

REPAIR_INSTRUCTION = (
    "Your previous answer was not valid JSON for the required schema ({error}). "
    "Answer again with only the JSON object, no other text."
)


def parse_structured(text: str, schema: Mapping[str, Any]) -> Any:
    """Parse ``text`` as JSON and validate it against ``schema``.

    A Markdown code fence around the JSON is accepted (models add one often).

    Raises:
        InvalidOutput: not JSON, or not valid for the schema; the message says where.
    """
    match = _FENCE.match(text or "")
    candidate = match.group(1) if match else (text or "")
    try:
        value = json.loads(candidate)
    except json.JSONDecodeError as exc:
        raise InvalidOutput(f"the answer is not JSON: {exc.msg} at char {exc.pos}") from None
    jsonschema = require("jsonschema", extra="openai")
    validator_cls = jsonschema.validators.validator_for(schema)
    error = jsonschema.exceptions.best_match(validator_cls(schema).iter_errors(value))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise InvalidOutput(f"the answer does not match the schema at {where}: {error.message}")
    return value
