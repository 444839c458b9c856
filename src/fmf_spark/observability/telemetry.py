"""Telemetry that travels with a Spark task: log context, request timings, trace context.

The driver takes a snapshot with :func:`task_telemetry` and the inference runner
pickles it into its ``mapInPandas`` closure. On the executor, :meth:`TaskTelemetry.task`
wraps the task: it configures logging like the driver's (format, level), sets the
``run_id``/``step`` fields of the task's JSON log lines, and, when OpenTelemetry is on,
opens the task's span as a child of the driver's step span (W3C ``traceparent`` carried
in the snapshot) and flushes the span and metric exporters when the task ends.

Each model call runs inside :meth:`CallObserver.observe`, which records when the call
started, when its answered attempt was sent (admitted by the limiter), when it ended
and when the provider answered 429 (:func:`note_sent` and :func:`note_rate_limited`,
called by the retrying client). These timings are added to the task's result rows and
become the run's ``requests`` table, which the run report draws its request timeline
from. They cost two ``time.time()`` calls per attempt, with or without OpenTelemetry.

Nothing here imports OpenTelemetry: :mod:`fmf_spark.observability.otel` is imported
only when ``observability.otel.enabled`` is true, so tracing off costs nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from fmf_spark.observability.logging import configure_logging, configured, set_process_fields
from fmf_spark.observability.redaction import register_secret


@dataclass(frozen=True)
class OtelSettings:
    """What a process needs to export spans and metrics (picklable; headers resolved).

    The header values are credentials: they travel to executors inside the pickled
    task, like a provider's API key, are registered for redaction on arrival, and are
    never in ``repr``.
    """

    endpoint: str
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    service_name: str = "fmf_spark"
    resource_attributes: tuple[tuple[str, str], ...] = ()
    sample_ratio: float = 0.1
    metrics: bool = True
    timeout_s: float = 10.0

    def register_secrets(self) -> None:
        for _, value in self.headers:
            register_secret(value)


def otel_settings(cfg: Any, resolve_secret: Callable[[Any], str] | None = None) -> OtelSettings:
    """:class:`OtelSettings` of ``observability.otel``; secret header refs resolved.

    Args:
        cfg: the ``observability.otel`` config (an ``OtelConfig``).
        resolve_secret: turns a ``SecretRef`` into its value (the caller's secret
            resolver: observability sits below the config layer and does not build one).
    """
    headers: list[tuple[str, str]] = []
    for name, value in cfg.headers.items():
        if isinstance(value, str):
            headers.append((name, value))
            continue
        if resolve_secret is None:
            from fmf_spark.errors import ConfigError

            raise ConfigError(
                f"observability.otel.headers.{name} is a secret reference and no secret "
                "resolver was given"
            )
        secret = resolve_secret(value)
        register_secret(secret)
        headers.append((name, secret))
    return OtelSettings(
        endpoint=cfg.endpoint.rstrip("/"),
        headers=tuple(headers),
        service_name=cfg.service_name,
        resource_attributes=tuple(sorted(cfg.resource_attributes.items())),
        sample_ratio=float(cfg.model_call_sample_ratio),
        metrics=bool(cfg.metrics),
        timeout_s=float(cfg.timeout_s),
    )


# --- the driver's trace -------------------------------------------------------------------

#: the trace of the run in progress on this driver (an ``otel.RunTrace``), if any
_trace: Any = None


def activate_trace(trace: Any) -> None:
    """Make ``trace`` (an ``otel.RunTrace``, or ``None``) the one spans and tasks join."""
    global _trace
    _trace = trace


def active_trace() -> Any:
    """The run trace in progress on this driver, or ``None`` (tracing off)."""
    return _trace


@contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[None]:
    """A span of the active run trace around the block; nothing when tracing is off."""
    trace = _trace
    if trace is None:
        yield
        return
    with trace.span(name, attributes or {}):
        yield


def task_telemetry(step: str | None = None, **attributes: Any) -> TaskTelemetry:
    """The snapshot a Spark task takes along (driver side).

    Args:
        step: the step the task's calls belong to.
        attributes: attributes of every model call of the task (provider, model,
            prompt, prompt_hash), for spans and metrics.
    """
    from fmf_spark.observability.logging import current_fields

    log = configured()
    fields = {k: v for k, v in current_fields().items() if k in ("run_id", "stage", "step")}
    if step is not None:
        fields["step"] = step
    trace = _trace
    return TaskTelemetry(
        log_format=log[0] if log else None,
        log_level=log[1] if log else None,
        fields=fields,
        attributes={k: v for k, v in {"step": step, **attributes}.items() if v is not None},
        otel=trace.settings if trace is not None else None,
        carrier=trace.inject() if trace is not None else {},
    )


# --- the executor side --------------------------------------------------------------------


@dataclass
class CallRecord:
    """Timings of one model call (epoch seconds), filled while it runs."""

    started: float
    sent: float | None = None
    ended: float | None = None
    rate_limited_at: list[float] = field(default_factory=list)
    rate_limited_wait_s: float = 0.0
    span: Any = None

    def columns(self) -> dict[str, Any]:
        """The timing columns of the result row
        (:data:`~fmf_spark.schemas.INFERENCE_TIMING_COLUMNS`)."""
        return {
            "started_at": _ts(self.started),
            "sent_at": _ts(self.sent),
            "ended_at": _ts(self.ended),
            "rate_limited": len(self.rate_limited_at),
            "rate_limited_at": [_ts(t) for t in self.rate_limited_at],
        }


_local = threading.local()


def note_sent() -> None:
    """The limiter admitted an attempt of the current call and it is being sent."""
    record: CallRecord | None = getattr(_local, "call", None)
    if record is not None:
        record.sent = time.time()


def note_rate_limited(wait_s: float | None) -> None:
    """The provider answered the current call's attempt with 429 (wait ``wait_s``)."""
    record: CallRecord | None = getattr(_local, "call", None)
    if record is None:
        return
    record.rate_limited_at.append(time.time())
    record.rate_limited_wait_s += wait_s or 0.0
    if record.span is not None:
        record.span.add_event("rate_limited", {"fmf.retry_after_s": float(wait_s or 0.0)})


def _ts(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=timezone.utc)


@dataclass
class TaskTelemetry:
    """The driver's snapshot, pickled into a Spark task; see the module docstring."""

    log_format: str | None = None
    log_level: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    otel: OtelSettings | None = None
    carrier: dict[str, str] = field(default_factory=dict)

    @contextmanager
    def task(self) -> Iterator[CallObserver]:
        """Wrap one Spark task (executor side); yields the observer of its calls."""
        if self.log_format is not None and configured() != (self.log_format, self.log_level):
            configure_logging(self.log_format, self.log_level)
        set_process_fields(**self.fields)
        task_span = None
        if self.otel is not None:
            self.otel.register_secrets()
            from fmf_spark.observability.otel import TaskSpan

            task_span = TaskSpan(self.otel, self.carrier, self.attributes)
        failed: BaseException | None = None
        try:
            yield CallObserver(self.attributes, task_span)
        except BaseException as exc:
            failed = exc
            raise
        finally:
            set_process_fields(**dict.fromkeys(self.fields))
            if task_span is not None:
                task_span.end(failed)


class CallObserver:
    """Times each call of a task and, with OpenTelemetry, records its span and metrics."""

    def __init__(self, attributes: Mapping[str, Any], task_span: Any = None) -> None:
        self.attributes = attributes
        self.task_span = task_span

    def observe(self, request_id: str, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run ``call`` (one model call returning its result row); add the timings to it."""
        record = CallRecord(started=time.time())
        if self.task_span is not None:
            record.span = self.task_span.start_call(request_id)
        _local.call = record
        row: dict[str, Any] | None = None
        try:
            row = call()
        finally:
            _local.call = None
            record.ended = time.time()
            if self.task_span is not None:  # a raising call still ends its span
                self.task_span.end_call(record, row)
        row.update(record.columns())
        return row
