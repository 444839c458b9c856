"""OpenTelemetry traces and metrics over OTLP/HTTP (the ``otel`` extra).

Imported only when ``observability.otel.enabled`` is true. The trace of one run:

    fmf.run                           driver: run id, chain, profile, status
    ├── fmf.process                   driver: each stage of the run
    ├── fmf.step  (fmf.step=<id>)     driver: one per chain step
    │   └── fmf.task                  executor: one per Spark task (partition)
    │       └── fmf.model_call        executor: sampled by request_id hash
    └── fmf.export (fmf.sink=<name>)

Executor spans join the run's trace through the W3C ``traceparent`` the driver puts in
the task's pickled closure (:class:`~fmf_spark.observability.telemetry.TaskTelemetry`);
each executor process exports its own spans and flushes them when the task ends.

Metrics (delta temporality: every executor process reports its own increments, which a
collector sums): ``fmf.model.calls``, ``fmf.model.tokens`` (``gen_ai.token.type`` input
or output), ``fmf.model.cost`` (USD), ``fmf.model.rate_limited`` (429 responses) and the
``fmf.model.latency`` histogram (ms), by provider, model, step, status and error code.
All model calls are counted, sampled or not.

Every string attribute passes through :func:`~fmf_spark.observability.redaction.redact`;
no prompt, answer or error message is put on a span, only codes and counts.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from fmf_spark._deps import require

require("opentelemetry.sdk", "otel")
require("opentelemetry.exporter.otlp.proto.http", "otel")

from opentelemetry import trace  # noqa: E402 - after the check that names the extra
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: E402
    OTLPMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.metrics import (  # noqa: E402
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (  # noqa: E402
    AggregationTemporality,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402
from opentelemetry.trace import Status, StatusCode  # noqa: E402
from opentelemetry.trace.propagation.tracecontext import (  # noqa: E402
    TraceContextTextMapPropagator,
)

from fmf_spark import __version__  # noqa: E402
from fmf_spark.observability.logging import get_logger  # noqa: E402
from fmf_spark.observability.redaction import redact  # noqa: E402
from fmf_spark.observability.telemetry import CallRecord, OtelSettings  # noqa: E402

log = get_logger(__name__)

_SCOPE = "fmf_spark"
_PROPAGATOR = TraceContextTextMapPropagator()
#: metric export interval; tasks and runs flush at their end, so this only bounds how
#: stale a long task's figures get
_METRIC_INTERVAL_MS = 60_000
_DELTA: dict[type, AggregationTemporality] = {
    Counter: AggregationTemporality.DELTA,
    UpDownCounter: AggregationTemporality.CUMULATIVE,
    Histogram: AggregationTemporality.DELTA,
    ObservableCounter: AggregationTemporality.DELTA,
    ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
    ObservableGauge: AggregationTemporality.CUMULATIVE,
}
#: latency buckets (ms) of fmf.model.latency: LLM calls take 100 ms to minutes
_LATENCY_BUCKETS = (50, 100, 250, 500, 1000, 2000, 5000, 10000, 20000, 60000, 120000, 300000)


def attribute_name(key: str) -> str:
    """Our attribute name of a call attribute key (``model`` -> ``gen_ai.request.model``)."""
    return "gen_ai.request.model" if key == "model" else f"fmf.{key}"


def clean_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """OTel-valid attribute values (str, bool, int, float), strings redacted, no None."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        if isinstance(value, bool | int | float):
            out[key] = value
        else:
            out[key] = redact(str(value))
    return out


class OtelRuntime:
    """The tracer and meter providers of this process for one :class:`OtelSettings`."""

    def __init__(self, settings: OtelSettings, role: str) -> None:
        headers = dict(settings.headers)
        attributes = {
            "service.name": settings.service_name,
            "service.version": __version__,
            # one per process: delta metrics of two executors must not look like one series
            "service.instance.id": uuid.uuid4().hex,
            "fmf.role": role,
            **dict(settings.resource_attributes),
        }
        resource = Resource.create(attributes)
        self.settings = settings
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(
                    endpoint=f"{settings.endpoint}/v1/traces",
                    headers=headers,
                    timeout=settings.timeout_s,
                )
            )
        )
        self.tracer = self.tracer_provider.get_tracer(_SCOPE, __version__)
        self.meter_provider: MeterProvider | None = None
        if settings.metrics:
            reader = PeriodicExportingMetricReader(
                OTLPMetricExporter(
                    endpoint=f"{settings.endpoint}/v1/metrics",
                    headers=headers,
                    timeout=settings.timeout_s,
                    preferred_temporality=_DELTA,
                ),
                export_interval_millis=_METRIC_INTERVAL_MS,
            )
            self.meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
            meter = self.meter_provider.get_meter(_SCOPE, __version__)
            self.calls = meter.create_counter("fmf.model.calls", "{call}", "Model calls made")
            self.tokens = meter.create_counter("fmf.model.tokens", "{token}", "Tokens charged")
            self.cost = meter.create_counter("fmf.model.cost", "USD", "Cost of model calls")
            self.rate_limited = meter.create_counter(
                "fmf.model.rate_limited", "{response}", "429 responses from the provider"
            )
            self.latency = meter.create_histogram(
                "fmf.model.latency",
                "ms",
                "Latency of the answered attempt of a model call",
                explicit_bucket_boundaries_advisory=_LATENCY_BUCKETS,
            )

    def flush(self) -> None:
        """Export what is buffered (bounded by the settings' timeout)."""
        timeout_ms = int(self.settings.timeout_s * 1000)
        try:
            self.tracer_provider.force_flush(timeout_ms)
            if self.meter_provider is not None:
                self.meter_provider.force_flush(timeout_ms)
        except Exception as exc:  # telemetry must never fail the work it observes
            log.warning("OpenTelemetry export failed: %s", redact(str(exc)))


_runtimes: dict[tuple[OtelSettings, str], OtelRuntime] = {}
_runtimes_lock = threading.Lock()


def runtime(settings: OtelSettings, role: str) -> OtelRuntime:
    """This process's providers for ``settings`` (made once; executors reuse them)."""
    with _runtimes_lock:
        found = _runtimes.get((settings, role))
        if found is None:
            found = _runtimes[(settings, role)] = OtelRuntime(settings, role)
        return found


class RunTrace:
    """The driver side of one run's trace: the run span and the stage spans under it.

    Example:
        >>> trace = RunTrace(settings, {"fmf.run_id": "r1"})  # doctest: +SKIP
        >>> with trace.span("fmf.process", {}):  # doctest: +SKIP
        ...     ...
        >>> trace.end("succeeded")  # doctest: +SKIP
    """

    def __init__(self, settings: OtelSettings, attributes: Mapping[str, Any]) -> None:
        self.settings = settings
        self.runtime = runtime(settings, "driver")
        # a run is a trace of its own, whatever span the caller may be in
        self.root = self.runtime.tracer.start_span(
            "fmf.run",
            context=trace.set_span_in_context(trace.INVALID_SPAN),
            attributes=clean_attributes(attributes),
        )
        self._root_context = trace.set_span_in_context(self.root)

    @property
    def trace_id(self) -> str:
        return format(self.root.get_span_context().trace_id, "032x")

    def _parent(self) -> Any:
        """The current span when it belongs to this run's trace, else the run span."""
        current = trace.get_current_span()
        ctx = current.get_span_context()
        if ctx.is_valid and ctx.trace_id == self.root.get_span_context().trace_id:
            return trace.set_span_in_context(current)
        return self._root_context

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, Any]) -> Iterator[Any]:
        """A child span (of the current span of this trace, else of the run span)."""
        span = self.runtime.tracer.start_span(
            name, context=self._parent(), attributes=clean_attributes(attributes)
        )
        with trace.use_span(span, end_on_exit=False):
            try:
                yield span
            except BaseException as exc:
                span.set_status(Status(StatusCode.ERROR, redact(_code(exc))))
                span.set_attribute("fmf.error_code", redact(_code(exc)))
                raise
            finally:
                span.end()

    def inject(self) -> dict[str, str]:
        """W3C trace context of the current span of this trace (for a Spark task)."""
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=self._parent())
        return carrier

    def end(self, status: str, error: Mapping[str, Any] | None = None, **attributes: Any) -> None:
        """End the run span with the run's status, and export everything buffered."""
        self.root.set_attributes(clean_attributes({"fmf.status": status, **attributes}))
        if error:
            code = str(error.get("code", "error"))
            self.root.set_attribute("fmf.error_code", redact(code))
            self.root.set_status(Status(StatusCode.ERROR, redact(code)))
        self.root.end()
        self.runtime.flush()


def _number(value: Any, kind: type[Any]) -> Any:
    """``value`` as ``kind``; ``None`` (unknown: not sent, no usage reported) stays None."""
    if value is None:
        return None
    try:
        if value != value:  # NaN: pandas' missing value
            return None
        return kind(value)
    except (TypeError, ValueError):
        return None


def _code(exc: BaseException) -> str:
    return str(getattr(exc, "code", None) or type(exc).__name__)


class TaskSpan:
    """The executor side: one Spark task's span, its sampled call spans and the metrics."""

    def __init__(
        self, settings: OtelSettings, carrier: Mapping[str, str], attributes: Mapping[str, Any]
    ) -> None:
        self.runtime = runtime(settings, "executor")
        self.sample_ratio = settings.sample_ratio
        self.call_attributes = clean_attributes(
            {attribute_name(k): v for k, v in attributes.items()}
        )
        self.metric_attributes = {
            k: v
            for k, v in self.call_attributes.items()
            if k in ("fmf.provider", "gen_ai.request.model", "fmf.step")
        }
        from fmf_spark.observability.logging import spark_partition

        task_attributes = dict(self.call_attributes)
        partition = spark_partition()
        if partition is not None:
            task_attributes["fmf.partition"] = partition
        self.span = self.runtime.tracer.start_span(
            "fmf.task", context=_PROPAGATOR.extract(dict(carrier)), attributes=task_attributes
        )
        self._context = trace.set_span_in_context(self.span)
        self.calls = 0

    def sampled(self, request_id: str) -> bool:
        """Whether a call gets a span: by its request_id's hash, so reruns agree."""
        if self.sample_ratio >= 1.0:
            return True
        if self.sample_ratio <= 0.0:
            return False
        try:
            return int(request_id[:8], 16) / 0x1_0000_0000 < self.sample_ratio
        except ValueError:
            return random.random() < self.sample_ratio

    def start_call(self, request_id: str) -> Any:
        """The span of one model call, or ``None`` when it is not sampled."""
        if not self.sampled(request_id):
            return None
        return self.runtime.tracer.start_span(
            "fmf.model_call",
            context=self._context,
            attributes={**self.call_attributes, "fmf.request_id": request_id},
        )

    def end_call(self, record: CallRecord, row: Mapping[str, Any] | None) -> None:
        """Record one finished call: metrics always, its span when sampled."""
        self.calls += 1
        row = row or {}
        status = str(row.get("status") or "error")
        error = row.get("error") or {}
        code = error.get("code") if isinstance(error, Mapping) else None
        prompt_tokens = _number(row.get("prompt_tokens"), int)
        completion_tokens = _number(row.get("completion_tokens"), int)
        cost = _number(row.get("cost_usd"), float)
        latency = _number(row.get("latency_ms"), int)
        rt = self.runtime
        if rt.meter_provider is not None:
            attrs = {**self.metric_attributes, "fmf.status": status}
            if code:
                attrs["fmf.error_code"] = str(code)
            rt.calls.add(1, attrs)
            rt.tokens.add(prompt_tokens or 0, {**attrs, "gen_ai.token.type": "input"})
            rt.tokens.add(completion_tokens or 0, {**attrs, "gen_ai.token.type": "output"})
            rt.cost.add(cost or 0.0, attrs)
            if record.rate_limited_at:
                rt.rate_limited.add(len(record.rate_limited_at), attrs)
            if latency is not None:
                rt.latency.record(latency, attrs)
        span = record.span
        if span is None:
            return
        span.set_attributes(
            clean_attributes(
                {
                    "fmf.status": status,
                    "fmf.error_code": code,
                    "fmf.attempts": int(row.get("attempts") or 0),
                    "fmf.rate_limited": len(record.rate_limited_at),
                    "fmf.rate_limited_wait_s": round(record.rate_limited_wait_s, 3),
                    "gen_ai.usage.input_tokens": prompt_tokens,
                    "gen_ai.usage.output_tokens": completion_tokens,
                    "fmf.cost_usd": cost,
                    "fmf.latency_ms": latency,
                }
            )
        )
        if status != "ok":
            span.set_status(Status(StatusCode.ERROR, redact(str(code or status))))
        span.end()

    def end(self, error: BaseException | None = None) -> None:
        """End the task span and export this process's buffered spans and metrics."""
        self.span.set_attribute("fmf.calls", self.calls)
        if error is not None and not isinstance(error, GeneratorExit):
            self.span.set_status(Status(StatusCode.ERROR, redact(_code(error))))
        self.span.end()
        self.runtime.flush()
