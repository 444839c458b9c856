"""The dry run of a chain: the plan, calls per step, estimated tokens and cost; no call.

:func:`dry_run` builds each step's rows with the same code as the real run
(:func:`~fmf_spark.chains.frames.step_frame`), so the count of calls is what a real run
makes on a clean pass, and estimates tokens the way the limiter charges them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# module level: pandas_udf resolves the string annotations in the module's globals
import pandas as pd

from fmf_spark.chains.frames import step_frame
from fmf_spark.chains.model import Chain
from fmf_spark.chains.plan import StepPlan, plan_chain
from fmf_spark.chains.runner import ChainResult, StepSummary, document_counts, inference_step
from fmf_spark.inference.cache import cache_location, read_cache
from fmf_spark.inference.cost import cost_usd
from fmf_spark.inference.progress_store import with_progress
from fmf_spark.inference.runner import request_prefix, step_progress

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from fmf_spark.config.models import FmfConfig
    from fmf_spark.config.secrets import SecretResolver
    from fmf_spark.connectors.base import DataConnector
    from fmf_spark.prompts.registry import PromptRegistry


def _estimate_udf() -> Any:
    """A pandas UDF: the prompt tokens the provider will charge for ``messages``."""
    from pyspark.sql import functions as F

    @F.pandas_udf("long")  # type: ignore[call-overload]
    def estimate(messages: pd.Series) -> pd.Series:
        from fmf_spark.inference.tokens import estimate_prompt_tokens

        return messages.map(lambda m: estimate_prompt_tokens(m or "[]"))

    return estimate


def _placeholder_json(schema: dict[str, Any] | None, words: int) -> str | None:
    """A stand-in answer with every top-level field, so later steps' sizes are estimated."""
    if schema is None:
        return None
    props = list((schema.get("properties") or {}).keys())
    if not props:
        return "{}"
    per = max(1, words // len(props))
    return json.dumps({p: " ".join(["lorem"] * per) for p in props})


@dataclass
class _Planner:
    """Steps in order: each step's requests, and the stand-ins later steps read."""

    config: FmfConfig
    cache: DataFrame | None
    #: the request cache's location: each step also counts the answers its progress
    #: files hold (a killed run's), as the real run reads them (None: cache off)
    cache_path: str | None
    estimate: Any
    #: per step: the rows later steps read in place of its outputs
    stand_ins: dict[str, DataFrame]
    #: steps whose rows are known exactly: they read no step, or only exact steps whose
    #: every request is already in the cache (their stand-ins are the cached answers)
    exact: set[str]
    persisted: list[DataFrame]

    def step(self, step: StepPlan, documents: DataFrame, chunks: DataFrame) -> StepSummary:
        from pyspark.sql import functions as F

        summary = StepSummary.of(step)
        frame = step_frame(step, documents, chunks, self.stand_ins.__getitem__)
        prefix = request_prefix(inference_step(step), step.model or "")
        rows = frame.where(F.col("upstream_ok")).select(
            "doc_id",
            "chunk_id",
            "messages",
            F.sha2(F.concat(F.lit(prefix), F.col("messages")), 256).alias("request_id"),
        )
        rows = rows.persist()
        self.persisted.append(rows)
        cache = self._cache_of(rows.sparkSession, prefix)
        is_exact = all(ref.step in self.exact for ref, _ in step.refs if ref.step is not None)
        # exact rows: identical requests share one call, and cached ones make none
        requests = rows.dropDuplicates(["request_id"]) if is_exact else rows
        todo = requests
        if cache is not None and is_exact:
            todo = requests.join(cache.select("request_id"), "request_id", "left_anti")
        agg = todo.agg(
            F.count(F.lit(1)).alias("calls"),
            F.sum(self.estimate(F.col("messages"))).alias("p"),
        ).first()
        summary.rows = rows.count()
        summary.calls = int(agg["calls"] or 0) if agg else 0
        summary.cached = requests.count() - summary.calls
        summary.prompt_tokens = int(agg["p"] or 0) if agg else 0
        summary.completion_tokens = summary.calls * step.max_tokens
        if step.model:
            cost = cost_usd(
                step.model, summary.prompt_tokens, summary.completion_tokens, self.config
            )
            summary.cost_usd = round(cost or 0.0, 8)
        if is_exact and cache is not None and summary.calls == 0:
            self.exact.add(step.id)
        self.stand_ins[step.id] = self._stand_in(step, rows, cache)
        return summary

    def _cache_of(self, spark: SparkSession, prefix: str) -> DataFrame | None:
        """The step's cache as the real run reads it: the Delta cache plus the answers
        its progress files hold (``fold_progress`` has not moved them yet)."""
        return with_progress(spark, self.cache, step_progress(self.cache_path, prefix, self.config))

    def _stand_in(self, step: StepPlan, rows: DataFrame, cache: DataFrame | None) -> DataFrame:
        """What later steps read: the cached answers when known, else placeholders of
        ``max_tokens`` tokens."""
        from pyspark.sql import functions as F

        if step.id in self.exact and cache is not None:
            answers = cache.select("request_id", "output_text", "output_json")
            return rows.join(answers, "request_id").select(
                "doc_id",
                "chunk_id",
                F.lit(step.id).alias("step"),
                "output_text",
                "output_json",
                F.lit("ok").alias("status"),
            )
        words = max(1, int(step.max_tokens * 0.75))  # ~0.75 English words per token
        return rows.select(
            "doc_id",
            "chunk_id",
            F.lit(step.id).alias("step"),
            F.lit(" ".join(["lorem"] * words)).alias("output_text"),
            F.lit(_placeholder_json(step.prompt.response_schema, words)).alias("output_json"),
            F.lit("ok").alias("status"),
        )


def dry_run(
    spark: SparkSession,
    chain: Chain,
    config: FmfConfig,
    *,
    registry: PromptRegistry | None = None,
    resolver: SecretResolver | None = None,
    artefacts_root: str | None = None,
    documents: DataFrame | None = None,
    chunks: DataFrame | None = None,
    connector: DataConnector | None = None,
) -> ChainResult:
    """Plan ``chain`` without calling any model: calls, tokens and cost per step.

    The connector is listed and the documents parsed and chunked (no model call, nothing
    written), unless ``documents`` and ``chunks`` are given. Each step's rows are built by
    the same code as the real run. A step's requests are exact when it reads no earlier
    step, or only earlier steps whose every request is already in the cache (their cached
    answers then feed it, as in the real run): distinct ``request_id`` values (computed
    as the inference runner does) minus those in the cache. A step that reads answers
    still to come sees stand-ins of ``max_tokens`` tokens: it counts one request per row
    and its prompt tokens are an upper estimate. Completion tokens are ``max_tokens`` per
    call, the most a call can cost.

    Args:
        connector: the chain's connector, built and prechecked by the caller; else
            built here (with ``resolver``).
    """
    from fmf_spark.prompts.registry import PromptRegistry

    registry = registry or PromptRegistry(config.prompts.dir)
    plan = plan_chain(chain, config, registry)
    cfg = plan.effective_config
    if documents is None or chunks is None:
        from fmf_spark.connectors import get_connector
        from fmf_spark.processing import chunk_documents, parse_documents

        connector = connector or get_connector(chain.inputs.connector, cfg, resolver)
        files = connector.to_dataframe(spark, chain.inputs.select)
        documents = parse_documents(files, cfg.processing, cfg.plugins).persist()
        chunks = chunk_documents(documents, cfg.processing.chunking).persist()
    n_docs, n_failed, n_chunks = document_counts(documents, chunks)
    result = ChainResult(chain.name, True, n_docs, n_failed, n_chunks, [])
    cache = cache_path = None
    if cfg.inference.cache:
        cache_path = cache_location(artefacts_root or cfg.artefacts.root)
        cache = read_cache(spark, cache_path)
    planner = _Planner(cfg, cache, cache_path, _estimate_udf(), {}, set(), [])
    for step in plan.steps:
        result.steps.append(planner.step(step, documents, chunks))
    for frame in planner.persisted:
        frame.unpersist()
    return result
