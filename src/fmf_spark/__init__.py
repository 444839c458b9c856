"""fmf_spark: the Frontier Model Framework for Spark.

Turns piles of enterprise documents into structured LLM outputs, as Spark batch jobs.
The layers, left to right: ``config`` -> ``connectors`` -> ``processing`` -> ``chains``
(calling ``inference`` with ``prompts``) -> ``exporters``; ``observability`` is used by all.
``cli`` wires them: it builds and prechecks the plug-ins a run needs (``cli.app``).
"""

from __future__ import annotations

#: the one place the version is written; pyproject.toml reads it from here
__version__ = "0.1.0"

__all__ = ["__version__"]
