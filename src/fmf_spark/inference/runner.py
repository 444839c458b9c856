"""The batch runner: ``infer(df, step, config)`` calls a model once per distinct request.

The flow of :func:`infer`:

1. ``request_id`` = sha256 of ``prompt_hash``, model, generation parameters and the
   ``messages`` JSON (computed by Spark's ``sha2``; :func:`request_id` is the same in
   Python). It is the idempotency key: identical requests in one run are called once and
   share the answer, and with ``cache_path`` rows whose request already succeeded in an
   earlier run are answered from that Delta table without a call (failed ones are called
   again).
2. The remaining distinct requests are spread over ``inference.tasks`` partitions and
   called by ``mapInPandas``: per task one client, one thread pool of ``concurrency``
   threads, and the job-wide limiter (see :mod:`fmf_spark.inference.limiter`: one quota
   broker on the driver schedules every task on every executor). With the cache on,
   each task commits its answers while it runs and a retried task gives back what its
   earlier attempts committed (:mod:`fmf_spark.inference.progress_store`); the
   progress a killed run left counts as cache in step 1.
3. The answers are joined back to every input row and the result is materialised once
   (``localCheckpoint``, or Parquet under Spark Connect 3.5: :func:`~fmf_spark.spark.materialise`),
   so later actions on it never call the model again and a
   rewrite of the cache table does not change it.

Every input row gives exactly one output row (:data:`~fmf_spark.schemas.OUTPUTS_SCHEMA`);
a failed call is a row with ``status='error'`` and an ``error`` struct. A quota that will
not clear soon stops every task (the limiter refuses further calls) and :func:`infer`
raises :class:`~fmf_spark.errors.QuotaExhausted`, with the partial outputs in its
``partial`` field so the caller can save what was paid for.

Rows served from the cache keep their original values with ``attempts = 0`` (no call in
this run); :func:`~fmf_spark.inference.metrics.output_metrics` counts cost and calls
for ``attempts > 0`` only.

Each task also reports when each call started, was admitted and ended, and when the
provider answered 429 (:mod:`fmf_spark.observability.telemetry`); with ``requests_path``
those timings of this run's calls are appended to a Delta table
(:data:`~fmf_spark.schemas.REQUESTS_SCHEMA`, the run report's request timeline). The
same snapshot carries the log format and, when OpenTelemetry is on, the trace context,
so executor spans join the run's trace. While a stage shows progress
(:mod:`fmf_spark.observability.progress`), the step tells it how many requests it will
send and which quota counter is its own.

The provider is built by the caller when it has one (the composition root builds and
prechecks every provider a run uses, once, on the driver), else from the config; this
module never starts a server.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fmf_spark.errors import ConfigError, InferenceError, InvalidRequest, QuotaExhausted
from fmf_spark.inference.base import Completion, CompletionParams, parse_messages
from fmf_spark.inference.cache import read_cache
from fmf_spark.inference.client import RetryingClient, RetryPolicy
from fmf_spark.inference.cost import compute_cost
from fmf_spark.inference.limiter import LimiterSpec, QuotaBroker, make_limiter
from fmf_spark.inference.metrics import OutputMetrics, output_metrics
from fmf_spark.inference.progress_store import (
    ProgressSpec,
    TaskProgress,
    open_task_progress,
    progress_spec,
    with_progress,
)
from fmf_spark.inference.providers import ProviderRuntime, build_provider
from fmf_spark.inference.tokens import count_tokens
from fmf_spark.observability.logging import get_logger
from fmf_spark.observability.progress import current as current_progress
from fmf_spark.observability.redaction import redact
from fmf_spark.observability.telemetry import TaskTelemetry, task_telemetry
from fmf_spark.spark import default_parallelism, is_connect, materialise
from fmf_spark.storage import join_uri, parent_uri

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

    from fmf_spark.config.inference import ModelPrice
    from fmf_spark.config.models import FmfConfig
    from fmf_spark.config.secrets import SecretResolver

log = get_logger(__name__)


@dataclass(frozen=True)
class InferenceStep:
    """One model call per input row: which provider, prompt and parameters.

    Args:
        step: the step name (the ``step`` column of the outputs).
        provider: a key of ``config.inference.providers``.
        prompt_id: the prompt's id in the registry.
        prompt_version: the prompt's version.
        prompt_hash: content hash of the prompt (part of ``request_id``).
        temperature: sampling temperature; ``None``: the provider's default.
        max_tokens: completion token cap (also what the TPM quota is charged).
        stop: stop sequences.
        response_schema: a JSON schema: the answer must be JSON valid for it.
        concurrency: calls in flight per Spark task; ``None``: the provider's setting.
        repair_retry: on invalid JSON, ask once more with the validation error.

    Example:
        >>> step = InferenceStep("summary", "simulator", "summarise", "1", "ab12", max_tokens=200)
    """

    step: str
    provider: str
    prompt_id: str
    prompt_version: str
    prompt_hash: str
    temperature: float | None = None
    max_tokens: int = 1024
    stop: list[str] | None = None
    response_schema: dict[str, Any] | None = None
    concurrency: int | None = None
    repair_retry: bool = False

    def params(self) -> CompletionParams:
        return CompletionParams(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            stop=tuple(self.stop) if self.stop else None,
            response_schema=self.response_schema,
            schema_name=_schema_name(self.step),
        )

    def params_json(self) -> str:
        """The generation parameters, canonical JSON (part of ``request_id``)."""
        return json.dumps(
            {
                "max_tokens": self.max_tokens,
                "response_schema": self.response_schema,
                "stop": self.stop,
                "temperature": self.temperature,
            },
            sort_keys=True,
            separators=(",", ":"),
        )


def _schema_name(step: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_-" else "_" for c in step)
    return cleaned[:64] or "output"


def request_prefix(step: InferenceStep, model: str) -> str:
    """Everything of the request key but the messages."""
    return f"{step.prompt_hash}\n{model}\n{step.params_json()}\n"


def request_id(step: InferenceStep, model: str, messages: str) -> str:
    """The idempotency key of one request: sha256 of prompt hash, model, params, messages.

    Example:
        >>> len(request_id(step, "gpt-4o-mini", '[{"role":"user","content":"Hi"}]'))  # doctest: +SKIP
        64
    """
    return hashlib.sha256((request_prefix(step, model) + messages).encode("utf-8")).hexdigest()


# --- the executor side --------------------------------------------------------------------

_INT_COLUMNS = ("prompt_tokens", "completion_tokens", "latency_ms", "attempts")
_TIME_COLUMNS = ("started_at", "sent_at", "ended_at")


def _error_row(rid: str, exc: InferenceError, paid: Completion | None = None) -> dict[str, Any]:
    """The result row of a failed request (with the tokens of an answer that was paid)."""
    from fmf_spark.schemas import INFERENCE_RESULT_COLUMNS

    row = dict.fromkeys(INFERENCE_RESULT_COLUMNS)
    row.update(
        request_id=rid,
        attempts=exc.attempts,
        latency_ms=exc.elapsed_ms,
        status="error",
        error=exc.to_struct(redact(exc.message)),
    )
    if paid is not None:
        row.update(
            output_text=paid.text,
            prompt_tokens=paid.prompt_tokens,
            completion_tokens=paid.completion_tokens,
        )
    return row


@dataclass
class _Task:
    """What one Spark task needs to call the model (pickled into the closure)."""

    runtime: ProviderRuntime
    step: InferenceStep
    limiter: LimiterSpec
    prices: dict[str, ModelPrice]
    concurrency: int
    policy: RetryPolicy
    telemetry: TaskTelemetry = field(default_factory=TaskTelemetry)
    #: durable progress (see :mod:`fmf_spark.inference.progress_store`); None: off
    progress: ProgressSpec | None = None
    _stopped: threading.Event = field(default_factory=threading.Event, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_stopped")
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._stopped = threading.Event()

    def _cost(self, completion: Completion) -> float | None:
        return compute_cost(
            completion.model, completion.prompt_tokens, completion.completion_tokens, self.prices
        )

    def call(self, client: RetryingClient, rid: str, messages_json: str | None) -> dict[str, Any]:
        """One row: never raises, always returns a result row."""
        try:
            messages = parse_messages(messages_json or "")
        except ValueError as exc:
            return _error_row(rid, InvalidRequest(f"bad messages: {exc}"))
        if self._stopped.is_set():
            return _error_row(rid, QuotaExhausted("not called: the provider's quota is exhausted"))
        try:
            completion = client.complete(messages, self.step.params())
        except QuotaExhausted as exc:
            self._stopped.set()
            return _error_row(rid, exc)
        except InferenceError as exc:
            row = _error_row(rid, exc, exc.completion)
            if exc.completion is not None:
                row["cost_usd"] = self._cost(exc.completion)
            return row
        except Exception as exc:  # an SDK or programming error: still one explicit row
            log.exception("unexpected error calling %s", self.runtime.name)
            return _error_row(
                rid,
                InferenceError(
                    f"unexpected {type(exc).__name__}: {exc}", code="inference.unexpected"
                ),
            )
        return {
            "request_id": rid,
            "output_text": completion.text,
            "output_json": None
            if completion.json is None and self.step.response_schema is None
            else json.dumps(completion.json, ensure_ascii=False),
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "cost_usd": self._cost(completion),
            "latency_ms": completion.latency_ms,
            "attempts": completion.attempts,
            "status": "ok",
            "error": None,
        }

    def __call__(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """The ``mapInPandas`` function: one client and one thread pool per task."""
        import pandas as pd

        from fmf_spark.schemas import INFERENCE_RESULT_COLUMNS, INFERENCE_TIMING_COLUMNS

        columns = [*INFERENCE_RESULT_COLUMNS, *INFERENCE_TIMING_COLUMNS]
        self.runtime.register_secrets()
        count_tokens("warm up")  # load the tokenizer before the first reserved slot
        limiter = make_limiter(self.limiter)
        client = RetryingClient(
            self.runtime.adapter(pool=self.concurrency),
            self.policy,
            limiter,
            repair_retry=self.step.repair_retry,
            refund_unused_completion=type(self.runtime.config).refunds_unused_completion,
        )
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="fmf-infer")
        progress = open_task_progress(self.progress)
        try:
            # what earlier attempts of this task (a Spark retry, a speculative copy)
            # already committed is given back as it was, not called again
            recalled = progress.recall() if progress is not None else {}
            with self.telemetry.task() as observer:
                for batch in batches:
                    rows = list(zip(batch["request_id"], batch["messages"], strict=True))
                    results = list(
                        pool.map(
                            lambda r: (
                                recalled.get(r[0])
                                or _committed(
                                    progress,
                                    observer.observe(r[0], lambda: self.call(client, r[0], r[1])),
                                )
                            ),
                            rows,
                        )
                    )
                    frame = pd.DataFrame(results, columns=columns)
                    for col in _INT_COLUMNS:
                        frame[col] = frame[col].astype("Int64")
                    for col in _TIME_COLUMNS:
                        frame[col] = pd.to_datetime(frame[col], utc=True)
                    yield frame
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if progress is not None:  # also when the task fails: keep what was answered
                progress.close()
            client.close()
            close = getattr(limiter, "close", None)  # the broker's keeps a connection
            if close is not None:
                close()


def _committed(progress: TaskProgress | None, row: dict[str, Any]) -> dict[str, Any]:
    """Hand a result row to the task's durable progress (when on); return it."""
    return row if progress is None else progress.record(row)


# --- the driver side ----------------------------------------------------------------------


def _broker_host(spark: Any) -> tuple[str, str]:
    """(bind address, address executors use) of the quota broker."""
    conf = spark.sparkContext.getConf()
    master = conf.get("spark.master", "")
    if master.startswith("local["):
        return "127.0.0.1", "127.0.0.1"  # one machine: stay on loopback
    host = conf.get("spark.driver.host", "127.0.0.1")
    return conf.get("spark.driver.bindAddress", host), host


def _bucket_key(runtime: ProviderRuntime) -> str:
    """The broker's quota bucket of a provider (also the key its calls are counted by)."""
    return f"{runtime.name}:{runtime.model}"


def _limiter_spec(spark: Any, runtime: ProviderRuntime, mode: str, tasks: int) -> LimiterSpec:
    quota = runtime.quota()
    if quota is None:
        return None
    if is_connect(spark):
        # the client is not the driver: executors cannot reach a broker in this process
        if mode == "broker":
            raise ConfigError(
                "inference.limiter: broker needs a classic session; this is Spark Connect",
                hint="set inference.limiter: auto (or static): each task paces at quota / tasks",
            )
        mode = "static"
    if mode == "static":
        return quota.divided(tasks)
    bind, advertise = _broker_host(spark)
    broker = QuotaBroker.shared(bind)
    key = _bucket_key(runtime)
    broker.register(key, quota)
    return broker.client_spec(key, advertise)


def _scratch(spark: Any, cache_path: str | None) -> str:
    """Where :func:`~fmf_spark.spark.materialise` may write when it cannot checkpoint."""
    if cache_path:
        return join_uri(parent_uri(cache_path), "_scratch")
    warehouse = str(spark.conf.get("spark.sql.warehouse.dir", "spark-warehouse"))
    return join_uri(warehouse, "_fmf_scratch")


def _nullable(name: str) -> Any:
    """The column, typed nullable (the outputs schema declares these nullable)."""
    from pyspark.sql import functions as F

    return F.when(F.col(name).isNotNull(), F.col(name)).alias(name)


def _nullable_lit(value: str, name: str) -> Any:
    """A constant typed nullable (``request_id`` is never null, so it is always set)."""
    from pyspark.sql import functions as F

    return F.when(F.col("request_id").isNotNull(), F.lit(value)).alias(name)


def _keyed(df: DataFrame, prefix: str) -> DataFrame:
    """The input rows with their ``request_id`` (sha256 of ``prefix`` + messages)."""
    from pyspark.sql import functions as F

    return df.select(
        F.coalesce(
            F.sha2(F.concat(F.lit(prefix), F.coalesce(F.col("messages"), F.lit(""))), 256),
            F.lit(""),
        ).alias("request_id"),
        F.col("doc_id").cast("string").alias("doc_id"),
        F.col("chunk_id").cast("string").alias("chunk_id"),
        F.col("messages"),
    )


def _todo(keyed: DataFrame, cached: DataFrame | None) -> DataFrame:
    """The distinct requests to call: those without a cached answer."""
    todo = keyed.select("request_id", "messages").dropDuplicates(["request_id"])
    if cached is not None:
        todo = todo.join(cached.select("request_id"), "request_id", "left_anti")
    return todo


def _watch_progress(todo: DataFrame, runtime: ProviderRuntime) -> None:
    """Tell the stage showing progress (if any) this step's total and quota counter."""
    progress = current_progress()
    if progress is None or not progress.active:
        return
    quota = runtime.quota()
    rpm = quota.requests_per_minute if quota else None
    # one extra count, only when someone watches: the total of the progress line
    progress.watch(_bucket_key(runtime), todo.count(), rpm)


def _answers(todo: DataFrame, cached: DataFrame | None, task: _Task, tasks: int) -> DataFrame:
    """One result per distinct request, with its call's timings: called now, or from
    the cache (``attempts = 0``, no timings)."""
    from pyspark.sql import functions as F

    from fmf_spark.schemas import INFERENCE_TIMING_COLUMNS, TIMED_INFERENCE_RESULT_SCHEMA

    results = todo.repartition(tasks).mapInPandas(task, TIMED_INFERENCE_RESULT_SCHEMA)
    if cached is not None:
        no_timings = [
            F.lit(None).cast(f.dataType).alias(f.name)
            for f in TIMED_INFERENCE_RESULT_SCHEMA.fields
            if f.name in INFERENCE_TIMING_COLUMNS
        ]
        results = results.unionByName(
            cached.withColumn("attempts", F.lit(0)).select("*", *no_timings)
        )
    return results


def _outputs(keyed: DataFrame, answers: DataFrame, step: InferenceStep, model: str) -> DataFrame:
    """Every input row with its answer: OUTPUTS_SCHEMA, then the call's timings."""
    from pyspark.sql import functions as F

    from fmf_spark.schemas import INFERENCE_TIMING_COLUMNS, STATUS_ERROR, error_column

    joined = keyed.join(answers, "request_id", "left")
    missing = error_column(
        "inference.missing_result", "no result for this request (internal error)", True
    )
    return joined.select(
        F.col("request_id"),
        _nullable("doc_id"),
        _nullable("chunk_id"),
        F.lit(step.step).alias("step"),
        _nullable_lit(step.prompt_id, "prompt_id"),
        _nullable_lit(step.prompt_version, "prompt_version"),
        _nullable_lit(step.prompt_hash, "prompt_hash"),
        _nullable_lit(model, "model"),
        "output_text",
        "output_json",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "latency_ms",
        "attempts",
        F.coalesce(F.col("status"), F.lit(STATUS_ERROR)).alias("status"),
        F.when(F.col("status").isNull(), missing).otherwise(F.col("error")).alias("error"),
        *INFERENCE_TIMING_COLUMNS,
    )


@dataclass(frozen=True)
class StepResult:
    """What :func:`infer_step` produced.

    Attributes:
        timed: one row per input row, :data:`~fmf_spark.schemas.OUTPUTS_SCHEMA` then the
            call's timings; materialised: reading it again never calls the model again.
        provider: the provider that answered.
    """

    timed: DataFrame
    provider: ProviderRuntime

    @property
    def outputs(self) -> DataFrame:
        """The rows in :data:`~fmf_spark.schemas.OUTPUTS_SCHEMA` (without the timings)."""
        from fmf_spark.schemas import INFERENCE_TIMING_COLUMNS

        return self.timed.drop(*INFERENCE_TIMING_COLUMNS)

    def requests(self) -> DataFrame:
        """One row per call made (REQUESTS_SCHEMA): duplicates of a request share its one
        call; cached rows were not called."""
        from pyspark.sql import functions as F

        from fmf_spark.schemas import REQUESTS_SCHEMA

        made = self.timed.where(F.col("attempts") > 0).dropDuplicates(["request_id"])
        return made.select(
            *[
                (F.col("error.code") if f.name == "error_code" else F.col(f.name))
                .cast(f.dataType)
                .alias(f.name)
                for f in REQUESTS_SCHEMA
            ]
        )

    def save_requests(self, requests_path: str) -> None:
        """Append :meth:`requests` to the Delta table at ``requests_path``."""
        self.requests().write.format("delta").mode("append").save(requests_path)

    def raise_if_exhausted(self, counted: OutputMetrics | None = None) -> None:
        """Raise :class:`QuotaExhausted` (the outputs in ``partial``) when a request met
        a quota that will not clear soon.

        ``counted``: the metrics of a table that holds these outputs (the chain's
        outputs of the step), when the caller has them: without a failure of that code
        there, no Spark job looks for one.
        """
        from pyspark.sql import functions as F

        if counted is not None and QuotaExhausted.code not in counted.failures_by_code:
            return
        out, runtime = self.outputs, self.provider
        exhausted = (
            out.where(F.col("error.code") == QuotaExhausted.code)
            .orderBy(F.col("attempts").desc())  # the provider's own message, not "not called"
            .limit(1)
            .collect()
        )
        if not exhausted:
            return
        reason = exhausted[0]["error"]["message"]
        metrics = output_metrics(out)
        raise QuotaExhausted(
            f"provider '{runtime.name}' ({runtime.model}) has no quota left: {reason}. "
            f"{metrics.ok} requests succeeded, {metrics.failed} did not.",
            hint="rerun once the quota resets (or raise it): with the outputs saved as the "
            "cache, only the failed requests are called again",
            partial=out,
        )


def _plan_task(
    spark: SparkSession, step: InferenceStep, runtime: ProviderRuntime, config: FmfConfig
) -> tuple[_Task, int]:
    """The task every partition runs, and how many partitions call at once."""
    tasks = config.inference.tasks or default_parallelism(spark)
    task = _Task(
        runtime=runtime,
        step=step,
        limiter=_limiter_spec(spark, runtime, config.inference.limiter, tasks),
        prices=dict(config.inference.prices),
        concurrency=step.concurrency or runtime.config.concurrency,
        policy=RetryPolicy.from_config(runtime.config.retry),
        telemetry=task_telemetry(
            step=step.step,
            provider=runtime.name,
            model=runtime.model,
            prompt=f"{step.prompt_id}#{step.prompt_version}",
            prompt_hash=step.prompt_hash,
        ),
    )
    log.info(
        "inference step %s: provider %s (%s), %d tasks x %d concurrent calls, limiter %s",
        step.step,
        runtime.name,
        runtime.model,
        tasks,
        task.concurrency,
        task.limiter,
    )
    return task, tasks


def step_progress(cache_path: str | None, prefix: str, config: FmfConfig) -> ProgressSpec | None:
    """Durable progress of a step: with the cache on, its answers are committed beside it
    (``infer`` writes and reads it; the dry run reads it)."""
    settings = config.inference
    if not cache_path or not settings.cache:
        return None
    return progress_spec(cache_path, prefix, settings.progress_rows, settings.progress_seconds)


def infer_step(
    df: DataFrame,
    step: InferenceStep,
    config: FmfConfig,
    *,
    cache_path: str | None = None,
    resolver: SecretResolver | None = None,
    provider: ProviderRuntime | None = None,
) -> StepResult:
    """:func:`infer` without its two last acts, for a caller that does more between them
    (the chain runner saves the outputs before an exhausted quota is raised): the calls
    are made and the result materialised; the call timings are saved by
    :meth:`StepResult.save_requests` and an exhausted quota raised by
    :meth:`StepResult.raise_if_exhausted`.
    """
    spark = df.sparkSession
    runtime = provider or build_provider(step.provider, config, resolver)
    keyed = _keyed(df, request_prefix(step, runtime.model))
    cached = read_cache(spark, cache_path) if cache_path and config.inference.cache else None
    progress = step_progress(cache_path, request_prefix(step, runtime.model), config)
    cached = with_progress(spark, cached, progress)
    task, tasks = _plan_task(spark, step, runtime, config)
    task.progress = progress
    todo = _todo(keyed, cached)
    _watch_progress(todo, runtime)
    started = time.monotonic()
    # Materialise once: the calls happen here, and later actions (or a rewrite of the
    # cache table) never change or recompute the answers.
    timed = _outputs(keyed, _answers(todo, cached, task, tasks), step, runtime.model)
    timed = materialise(timed, _scratch(spark, cache_path))
    log.info("inference step %s: done in %.1fs", step.step, time.monotonic() - started)
    return StepResult(timed, runtime)


def infer(
    df: DataFrame,
    step: InferenceStep,
    config: FmfConfig,
    *,
    cache_path: str | None = None,
    resolver: SecretResolver | None = None,
    provider: ProviderRuntime | None = None,
    requests_path: str | None = None,
) -> DataFrame:
    """Call the model for every row of ``df``; return one outputs row per input row.

    Args:
        df: at least ``doc_id`` (string), ``chunk_id`` (string, nullable) and
            ``messages`` (JSON list of ``{"role", "content"}``).
        step: provider, prompt identity and parameters.
        config: the fmf config (providers, quotas, prices, limiter mode).
        cache_path: a Delta table of earlier outputs: requests that succeeded there are
            not called again. The caller persists the new outputs; while the step runs,
            the tasks commit their answers beside it (``inference.progress_rows``, see
            :mod:`~fmf_spark.inference.progress_store`), read as part of the cache here
            and folded into it by :func:`~fmf_spark.inference.progress_store.fold_progress`.
        resolver: resolves the provider's secrets when ``provider`` is not given
            (default: from ``config.secrets``).
        provider: ``step.provider`` already built (and prechecked) by the caller.
        requests_path: a Delta table to append one row per call made here: its result
            and timings (:data:`~fmf_spark.schemas.REQUESTS_SCHEMA`), for the run report.

    Returns:
        A DataFrame with exactly :data:`~fmf_spark.schemas.OUTPUTS_SCHEMA`. The calls
        have already been made when it returns (it is materialised once).

    Raises:
        QuotaExhausted: the provider reported a quota that will not clear soon; the
            partial outputs are in its ``partial`` field.
        ConfigError: unknown provider, or a secret that cannot be resolved.

    Example:
        >>> out = infer(messages_df, step, cfg, cache_path="artefacts/cache/outputs")  # doctest: +SKIP
        >>> out.groupBy("status").count().show()  # doctest: +SKIP
    """
    result = infer_step(
        df, step, config, cache_path=cache_path, resolver=resolver, provider=provider
    )
    if requests_path is not None:
        result.save_requests(requests_path)
    result.raise_if_exhausted()
    return result.outputs


def inference_metrics(outputs: DataFrame) -> dict[str, Any]:
    """Totals of an outputs DataFrame for the run metrics (see
    :mod:`fmf_spark.inference.metrics` for what each key counts)."""
    return output_metrics(outputs).as_dict()
