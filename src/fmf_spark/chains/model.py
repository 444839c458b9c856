"""The chain file format (``chains/*.yaml``).

Example (``chains/sample.yaml``)::

    name: sample
    inputs: {connector: samples, select: "**/*"}
    processing: {chunking: {strategy: markdown, max_tokens: 256}}
    steps:
      - id: summarize
        prompt: summarize_chunk#1
        scope: chunk
        inputs: {path: "${doc.path}", text: "${chunk.text}"}
      - id: brief
        prompt: doc_brief@latest
        scope: document
        inputs: {path: "${doc.path}", summaries: "${steps.summarize.output_json.summary}"}
      - id: digest
        prompt: corpus_digest#1
        scope: all
        inputs: {briefs: "${all.brief.output_text}"}
    outputs:
      - export: outputs_delta

``processing`` is merged over the config's ``processing`` section and validated by the
same model, so a chain can change the chunking without a new config file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from fmf_spark.config.base import StrictModel
from fmf_spark.errors import ChainError, FmfError

if TYPE_CHECKING:
    from fmf_spark.config.models import FmfConfig

STEP_ID = r"^[A-Za-z][A-Za-z0-9_]{0,62}$"
Scope = Literal["chunk", "document", "all"]


class ChainInputs(StrictModel):
    connector: str = Field(description="A key of `connectors` in the config.")
    select: str | None = Field(default=None, description="Glob under the connector's root.")


class StepParams(StrictModel):
    """Per-step overrides of the prompt's parameters and of the provider."""

    provider: str | None = Field(default=None, description="A key of `inference.providers`.")
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    stop: list[str] | None = None
    concurrency: int | None = Field(default=None, ge=1, description="Concurrent calls per task.")
    repair_retry: bool = Field(default=False, description="One retry when the JSON is invalid.")


class ChainStep(StrictModel):
    id: str
    prompt: str = Field(description="`id#version` or `id@latest`.")
    scope: Scope = "chunk"
    inputs: dict[str, str] = Field(
        default_factory=dict, description="Prompt variable -> text with ${...} references."
    )
    params: StepParams = Field(default_factory=StepParams)
    on_error: Literal["continue", "fail"] = Field(
        default="continue",
        description="continue: failed rows are carried as error rows; fail: stop the chain.",
    )
    max_failed_ratio: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Stop the chain when more rows than this fail (default: 1 for continue, "
        "0 for fail).",
    )
    separator: str = Field(
        default="\n\n", description="Joins gathered values (document/all scope)."
    )

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not re.match(STEP_ID, value):
            raise ValueError(f"step id '{value}' must match {STEP_ID}")
        return value

    @property
    def failed_ratio_limit(self) -> float:
        if self.max_failed_ratio is not None:
            return self.max_failed_ratio
        return 0.0 if self.on_error == "fail" else 1.0


class ChainOutput(StrictModel):
    export: str = Field(description="A key of `exporters` in the config.")


class Chain(StrictModel):
    """A validated chain file. Load it with :func:`load_chain`."""

    name: str
    description: str | None = None
    inputs: ChainInputs
    processing: dict[str, Any] = Field(default_factory=dict)
    steps: list[ChainStep] = Field(min_length=1)
    outputs: list[ChainOutput] = Field(default_factory=list)
    path: str | None = Field(default=None, exclude=True, description="Set by load_chain.")
    text: str | None = Field(
        default=None, exclude=True, repr=False, description="Set by load_chain."
    )

    @model_validator(mode="after")
    def _unique_steps(self) -> Chain:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id '{step.id}' is used twice")
            seen.add(step.id)
        return self

    def step(self, step_id: str) -> ChainStep:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)


def find_chain(name: str, config: FmfConfig) -> str:
    """Where the chain file ``name`` (as typed: ``--chain``) is.

    An absolute path or URI is taken as it is, and so is a relative path that exists in
    the working directory; otherwise ``name`` is looked up in ``chains.dir``, then
    relative to the config's ``base_dir``, so ``--chain sample.yaml`` and
    ``--chain chains/sample.yaml`` work from any folder. When none exists, ``name`` is
    returned and :func:`load_chain` says it cannot be read.

    Example:
        >>> find_chain("sample.yaml", config)  # doctest: +SKIP
        '/repo/chains/sample.yaml'
    """
    from fmf_spark.storage import exists, is_relative, resolve_location

    if not is_relative(name) or os.path.exists(name):
        return name
    for base in (config.chains.dir, config.base_dir):
        if base:
            candidate = resolve_location(base, name)
            try:
                if exists(candidate):
                    return candidate
            except FmfError:  # not allowed to look there: the name as given fails clearly
                continue
    return name


def load_chain(path: str | Path) -> Chain:
    """Read and validate the structure of a chain file (local, ``/dbfs``, ``/Volumes``,
    ``dbfs:/`` or ``s3://``).

    References, prompts, connectors and sinks are checked by
    :func:`fmf_spark.chains.plan.plan_chain`, which needs the config and the registry.

    Raises:
        ChainError: unreadable file or a field that does not match the format.
    """
    from fmf_spark.storage import read_text

    try:
        text = read_text(str(path))
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError, FmfError) as exc:
        raise ChainError(f"cannot read chain file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ChainError(f"chain file {path} must be a mapping (name, inputs, steps, outputs)")
    try:
        chain = Chain.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ChainError(f"invalid chain file {path}: {problems}") from None
    chain.path = str(path)
    chain.text = text
    return chain
