"""Run a chain on DataFrames: process the inputs, run each step through inference, export.

:func:`run_chain` is the whole pipeline of ``fmf run --chain``, one step per method of
:class:`ChainRun`:

1. validate the chain completely (:func:`~fmf_spark.chains.plan.plan_chain`);
2. ``process`` the connector's files into the run's ``documents`` and ``chunks`` tables;
3. for each step in order, build its rows (:func:`~fmf_spark.chains.frames.step_frame`),
   call :func:`fmf_spark.inference.infer_step` once over them and append the result to
   the run's ``outputs`` Delta table; later steps read earlier steps' rows back from it;
   each step's call timings go to the ``requests`` table; after the last step
   (``commit``) the steps' new answers go to the request cache in one commit;
4. export the outputs table to each ``outputs: - export: <sink>``;
5. write ``run.yaml`` and the MLflow run (also when a stage fails).

The connector, providers and sinks come built and prechecked (:class:`RunParts`): the
composition root (:mod:`fmf_spark.cli.app`) makes them before any Spark job, starts the
local simulator when a provider says ``type: simulator``, and calls this module. This
layer starts nothing and imports no sink: a sink is anything with :meth:`Sink.export`.

Each step's outputs are written before the next step starts, so the model is called
once per row (reading a lazily evaluated ``infer`` result twice would call twice), and
a failed run keeps what it produced. Metrics come from the tables the executors wrote,
not from estimates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from fmf_spark.chains.frames import step_frame, upstream_error_rows
from fmf_spark.chains.model import Chain
from fmf_spark.chains.plan import ChainPlan, StepPlan, plan_chain
from fmf_spark.errors import ChainError
from fmf_spark.inference import InferenceStep, infer_step
from fmf_spark.inference.cache import cache_location
from fmf_spark.inference.metrics import OutputMetrics, output_metrics
from fmf_spark.inference.progress_store import fold_progress
from fmf_spark.inference.runner import request_prefix
from fmf_spark.observability.logging import get_logger
from fmf_spark.observability.progress import StageProgress
from fmf_spark.observability.run import (
    STATUS_FAILED,
    STATUS_SUCCEEDED,
    PromptUse,
    RunContext,
)
from fmf_spark.processing.pipeline import process
from fmf_spark.spark import side_by_side
from fmf_spark.storage import join_uri, parent_uri

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from fmf_spark.config.models import FmfConfig
    from fmf_spark.connectors.base import DataConnector
    from fmf_spark.inference.providers import ProviderRuntime
    from fmf_spark.prompts.registry import PromptRegistry

log = get_logger(__name__)

Emit = Callable[[str], None]


class ExportOutcome(Protocol):
    """What a sink reports after an export (``ExportResult``)."""

    def as_dict(self) -> dict[str, Any]: ...


class Sink(Protocol):
    """A sink built and prechecked by the composition root (``exporters.Sink``)."""

    name: str

    def export(
        self,
        spark: SparkSession,
        input_path: str,
        *,
        run_id: str,
        checkpoint_root: str | None = None,
    ) -> ExportOutcome: ...


@dataclass(frozen=True)
class RunParts:
    """The built, prechecked plug-ins one chain run uses.

    Attributes:
        connector: the chain's input connector.
        providers: the providers of its steps, by name.
        sinks: the sinks of its outputs, by name.
    """

    connector: DataConnector
    providers: Mapping[str, ProviderRuntime]
    sinks: Mapping[str, Sink]


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

    @classmethod
    def of(cls, plan: StepPlan) -> StepSummary:
        return cls(
            id=plan.id,
            scope=plan.scope,
            prompt=plan.prompt.ref,
            prompt_hash=plan.prompt.content_hash,
            provider=plan.provider,
            model=plan.model,
        )

    def count(self, metrics: OutputMetrics) -> None:
        """Take the step's counts from its rows of the outputs table."""
        for key, value in metrics.as_dict().items():
            setattr(self, key, value)

    def metrics(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("id", "prompt", "prompt_hash", "provider", "model", "scope"):
            data.pop(key)
        return data


@dataclass
class ChainResult:
    """The outcome of :func:`run_chain` or :func:`~fmf_spark.chains.dry_run.dry_run`."""

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


def inference_step(plan: StepPlan) -> InferenceStep:
    """The inference call of a validated step."""
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


def document_counts(documents: DataFrame, chunks: DataFrame) -> tuple[int, int, int]:
    """(documents, documents that failed, chunks)."""
    from pyspark.sql import functions as F

    row = documents.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.when(F.col("status") == "error", 1).otherwise(0)).alias("failed"),
    ).first()
    n_docs = int(row["n"] or 0) if row is not None else 0
    n_failed = int(row["failed"] or 0) if row is not None else 0
    return n_docs, n_failed, chunks.count()


class ChainRun:
    """One recorded run of a validated chain.

    Used as a context manager, it writes ``run.yaml`` and the MLflow run however the
    block ends: a failure (a precheck, a stage) is recorded, then raised again.

    Example:
        >>> with ChainRun(plan, registry) as run:  # doctest: +SKIP
        ...     run.execute(spark, parts, emit=print)
        >>> run.result.run_yaml  # doctest: +SKIP
    """

    def __init__(
        self,
        plan: ChainPlan,
        registry: PromptRegistry,
        artefacts_root: str | None = None,
        *,
        resolve_secret: Callable[[Any], str] | None = None,
    ) -> None:
        chain = plan.chain
        self.plan = plan
        self.config = plan.effective_config
        self.ctx = RunContext.start(
            self.config,
            chain.path,
            artefacts_root,
            chain_name=chain.name,
            chain_text=chain.text,
            resolve_secret=resolve_secret or self._resolve_secret,
        )
        for step in plan.steps:
            self.ctx.record_prompt(
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
        self.result = ChainResult(
            chain.name, False, 0, 0, 0, [], run_id=self.ctx.run_id, run_dir=self.ctx.run_dir
        )
        self.outputs_path = join_uri(self.ctx.run_dir, "outputs")
        # each call's timings (the run report's request timeline)
        self.requests_path = join_uri(self.ctx.run_dir, "requests")
        # the request cache is shared by every run under the same artefacts root
        self.cache_path = (
            cache_location(parent_uri(self.ctx.run_dir)) if self.config.inference.cache else None
        )
        # the steps that ran and their models, not yet folded into the cache (see commit)
        self._ran: list[tuple[StepPlan, str]] = []

    def _resolve_secret(self, ref: Any) -> str:
        """A secret's value from the config's own providers (the OTLP headers), when the
        caller gave no resolver."""
        from fmf_spark.config.secrets import SecretResolver

        return SecretResolver(self.config.secrets).resolve(ref).get_secret_value()

    def __enter__(self) -> ChainRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.ctx.add_metrics(self.result.totals())
        self.ctx.add_metrics({"steps": {s.id: s.metrics() for s in self.result.steps}})
        if exc is not None:
            self.result.run_yaml = self.ctx.finish(STATUS_FAILED, exc)
            return
        self.result.run_yaml = self.ctx.finish(STATUS_SUCCEEDED)
        self.result.timings = dict(self.ctx.timings)
        self.result.mlflow_run_id = self.ctx.mlflow.get("run_id")

    def execute(self, spark: SparkSession, parts: RunParts, emit: Emit | None = None) -> None:
        """Process the inputs, run every step, export: the stages of the run."""
        for step in self.plan.steps:
            self.record_quota(parts.providers[step.provider])
        documents, chunks = self.process(spark, parts.connector, emit)
        try:
            for step in self.plan.steps:
                self.run_step(spark, step, documents, chunks, parts.providers[step.provider], emit)
        except Exception:
            self.commit(spark, failed=True)  # keep what the steps that ran paid for
            raise
        self.result.outputs_path = self.outputs_path
        # the exports and the cache fold only read the outputs table: the fold runs beside
        # them (it has no progress display of its own to mix with theirs); an export's
        # failure is raised first, once the fold has ended
        side_by_side(lambda: self._export_all(spark, parts, emit), lambda: self.commit(spark))

    def _export_all(self, spark: SparkSession, parts: RunParts, emit: Emit | None) -> None:
        for output in self.plan.chain.outputs:
            self.export(spark, parts.sinks[output.export], emit)

    def record_quota(self, provider: ProviderRuntime) -> None:
        """Put a provider's rate limits on the run's record (the report's quota line)."""
        limits = provider.config.rate_limit
        self.ctx.record_quota(
            provider.name,
            model=provider.model,
            requests_per_minute=limits.requests_per_minute,
            tokens_per_minute=limits.tokens_per_minute,
            window_s=limits.window_s,
        )

    def process(
        self, spark: SparkSession, connector: DataConnector, emit: Emit | None
    ) -> tuple[DataFrame, DataFrame]:
        """Read, parse and chunk the inputs into the run's documents and chunks tables."""
        inputs, ctx = self.plan.chain.inputs, self.ctx
        with ctx.stage("process"), StageProgress("process", spark=spark):
            processed = process(
                spark,
                self.config,
                inputs.connector,
                inputs.select,
                ctx.run_dir,
                connector=connector,
                cache_path=join_uri(parent_uri(ctx.run_dir), "_cache", "processed")
                if self.config.processing.cache
                else None,
            )
        ctx.record_output("documents", processed.documents_path)
        ctx.record_output("chunks", processed.chunks_path)
        documents = spark.read.format("delta").load(processed.documents_path)
        chunks = spark.read.format("delta").load(processed.chunks_path)
        result = self.result
        # counted by process() from the tables it wrote
        result.documents, result.documents_failed, result.chunks = (
            processed.documents,
            processed.failed,
            processed.chunks,
        )
        _say(
            emit,
            f"processed {result.documents} documents ({result.documents_failed} failed), "
            f"{result.chunks} chunks",
        )
        return documents, chunks

    def _outputs_of(self, spark: SparkSession, step_id: str) -> DataFrame:
        from pyspark.sql import functions as F

        table = spark.read.format("delta").load(self.outputs_path)
        return table.where(F.col("step") == step_id)

    def run_step(
        self,
        spark: SparkSession,
        step: StepPlan,
        documents: DataFrame,
        chunks: DataFrame,
        provider: ProviderRuntime,
        emit: Emit | None,
    ) -> None:
        """One step: its rows, one inference call over them, saved to the outputs.

        Its call timings go to the ``requests`` table now; its new answers go to the
        cache with the other steps' (:meth:`commit`, after the last step).
        """
        from pyspark.sql import functions as F

        summary = StepSummary.of(step)
        self.result.steps.append(summary)
        stage = f"step.{step.id}"
        with self.ctx.stage(stage), StageProgress(f"step {step.id}", spark=spark):
            frame = step_frame(step, documents, chunks, lambda s: self._outputs_of(spark, s))
            calls = frame.where(F.col("upstream_ok")).select("doc_id", "chunk_id", "messages")
            upstream_failed = upstream_error_rows(frame, step)
            inferred = infer_step(
                calls,
                inference_step(step),
                self.config,
                cache_path=self.cache_path,
                provider=provider,
            )
            # the timings now: ``inferred`` is a local checkpoint, held by the executors
            # only as long as they live; the outputs are saved before an exhausted quota
            # is raised: the rerun after the quota resets calls only the rest. Two tables
            # from the same checkpoint: written side by side.
            side_by_side(
                lambda: inferred.save_requests(self.requests_path),
                lambda: self._save(inferred.outputs.unionByName(upstream_failed)),
            )
            self.ctx.record_output("requests", self.requests_path)
            self._ran.append((step, inferred.provider.model))
            self.ctx.record_output("outputs", self.outputs_path)
            counted = output_metrics(self._outputs_of(spark, step.id))
            summary.count(counted)
            inferred.raise_if_exhausted(counted)
        summary.seconds = round(self.ctx.timings[stage], 3)
        _say(
            emit, f"step {step.id}: {summary.calls} calls, {summary.ok} ok, {summary.failed} failed"
        )
        _check_failures(step, summary)

    def _save(self, rows: DataFrame) -> None:
        """Append a step's rows to the run's outputs."""
        rows.write.format("delta").mode("append").save(self.outputs_path)

    def commit(self, spark: SparkSession, *, failed: bool = False) -> None:
        """With the cache on, put the new answers of the steps that ran in the cache, in
        one commit: those of their saved outputs and those their tasks committed while
        they ran (and a killed earlier run left), whose progress files move there.

        After a failed step (``failed``) a failure here is logged, not raised: the
        step's own error is the one to report, and the progress files the fold did not
        move still serve the rerun as cache.
        """
        ran, self._ran = self._ran, []
        if not ran or self.cache_path is None:
            return
        try:
            with self.ctx.stage("commit"):
                self._fold_progress(spark, self.cache_path, ran)
        except Exception:
            if not failed:
                raise
            log.warning(
                "could not fold the answers of the steps that ran into the cache", exc_info=True
            )

    def _fold_progress(
        self, spark: SparkSession, cache_path: str, ran: list[tuple[StepPlan, str]]
    ) -> None:
        """:func:`~fmf_spark.inference.progress_store.fold_progress` for the steps that
        ran; their fresh answers are read back from the outputs table, so nothing
        upstream is evaluated again."""
        from pyspark.sql import functions as F

        saved = spark.read.format("delta").load(self.outputs_path)
        fresh = saved.where(
            F.col("step").isin([step.id for step, _ in ran])
            & (F.col("status") == "ok")
            & (F.col("attempts") > 0)
        )
        steps = {}
        for step, model in ran:
            call = inference_step(step)
            steps[request_prefix(call, model)] = {
                "step": step.id,
                "prompt_id": call.prompt_id,
                "prompt_version": call.prompt_version,
                "prompt_hash": call.prompt_hash,
                "model": model,
            }
        fold_progress(spark, cache_path, steps, fresh=fresh)

    def export(self, spark: SparkSession, sink: Sink, emit: Emit | None) -> None:
        """Export the outputs table to one sink; record its counts."""
        ctx = self.ctx
        ctx.export_started(sink.name)  # on record before it starts: pruning keeps the run
        with (
            ctx.stage(f"export.{sink.name}"),
            StageProgress(f"export {sink.name}", spark=spark),
        ):
            exported = sink.export(
                spark,
                self.outputs_path,
                run_id=ctx.run_id,
                checkpoint_root=join_uri(ctx.run_dir, "_checkpoints"),
            )
        record = exported.as_dict()
        ctx.record_export(record)
        counts = {k: v for k, v in record.items() if isinstance(v, int)}
        ctx.add_metrics({"exports": {sink.name: counts}})
        self.result.exports.append(record)


def run_chain(
    spark: SparkSession,
    chain: Chain,
    config: FmfConfig,
    parts: RunParts,
    *,
    registry: PromptRegistry | None = None,
    artefacts_root: str | None = None,
    emit: Emit | None = None,
) -> ChainResult:
    """Run ``chain`` end to end with plug-ins already built; see the module docstring.

    The composition root's :func:`fmf_spark.cli.app.run_chain` builds and prechecks the
    parts (and starts the simulator) inside the recorded run, then calls
    :meth:`ChainRun.execute`; call this one when you built the parts yourself.

    Args:
        spark: the session.
        chain: the loaded chain (:func:`~fmf_spark.chains.model.load_chain`).
        config: the merged config.
        parts: the connector, providers and sinks the chain names, built and prechecked.
        registry: the prompt registry; default ``PromptRegistry(config.prompts.dir)``.
        artefacts_root: overrides ``config.artefacts.root``.
        emit: where the stage summary lines go (``None``: only the log). Progress of
            long stages is shown as
            :func:`~fmf_spark.observability.progress.configure_progress` says.

    Returns:
        The :class:`ChainResult`, with ``run.yaml``'s location.

    Raises:
        ChainError: invalid chain (before any work), or a step over its failure ratio.
        FmfError: a stage failed; ``run.yaml`` and the MLflow run record the failure.
    """
    from fmf_spark.prompts.registry import PromptRegistry

    registry = registry or PromptRegistry(config.prompts.dir)
    plan = plan_chain(chain, config, registry)
    with ChainRun(plan, registry, artefacts_root) as run:
        run.execute(spark, parts, emit)
    return run.result


def _say(emit: Emit | None, line: str) -> None:
    # the terminal gets the line once: from emit when there is one, else from the log
    if emit is not None:
        emit(line)
    else:
        log.info(line)
