"""The prompts layer: the versioned YAML prompt registry.

- :class:`PromptRegistry`: load and validate ``prompts/*.yaml``, resolve ``id#version``
  and ``id@latest``, register versions (immutable once registered, by content hash).
- :class:`PromptRef`, :class:`PromptVersion`: a reference and a resolved version.
- :mod:`.testing`: check a prompt test's expectations; mirroring versions into MLflow's
  prompt registry is :mod:`fmf_spark.observability.mlflow_prompts`.
"""

from __future__ import annotations

from fmf_spark.prompts.model import PromptVersion, content_hash
from fmf_spark.prompts.registry import PromptRef, PromptRegistry

__all__ = ["PromptRef", "PromptRegistry", "PromptVersion", "content_hash"]
