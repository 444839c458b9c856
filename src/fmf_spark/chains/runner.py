"""Run a chain on DataFrames: process the inputs, run each step through inference, export.

:func:`run_chain` is the whole pipeline of ``fmf run --chain``:

1. validate the chain completely (:func:`~fmf_spark.chains.plan.plan_chain`);
2. ``process`` the connector's files into the run's ``documents`` and ``chunks`` tables;
3. for each step in order, build its rows (:func:`~fmf_spark.chains.frames.step_frame`),
   call :func:`fmf_spark.inference.infer` once over them and append the result to the
   run's ``outputs`` Delta table; later steps read earlier steps' rows back from it;
4. export the outputs table to each ``outputs: - export: <sink>``;
5. write ``run.yaml`` and the MLflow run (also when a stage fails).

Each step's outputs are written before the next step starts, so the model is called
once per row (reading a lazily evaluated ``infer`` result twice would call twice), and
a failed run keeps what it produced. Metrics come from the tables the executors wrote,
not from estimates.

:func:`dry_run` builds the same rows without calling anything: the plan, calls per step
(the same row-building code as the real run, so the count is what a real run makes on
a clean pass), and estimated tokens and cost per step.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

# module level: pandas_udf resolves the string annotations in the module's globals
import pandas as pd

from fmf_spark.chains.frames import UPSTREAM_FAILED, step_frame, upstream_error_rows
from fmf_spark.chains.model import Chain
from fmf_spark.chains.plan import ChainPlan, StepPlan, effective_config, plan_chain
from fmf_spark.errors import ChainError, QuotaExhausted
from fmf_spark.observability.logging import get_logger
from fmf_spark.observability.progress import StageProgress
from fmf_spark.observability.run import (
    STATUS_FAILED,
    STATUS_SUCCEEDED,
    PromptUse,
    RunContext,
    join_uri,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from fmf_spark.config.models import FmfConfig
    from fmf_spark.config.secrets import SecretResolver
    from fmf_spark.prompts.registry import PromptRegistry

log = get_logger(__name__)

Emit = Callable[[str], None]


@dataclass
class StepSummary:
    """What one step did (or, in a dry run, would do)."""

    id: str
    scope: str
    prompt: str
    prompt_hash: str
    provider: str
    model: str | None
    rows: int = 0
    calls: int = 0
    cached: int = 0
    ok: int = 0
    failed: int = 0
    failures_by_code: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    retries: int = 0
    seconds: float = 0.0

    def metrics(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("id", "prompt", "prompt_hash", "provider", "model", "scope"):
            data.pop(key)
        return data


@dataclass
class ChainResult:
    """The outcome of :func:`run_chain` or :func:`dry_run`."""

    chain: str
    dry_run: bool
    documents: int
    documents_failed: int
    chunks: int
    steps: list[StepSummary]
    run_id: str | None = None
    run_dir: str | None = None
    run_yaml: str | None = None
    outputs_path: str | None = None
    exports: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    mlflow_run_id: str | None = None

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.steps)

    @property
    def failures(self) -> int:
        return sum(s.failed for s in self.steps)

    def totals(self) -> dict[str, Any]:
        """Run-level metrics (the ``metrics`` of ``run.yaml``, minus per-step detail)."""
        by_code: dict[str, int] = {}
        for step in self.steps:
            for code, n in step.failures_by_code.items():
                by_code[code] = by_code.get(code, 0) + n
        return {
            "documents": self.documents,
            "documents_failed": self.documents_failed,
            "chunks": self.chunks,
            "rows": sum(s.rows for s in self.steps),
            "calls": self.calls,
            "prompt_tokens": sum(s.prompt_tokens for s in self.steps),
            "completion_tokens": sum(s.completion_tokens for s in self.steps),
            "retries": sum(s.retries for s in self.steps),
            "failures": self.failures,
            "failures_by_code": by_code,
            "cost_usd": round(sum(s.cost_usd for s in self.steps), 8),
        }


def _summary(plan: StepPlan) -> StepSummary:
    return StepSummary(
        id=plan.id,
        scope=plan.scope,
        prompt=plan.prompt.ref,
        prompt_hash=plan.prompt.content_hash,
        provider=plan.provider,
        model=plan.model,
    )


def _inference_step(plan: StepPlan) -> Any:
    from fmf_spark.inference import InferenceStep

    return InferenceStep(
        step=plan.id,
        provider=plan.provider,
        prompt_id=plan.prompt.id,
        prompt_version=plan.prompt.version,
        prompt_hash=plan.prompt.content_hash,
        temperature=plan.temperature,
        max_tokens=plan.max_tokens,
        stop=plan.stop,
        response_schema=plan.prompt.response_schema,
        concurrency=plan.concurrency,
        repair_retry=plan.step.params.repair_retry,
    )


def summarize_outputs(outputs: DataFrame, summary: StepSummary) -> StepSummary:
    """Fill ``summary`` from a step's rows of the outputs table.

    Rows with the same ``request_id`` share one call (the inference runner calls each
    distinct request once), so calls, tokens, cost and retries are summed over distinct
    requests; ``rows``, ``ok`` and ``failed`` count rows. A request with ``attempts = 0``
    was answered from the cache (or never sent: an upstream failure).
    """
    from pyspark.sql import functions as F

    is_error = F.col("status") == "error"
    row = outputs.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(F.col("status") == "ok", 1).otherwise(0)).alias("ok"),
        F.sum(F.when(is_error, 1).otherwise(0)).alias("failed"),
    ).first()
    attempts = F.coalesce(F.col("attempts"), F.lit(0))
    skipped = F.coalesce(F.col("error.code") == UPSTREAM_FAILED, F.lit(False))
    requests = outputs.where(~skipped).dropDuplicates(["request_id"])
    called = attempts > 0
    req = requests.agg(
        F.sum(F.when(called, 1).otherwise(0)).alias("calls"),
        F.sum(F.when(~called, 1).otherwise(0)).alias("cached"),
        F.sum(F.when(called, F.coalesce(F.col("prompt_tokens"), F.lit(0)))).alias("p"),
        F.sum(F.when(called, F.coalesce(F.col("completion_tokens"), F.lit(0)))).alias("c"),
        F.sum(F.when(called, F.coalesce(F.col("cost_usd"), F.lit(0.0)))).alias("cost"),
        F.sum(F.greatest(attempts - 1, F.lit(0))).alias("retries"),
    ).first()
    if row is None or req is None:  # agg without groupBy always returns a row
        return summary
    summary.rows = int(row["rows"] or 0)
    summary.ok = int(row["ok"] or 0)
    summary.failed = int(row["failed"] or 0)
    summary.calls = int(req["calls"] or 0)
    summary.cached = int(req["cached"] or 0)
    summary.prompt_tokens = int(req["p"] or 0)
    summary.completion_tokens = int(req["c"] or 0)
    summary.cost_usd = round(float(req["cost"] or 0.0), 8)
    summary.retries = int(req["retries"] or 0)
    if summary.failed:
        codes = outputs.where(is_error).groupBy(F.col("error.code").alias("code")).count()
        summary.failures_by_code = {
            str(r["code"]): int(r["count"])
            for r in codes.collect()  # one row per error code
        }
    return summary


def _check_failures(plan: StepPlan, summary: StepSummary) -> None:
    if not summary.rows:
        return
    ratio = summary.failed / summary.rows
    limit = plan.step.failed_ratio_limit
    if ratio > limit:
        codes = ", ".join(f"{c}: {n}" for c, n in sorted(summary.failures_by_code.items()))
        raise ChainError(
            f"step '{plan.id}' failed on {summary.failed} of {summary.rows} rows "
            f"({ratio:.1%} > max_failed_ratio {limit:.1%}; {codes})",
            code="chain.step_failed",
            hint="its rows (with their errors) are in the run's outputs table; fix the cause "
            "and rerun (succeeded rows are not called again), or raise max_failed_ratio",
        )


def _document_counts(documents: DataFrame, chunks: DataFrame) -> tuple[int, int, int]:
    from pyspark.sql import functions as F

    row = documents.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.when(F.col("status") == "error", 1).otherwise(0)).alias("failed"),
    ).first()
    n_docs = int(row["n"] or 0) if row is not None else 0
    n_failed = int(row["failed"] or 0) if row is not None else 0
    return n_docs, n_failed, chunks.count()


def run_chain(
    spark: SparkSession,
    chain: Chain,
    config: FmfConfig,
    *,
    registry: PromptRegistry | None = None,
    artefacts_root: str | None = None,
    resolver: SecretResolver | None = None,
    emit: Emit | None = None,
) -> ChainResult:
    """Run ``chain`` end to end; see the module docstring.

    Args:
        spark: the session.
        chain: the loaded chain (:func:`~fmf_spark.chains.model.load_chain`).
        config: the merged config.
        registry: the prompt registry; default ``PromptRegistry(config.prompts.dir)``.
        artefacts_root: overrides ``config.artefacts.root``.
        resolver: secret resolver passed to connectors, inference and exporters.
        emit: where the stage summary lines go (``None``: only the log). Progress of
            long stages is shown as :func:`~fmf_spark.observability.progress.configure_progress` says.

    Returns:
        The :class:`ChainResult`, with ``run.yaml``'s location.

    Raises:
        ChainError: invalid chain (before any work), or a step over its failure ratio.
        FmfError: a stage failed; ``run.yaml`` and the MLflow run record the failure.
    """
    from fmf_spark.prompts.registry import PromptRegistry

    registry = registry or PromptRegistry(config.prompts.dir)
    plan = plan_chain(chain, config, registry)
    cfg = effective_config(config, chain)
    ctx = RunContext.start(
        cfg,
        chain.path,
        artefacts_root,
        chain_name=chain.name,
        chain_text=chain.text,
        resolve_secret=lambda ref: _secret_value(cfg, resolver, ref),
    )
    for step in plan.steps:
        ctx.record_prompt(
            PromptUse(
                step=step.id,
                id=step.prompt.id,
                version=step.prompt.version,
                hash=step.prompt.content_hash,
                registered=registry.is_registered(step.prompt),
                provider=step.provider,
                model=step.model,
                scope=step.scope,
            ),
            step.prompt,
        )
    result = ChainResult(chain.name, False, 0, 0, 0, [], run_id=ctx.run_id, run_dir=ctx.run_dir)
    try:
        _run(spark, plan, cfg, ctx, result, resolver, emit)
    except BaseException as exc:
        _record_metrics(ctx, result)
        result.run_yaml = ctx.finish(STATUS_FAILED, exc)
        raise
    _record_metrics(ctx, result)
    result.run_yaml = ctx.finish(STATUS_SUCCEEDED)
    result.timings = dict(ctx.timings)
    result.mlflow_run_id = ctx.mlflow.get("run_id")
    return result


def _secret_value(cfg: FmfConfig, resolver: SecretResolver | None, ref: Any) -> str:
    from fmf_spark.config.secrets import SecretResolver

    return (resolver or SecretResolver(cfg.secrets)).resolve(ref).get_secret_value()


def _record_metrics(ctx: RunContext, result: ChainResult) -> None:
    ctx.add_metrics(result.totals())
    ctx.add_metrics({"steps": {s.id: s.metrics() for s in result.steps}})


def _run(
    spark: SparkSession,
    plan: ChainPlan,
    cfg: FmfConfig,
    ctx: RunContext,
    result: ChainResult,
    resolver: SecretResolver | None,
    emit: Emit | None,
) -> None:
    from pyspark.sql import functions as F

    from fmf_spark.inference import infer
    from fmf_spark.processing import process
    from fmf_spark.simulator import ensure_simulator

    chain = plan.chain
    cfg = ensure_simulator(cfg)
    for planned in plan.steps:
        limits = cfg.inference.providers[planned.provider].rate_limit
        ctx.record_quota(
            planned.provider,
            model=planned.model,
            requests_per_minute=limits.requests_per_minute,
            tokens_per_minute=limits.tokens_per_minute,
            window_s=limits.window_s,
        )
    with ctx.stage("process"), StageProgress("process", spark=spark):
        process(
            spark, cfg, chain.inputs.connector, chain.inputs.select, ctx.run_dir, resolver=resolver
        )
    docs_path, chunks_path = join_uri(ctx.run_dir, "documents"), join_uri(ctx.run_dir, "chunks")
    outputs_path = join_uri(ctx.run_dir, "outputs")
    ctx.record_output("documents", docs_path)
    ctx.record_output("chunks", chunks_path)
    documents = spark.read.format("delta").load(docs_path)
    chunks = spark.read.format("delta").load(chunks_path)
    result.documents, result.documents_failed, result.chunks = _document_counts(documents, chunks)
    _say(
        emit,
        f"processed {result.documents} documents ({result.documents_failed} failed), "
        f"{result.chunks} chunks",
    )

    def outputs_of(step_id: str) -> DataFrame:
        table = spark.read.format("delta").load(outputs_path)
        return table.where(F.col("step") == step_id)

    requests_path = join_uri(ctx.run_dir, "requests")  # each call's timings (the report)
    # the request_id cache is shared by every run under the same artefacts root
    cache_path = cache_location(ctx.run_dir.rsplit("/", 1)[0]) if cfg.inference.cache else None
    for step in plan.steps:
        summary = _summary(step)
        result.steps.append(summary)
        with ctx.stage(f"step.{step.id}"), StageProgress(f"step {step.id}", spark=spark):
            frame = step_frame(step, documents, chunks, outputs_of)
            calls = frame.where(F.col("upstream_ok")).select("doc_id", "chunk_id", "messages")
            try:
                answered = infer(
                    calls,
                    _inference_step(step),
                    cfg,
                    cache_path=cache_path,
                    resolver=resolver,
                    requests_path=requests_path,
                )
            except QuotaExhausted as exc:
                # keep what was paid for: the partial answers go to the outputs and the
                # cache, so the rerun after the quota resets calls only the rest
                partial = getattr(exc, "partial", None)
                if partial is not None:
                    errors = upstream_error_rows(frame, step)
                    _save_step(partial.unionByName(errors), step.id, outputs_path, cache_path)
                    summarize_outputs(outputs_of(step.id), summary)
                raise
            errors = upstream_error_rows(frame, step)
            _save_step(answered.unionByName(errors), step.id, outputs_path, cache_path)
            ctx.record_output("outputs", outputs_path)
            ctx.record_output("requests", requests_path)
            summarize_outputs(outputs_of(step.id), summary)
        summary.seconds = round(ctx.timings[f"step.{step.id}"], 3)
        _say(
            emit, f"step {step.id}: {summary.calls} calls, {summary.ok} ok, {summary.failed} failed"
        )
        _check_failures(step, summary)
    result.outputs_path = outputs_path

    for output in chain.outputs:
        from fmf_spark.exporters import export_table

        ctx.export_started(output.export)
        with (
            ctx.stage(f"export.{output.export}"),
            StageProgress(f"export {output.export}", spark=spark),
        ):
            exported = export_table(
                spark,
                cfg,
                output.export,
                outputs_path,
                run_id=ctx.run_id,
                checkpoint_root=join_uri(ctx.run_dir, "_checkpoints"),
                resolver=resolver,
            )
        record = exported.as_dict()
        ctx.record_export(record)
        ctx.add_metrics(
            {"exports": {output.export: {k: v for k, v in record.items() if isinstance(v, int)}}}
        )
        result.exports.append(record)


def cache_location(artefacts_root: str) -> str:
    """The Delta table of answered requests shared by the runs under ``artefacts_root``."""
    return join_uri(artefacts_root, "_cache", "outputs")


def _save_step(rows: DataFrame, step_id: str, outputs_path: str, cache_path: str | None) -> None:
    """Append a step's rows to the run's outputs, and its new answers to the cache."""
    from pyspark.sql import functions as F

    rows.write.format("delta").mode("append").save(outputs_path)
    if cache_path is not None:
        # read back from the table just written (each step is written once per run), so
        # nothing upstream is evaluated again
        saved = rows.sparkSession.read.format("delta").load(outputs_path)
        fresh = saved.where(
            (F.col("step") == step_id) & (F.col("status") == "ok") & (F.col("attempts") > 0)
        )
        fresh.dropDuplicates(["request_id"]).write.format("delta").mode("append").save(cache_path)


def _say(emit: Emit | None, line: str) -> None:
    # the terminal gets the line once: from emit when there is one, else from the log
    if emit is not None:
        emit(line)
    else:
        log.info(line)


# --- dry run ------------------------------------------------------------------------------


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
    """
    from pyspark.sql import functions as F

    from fmf_spark.inference.cost import cost_usd
    from fmf_spark.inference.runner import request_prefix
    from fmf_spark.prompts.registry import PromptRegistry

    registry = registry or PromptRegistry(config.prompts.dir)
    plan = plan_chain(chain, config, registry)
    cfg = effective_config(config, chain)
    if documents is None or chunks is None:
        from fmf_spark.connectors import get_connector
        from fmf_spark.processing import chunk_documents, parse_documents

        files = get_connector(chain.inputs.connector, cfg, resolver).to_dataframe(
            spark, chain.inputs.select
        )
        documents = parse_documents(files, cfg.processing).persist()
        chunks = chunk_documents(documents, cfg.processing.chunking).persist()
    n_docs, n_failed, n_chunks = _document_counts(documents, chunks)
    result = ChainResult(chain.name, True, n_docs, n_failed, n_chunks, [])
    cache = None
    if cfg.inference.cache:
        cache = _read_cache(spark, cache_location(artefacts_root or cfg.artefacts.root))
    stand_ins: dict[str, DataFrame] = {}
    #: steps whose rows are known exactly: they read no step, or only exact steps whose
    #: every request is already in the cache (their stand-ins are the cached answers)
    exact: set[str] = set()
    persisted: list[DataFrame] = []
    estimate = _estimate_udf()
    for step in plan.steps:
        summary = _summary(step)
        frame = step_frame(step, documents, chunks, stand_ins.__getitem__)
        words = max(1, int(step.max_tokens * 0.75))  # ~0.75 English words per token
        prefix = request_prefix(_inference_step(step), step.model or "")
        rows = frame.where(F.col("upstream_ok")).select(
            "doc_id",
            "chunk_id",
            "messages",
            F.sha2(F.concat(F.lit(prefix), F.col("messages")), 256).alias("request_id"),
        )
        rows = rows.persist()
        persisted.append(rows)
        is_exact = all(ref.step in exact for ref, _ in step.refs if ref.step is not None)
        # exact rows: identical requests share one call, and cached ones make none
        requests = rows.dropDuplicates(["request_id"]) if is_exact else rows
        todo = requests
        if cache is not None and is_exact:
            todo = requests.join(cache.select("request_id"), "request_id", "left_anti")
        agg = todo.agg(
            F.count(F.lit(1)).alias("calls"),
            F.sum(estimate(F.col("messages"))).alias("p"),
        ).first()
        summary.rows = rows.count()
        summary.calls = int(agg["calls"] or 0) if agg else 0
        summary.cached = requests.count() - summary.calls
        summary.prompt_tokens = int(agg["p"] or 0) if agg else 0
        summary.completion_tokens = summary.calls * step.max_tokens
        if step.model:
            cost = cost_usd(step.model, summary.prompt_tokens, summary.completion_tokens, cfg)
            summary.cost_usd = round(cost or 0.0, 8)
        if is_exact and cache is not None and summary.calls == 0:
            exact.add(step.id)
            answers = cache.select("request_id", "output_text", "output_json")
            stand_ins[step.id] = rows.join(answers, "request_id").select(
                "doc_id",
                "chunk_id",
                F.lit(step.id).alias("step"),
                "output_text",
                "output_json",
                F.lit("ok").alias("status"),
            )
        else:  # answers still to come: later steps see stand-ins of max_tokens tokens
            stand_ins[step.id] = rows.select(
                "doc_id",
                "chunk_id",
                F.lit(step.id).alias("step"),
                F.lit(" ".join(["lorem"] * words)).alias("output_text"),
                F.lit(_placeholder_json(step.prompt.response_schema, words)).alias("output_json"),
                F.lit("ok").alias("status"),
            )
        result.steps.append(summary)
    for frame in persisted:
        frame.unpersist()
    return result


def _read_cache(spark: SparkSession, path: str) -> DataFrame | None:
    """The cached successful answers, one per ``request_id``; ``None`` without a cache."""
    from pyspark.sql import functions as F
    from pyspark.sql.utils import AnalysisException

    try:
        table = spark.read.format("delta").load(path)
        table.schema  # noqa: B018 - resolving the schema is what fails for a missing table
    except AnalysisException:
        return None
    ok = table.where(F.col("status") == "ok")
    return ok.select("request_id", "output_text", "output_json").dropDuplicates(["request_id"])
