"""The prompt file format and the content hash that identifies a version.

A prompt file (``prompts/<id>.yaml``) holds one prompt id and its versions::

    id: summarize_chunk
    description: One-paragraph summary of a chunk, as JSON.
    versions:
      "1":
        variables: [text, title]
        messages:
          - {role: system, content: "You summarise enterprise documents."}
          - {role: user, content: "Title: {{ title }}\\n\\n{{ text }}"}
        params: {temperature: 0.0, max_tokens: 200}
        response_schema: {type: object, properties: {summary: {type: string}}, required: [summary]}
        tests:
          - name: short text
            inputs: {text: "Revenue grew 4%.", title: "Q3"}
            expect: {json_keys: [summary]}

The content hash is the sha256 of the canonical JSON of the messages, the parameters
and the response schema: what the model sees and how it is asked. Descriptions and
tests are not part of it, so fixing a test does not make a new version.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from fmf_spark.config.base import StrictModel
from fmf_spark.prompts.template import variables_of

ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$"
_ID_RE = re.compile(ID_PATTERN)
_VERSION_RE = re.compile(VERSION_PATTERN)


class PromptMessage(StrictModel):
    role: Literal["system", "user", "assistant"]
    content: str = Field(description="Template text with {{ variable }} placeholders.")


class PromptParams(StrictModel):
    """Model parameters of a version; a chain step may override them."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    stop: list[str] | None = None


class PromptExpectation(StrictModel):
    """What a prompt test checks in the answer (every given check must hold)."""

    status: Literal["ok", "error"] = "ok"
    json_keys: list[str] = Field(default_factory=list, description="Keys of the JSON answer.")
    contains: list[str] = Field(default_factory=list, description="Substrings of the answer.")
    not_contains: list[str] = Field(default_factory=list)
    error_code: str | None = Field(default=None, description="With status: error.")


class PromptTest(StrictModel):
    name: str | None = None
    inputs: dict[str, str] = Field(default_factory=dict)
    expect: PromptExpectation = Field(default_factory=PromptExpectation)


class PromptVersionSpec(StrictModel):
    """One version as written in the file."""

    variables: list[str] = Field(default_factory=list, description="Declared input variables.")
    messages: list[PromptMessage] = Field(min_length=1)
    params: PromptParams = Field(default_factory=PromptParams)
    response_schema: dict[str, Any] | None = Field(
        default=None, description="JSON schema of the answer; the model is asked for JSON."
    )
    tests: list[PromptTest] = Field(default_factory=list)
    description: str | None = None


class PromptFile(StrictModel):
    id: str
    description: str | None = None
    versions: dict[str, PromptVersionSpec] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError(f"prompt id '{value}' must match {ID_PATTERN}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _versions_as_strings(cls, data: Any) -> Any:
        # YAML reads `1:` as an int key; versions are labels, so keep them as text
        if isinstance(data, dict) and isinstance(data.get("versions"), dict):
            data = {**data, "versions": {str(k): v for k, v in data["versions"].items()}}
        return data

    @field_validator("versions")
    @classmethod
    def _check_versions(cls, value: dict[str, PromptVersionSpec]) -> dict[str, PromptVersionSpec]:
        for label in value:
            if not _VERSION_RE.match(label):
                raise ValueError(f"version label '{label}' must match {VERSION_PATTERN}")
        return value


class PromptVersion:
    """A resolved, validated prompt version: what a chain step runs.

    Attributes:
        id: prompt id.
        version: version label.
        spec: the version as written in the file.
        source: the file it came from.
    """

    def __init__(self, prompt_id: str, version: str, spec: PromptVersionSpec, source: str) -> None:
        self.id = prompt_id
        self.version = version
        self.spec = spec
        self.source = source
        self.content_hash = content_hash(spec)

    @property
    def ref(self) -> str:
        """``id#version``."""
        return f"{self.id}#{self.version}"

    @property
    def variables(self) -> list[str]:
        return list(self.spec.variables)

    @property
    def messages(self) -> list[PromptMessage]:
        return list(self.spec.messages)

    @property
    def params(self) -> PromptParams:
        return self.spec.params

    @property
    def response_schema(self) -> dict[str, Any] | None:
        return self.spec.response_schema

    def used_variables(self) -> list[str]:
        """Variables the templates use, in order of first use."""
        seen: dict[str, None] = {}
        for message in self.spec.messages:
            for name in variables_of(message.content):
                seen.setdefault(name, None)
        return list(seen)

    def __repr__(self) -> str:
        return f"PromptVersion({self.ref}, hash={self.content_hash[:12]})"


def canonical_content(spec: PromptVersionSpec) -> dict[str, Any]:
    """The hashed content of a version: messages, non-default parameters, schema."""
    return {
        "messages": [m.model_dump() for m in spec.messages],
        "params": spec.params.model_dump(exclude_none=True),
        "response_schema": spec.response_schema,
    }


def content_hash(spec: PromptVersionSpec) -> str:
    """sha256 (hex) of the canonical JSON of :func:`canonical_content`.

    Canonical: sorted keys, no whitespace, UTF-8, so the same content hashes the same
    whatever the YAML's key order, quoting or comments.
    """
    text = json.dumps(
        canonical_content(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
