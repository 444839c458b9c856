"""The chains layer: chain YAML, ``${...}`` interpolation, the runner on DataFrames.

- :func:`load_chain` / :class:`Chain`: the chain file format (:mod:`.model`).
- :func:`plan_chain`: validate a whole chain against the config and prompt registry.
- :func:`run_chain`: process, run every step through inference, export, record the run,
  with the connector, providers and sinks built by the composition root (:class:`RunParts`).
- :func:`dry_run`: the same plan without model calls (calls, tokens, cost per step).

Importing this package imports neither pyspark nor pandas (``fmf --help`` stays fast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fmf_spark.chains.model import Chain, ChainStep, load_chain

if TYPE_CHECKING:
    from fmf_spark.chains.dry_run import dry_run
    from fmf_spark.chains.plan import ChainPlan, plan_chain
    from fmf_spark.chains.runner import ChainResult, RunParts, run_chain

_LAZY = {
    "plan_chain": "fmf_spark.chains.plan",
    "ChainPlan": "fmf_spark.chains.plan",
    "run_chain": "fmf_spark.chains.runner",
    "dry_run": "fmf_spark.chains.dry_run",
    "ChainResult": "fmf_spark.chains.runner",
    "RunParts": "fmf_spark.chains.runner",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fmf_spark.chains' has no attribute {name!r}")


__all__ = [
    "Chain",
    "ChainPlan",
    "ChainResult",
    "ChainStep",
    "RunParts",
    "dry_run",
    "load_chain",
    "plan_chain",
    "run_chain",
]
