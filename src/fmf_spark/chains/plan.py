"""Validate a whole chain against the config and the prompt registry, before any Spark work.

:func:`plan_chain` resolves every prompt reference, checks that each step provides
exactly the variables its prompt declares, that every ``${...}`` reference is valid in
the step's scope and points at an earlier step (and at a declared JSON field), that the
connector, providers and sinks exist, and that the chain's ``processing`` overrides are
valid. All problems are reported together, one per line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from fmf_spark.chains.interpolation import (
    Part,
    Ref,
    check_json_path,
    parse_input,
    refs_of,
    resolve_mode,
)
from fmf_spark.chains.model import Chain, ChainStep
from fmf_spark.errors import ChainError, FmfError

if TYPE_CHECKING:
    from fmf_spark.config.models import FmfConfig
    from fmf_spark.prompts.model import PromptVersion
    from fmf_spark.prompts.registry import PromptRegistry


#: completion cap when neither the step nor the prompt sets one (the inference default)
DEFAULT_MAX_TOKENS = 1024


@dataclass
class StepPlan:
    """A validated step: its prompt, parameters and parsed inputs."""

    step: ChainStep
    prompt: PromptVersion
    provider: str
    model: str | None
    temperature: float | None
    max_tokens: int
    stop: list[str] | None
    concurrency: int | None
    inputs: dict[str, list[Part]]
    #: every distinct reference with how it is evaluated in this step's scope
    refs: list[tuple[Ref, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.step.id

    @property
    def scope(self) -> str:
        return self.step.scope


@dataclass
class ChainPlan:
    """A validated chain: its steps, and the config it runs with.

    Attributes:
        chain: the chain.
        config: the config it was validated against.
        steps: the validated steps, in order.
        effective_config: ``config`` with the chain's ``processing`` overrides merged in.
    """

    chain: Chain
    config: FmfConfig
    steps: list[StepPlan]
    effective_config: FmfConfig

    def step(self, step_id: str) -> StepPlan:
        for plan in self.steps:
            if plan.id == step_id:
                return plan
        raise KeyError(step_id)


def provider_model(config: FmfConfig, provider: str) -> str | None:
    """The model name a provider calls (for prices and lineage), as the provider says."""
    spec = config.inference.providers.get(provider)
    return None if spec is None else spec.model_name()


def effective_config(config: FmfConfig, chain: Chain) -> FmfConfig:
    """The config with the chain's ``processing`` overrides merged in and validated."""
    if not chain.processing:
        return config
    from fmf_spark.config.loader import deep_merge
    from fmf_spark.config.processing import ProcessingConfig

    merged = deep_merge(config.processing.model_dump(), chain.processing)
    try:
        processing = ProcessingConfig.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"processing.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors()
        )
        raise ChainError(f"chain {chain.name}: {problems}") from None
    return config.model_copy(update={"processing": processing})


def plan_chain(chain: Chain, config: FmfConfig, registry: PromptRegistry) -> ChainPlan:
    """Validate ``chain`` completely and return its plan.

    Raises:
        ChainError: every problem found, one per line.
    """
    problems: list[str] = []
    if chain.inputs.connector not in config.connectors:
        problems.append(
            f"inputs.connector '{chain.inputs.connector}' is not in the config's connectors "
            f"({', '.join(sorted(config.connectors)) or 'none'})"
        )
    effective = config
    try:
        effective = effective_config(config, chain)
    except ChainError as exc:
        problems.append(exc.message)
    for i, output in enumerate(chain.outputs):
        if output.export not in config.exporters:
            problems.append(
                f"outputs[{i}].export '{output.export}' is not in the config's exporters "
                f"({', '.join(sorted(config.exporters)) or 'none'})"
            )
    plans: list[StepPlan] = []
    scopes: dict[str, str] = {}
    prompts: dict[str, PromptVersion] = {}
    for step in chain.steps:
        try:
            plan = _plan_step(step, config, registry, scopes, prompts)
        except FmfError as exc:
            problems.append(
                f"step '{step.id}': {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
            )
        else:
            plans.append(plan)
            prompts[step.id] = plan.prompt
        scopes[step.id] = step.scope  # later steps may still refer to it
    if problems:
        where = chain.path or chain.name
        raise ChainError(
            f"chain {where} is invalid:\n  - " + "\n  - ".join(problems),
            hint="fix the chain file; nothing was run",
        )
    return ChainPlan(chain, config, plans, effective)


def _plan_step(
    step: ChainStep,
    config: FmfConfig,
    registry: PromptRegistry,
    earlier_scopes: dict[str, str],
    earlier_prompts: dict[str, PromptVersion],
) -> StepPlan:
    prompt = registry.get(step.prompt)
    declared = prompt.variables
    missing = [v for v in declared if v not in step.inputs]
    if missing:
        raise ChainError(
            f"prompt {prompt.ref} needs variable(s) {', '.join(missing)}; the step provides "
            f"{', '.join(step.inputs) or 'none'}",
            hint="add them under the step's inputs",
        )
    extra = [v for v in step.inputs if v not in declared]
    if extra:
        raise ChainError(
            f"input(s) {', '.join(extra)} are not variables of prompt {prompt.ref} "
            f"(variables: {', '.join(declared) or 'none'})"
        )
    provider = step.params.provider or config.inference.default_provider
    if provider is None or provider not in config.inference.providers:
        raise ChainError(
            f"provider '{provider}' is not in inference.providers "
            f"({', '.join(sorted(config.inference.providers)) or 'none'})"
        )
    inputs = {name: parse_input(text) for name, text in step.inputs.items()}
    refs: list[tuple[Ref, str]] = []
    seen: set[Ref] = set()
    for parts in inputs.values():
        for ref in refs_of(parts):
            if ref in seen:
                continue
            seen.add(ref)
            source_scope = None
            if ref.step is not None:
                if ref.step == step.id:
                    raise ChainError(f"{ref.text} refers to the step itself")
                if ref.step not in earlier_scopes:
                    raise ChainError(
                        f"{ref.text} refers to '{ref.step}', which is not an earlier step",
                        hint="steps run in file order; move the referenced step before this one",
                    )
                if ref.step not in earlier_prompts:
                    raise ChainError(f"{ref.text} refers to step '{ref.step}', which is invalid")
                source_scope = earlier_scopes[ref.step]
                source = earlier_prompts[ref.step]
                check_json_path(ref, source.response_schema, source.ref)
            refs.append((ref, resolve_mode(ref, step.scope, source_scope)))
    return StepPlan(
        step=step,
        prompt=prompt,
        provider=provider,
        model=provider_model(config, provider),
        temperature=_first(step.params.temperature, prompt.params.temperature),
        max_tokens=_first(step.params.max_tokens, prompt.params.max_tokens, DEFAULT_MAX_TOKENS),
        stop=_first(step.params.stop, prompt.params.stop),
        concurrency=step.params.concurrency,
        inputs=inputs,
        refs=refs,
    )


def _first(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None
