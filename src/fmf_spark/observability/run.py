"""The record of one run: id, folder, timings, metrics, lineage, and ``run.yaml``.

A :class:`RunContext` is created when a run starts and finished when it ends, whether
it succeeded or failed; :meth:`RunContext.finish` writes ``<artefacts>/<run_id>/run.yaml``
and, when MLflow is enabled, the same facts to an MLflow run (params, metrics,
``run.yaml`` and the chain file as artefacts, prompt versions linked).

Everything written passes through :func:`~fmf_spark.observability.redaction.redact`:
``run.yaml`` and MLflow params never hold a secret value, even when one reached an
error message.

A run in progress is visible: :meth:`RunContext.start` writes ``run.yaml`` with
``status: running`` at once, and a daemon thread rewrites ``<run_dir>/heartbeat`` (one
UTC timestamp) every ``artefacts.heartbeat_s`` until :meth:`RunContext.finish`, so
``fmf runs prune`` can tell a live run from an abandoned one. Each stage is a span of
the run's OpenTelemetry trace when ``observability.otel.enabled`` (see
:mod:`fmf_spark.observability.otel`), and log lines written inside a stage carry
``run_id``, ``stage`` and ``step``.

Example:
    >>> ctx = RunContext.start(config, chain_path="chains/sample.yaml")  # doctest: +SKIP
    >>> with ctx.stage("process"):  # doctest: +SKIP
    ...     result = process(spark, config, "samples", None, ctx.run_dir)
    >>> ctx.add_metrics({"documents": result.documents})  # doctest: +SKIP
    >>> ctx.finish("succeeded")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import Token
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fmf_spark import __version__
from fmf_spark.errors import FmfError
from fmf_spark.observability import telemetry
from fmf_spark.observability.logging import _CONTEXT_FIELDS, get_logger, log_fields
from fmf_spark.observability.redaction import redact
from fmf_spark.storage import join_uri, local_path, write_text

if TYPE_CHECKING:
    from fmf_spark.config.models import FmfConfig

log = get_logger(__name__)

RUN_FILE = "run.yaml"
HEARTBEAT_FILE = "heartbeat"
STATUS_RUNNING = "running"
STATUS_SUCCEEDED = "succeeded"
STATUS_FAILED = "failed"


def new_run_id(now: datetime | None = None) -> str:
    """``YYYYMMDDTHHMMSSZ-<6 hex>``: sortable by start time, unique without coordination."""
    now = now or datetime.now(timezone.utc)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def config_hash(config: FmfConfig) -> str:
    """sha256 of the merged config's canonical JSON (secrets are references only)."""
    data = config.model_dump(mode="json", exclude={"profiles"})
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class PromptUse:
    """Which prompt version a step ran (lineage)."""

    step: str
    id: str
    version: str
    hash: str
    registered: bool | None = None
    provider: str | None = None
    model: str | None = None
    scope: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class RunContext:
    """One run's identity, timings, metrics and lineage; see the module docstring.

    Build it with :meth:`start`, not the constructor.
    """

    run_id: str
    run_dir: str
    config: FmfConfig
    chain_path: str | None = None
    chain_name: str | None = None
    #: the chain file's text when it was read from a remote store (hashed, logged to MLflow)
    chain_text: str | None = field(default=None, repr=False)
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    ended_at: datetime | None = None
    status: str | None = None
    error: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    prompts: list[PromptUse] = field(default_factory=list)
    exports: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    mlflow: dict[str, Any] = field(default_factory=dict)
    #: ``{id#version: PromptVersion}`` of the prompts used, mirrored to MLflow's registry
    prompt_versions: dict[str, Any] = field(default_factory=dict, repr=False)
    #: sinks whose export started and has no result yet (the run still needs its data)
    pending_exports: list[str] = field(default_factory=list)
    #: the rate limits of the providers the run called (the report's quota line)
    quotas: dict[str, dict[str, Any]] = field(default_factory=dict)
    _t0: float = field(default_factory=time.perf_counter, repr=False)
    _trace: Any = field(default=None, repr=False)
    _heartbeat: _Heartbeat | None = field(default=None, repr=False)
    _log_token: Token[Mapping[str, Any]] | None = field(default=None, repr=False)

    @classmethod
    def start(
        cls,
        config: FmfConfig,
        chain_path: str | Path | None = None,
        artefacts_root: str | None = None,
        *,
        run_id: str | None = None,
        chain_name: str | None = None,
        chain_text: str | None = None,
        resolve_secret: Callable[[Any], str] | None = None,
    ) -> RunContext:
        """Begin a run: new id, ``<artefacts_root>/<run_id>`` as its folder.

        Writes ``run.yaml`` (``status: running``), starts the heartbeat and, when
        ``observability.otel.enabled``, the run's trace.

        Args:
            config: the merged config (its ``artefacts.root`` is the default root).
            chain_path: the chain file, hashed and attached to the MLflow run.
            artefacts_root: overrides ``config.artefacts.root``.
            run_id: a given id (a job retried by its orchestrator); default a new one.
            chain_name: the chain's name.
            chain_text: the chain file's text when it was read from a remote store.
            resolve_secret: turns a ``SecretRef`` into its value (the OTLP headers).
        """
        root = artefacts_root or config.artefacts.root
        rid = run_id or new_run_id()
        run_dir = join_uri(root, rid)
        path = local_path(run_dir)
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
        # a plain path is made absolute; a URI (dbfs:/, s3://, abfss://) is kept, since
        # Spark must get the URI (on Databricks, a Spark path /dbfs/x is dbfs:/dbfs/x)
        plain = path is not None and str(path) == run_dir
        ctx = cls(
            run_id=rid,
            run_dir=str(path.resolve()) if plain and path is not None else run_dir,
            config=config,
            chain_path=str(chain_path) if chain_path is not None else None,
            chain_name=chain_name,
            chain_text=chain_text,
        )
        ctx._log_token = _CONTEXT_FIELDS.set({**_CONTEXT_FIELDS.get(), "run_id": rid})
        write_text(ctx.run_yaml, render_run_yaml(ctx.record()))
        ctx._heartbeat = _Heartbeat(
            join_uri(ctx.run_dir, HEARTBEAT_FILE), config.artefacts.heartbeat_s
        )
        ctx._heartbeat.start()
        otel = config.observability.otel
        if otel.enabled:
            ctx._start_trace(telemetry.otel_settings(otel, resolve_secret))
        log.info("run %s started (artefacts: %s)", rid, ctx.run_dir)
        return ctx

    def _start_trace(self, settings: telemetry.OtelSettings) -> None:
        from fmf_spark.observability.otel import RunTrace

        self._trace = RunTrace(
            settings,
            {
                "fmf.run_id": self.run_id,
                "fmf.chain": self.chain_name,
                "fmf.project": self.config.project,
                "fmf.profile": self.config.profile,
                "fmf.run_dir": self.run_dir,
            },
        )
        telemetry.activate_trace(self._trace)

    @property
    def run_yaml(self) -> str:
        return join_uri(self.run_dir, RUN_FILE)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage (seconds, summed if the same name is entered again).

        ``name`` is ``<kind>`` or ``<kind>.<what>``: ``process``, ``step.<id>``,
        ``commit`` (the steps' answers into the cache), ``export.<sink>``. The stage is a
        span ``fmf.<kind>`` of the run's trace, and log lines inside it carry ``stage``
        (and ``step`` for a step).
        """
        kind, _, what = name.partition(".")
        attributes: dict[str, Any] = {"fmf.stage": name}
        fields: dict[str, Any] = {"stage": name}
        if kind == "step" and what:
            attributes["fmf.step"] = fields["step"] = what
        elif kind == "export" and what:
            attributes["fmf.sink"] = what
        t0 = time.perf_counter()
        try:
            with log_fields(**fields), telemetry.span(f"fmf.{kind}", attributes):
                yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + (time.perf_counter() - t0)

    def add_metrics(self, metrics: Mapping[str, Any]) -> None:
        """Merge metrics (nested dicts are merged key by key)."""
        _merge(self.metrics, metrics)

    def record_prompt(self, use: PromptUse, version: Any = None) -> None:
        """Record the prompt version a step ran; ``version`` (a ``PromptVersion``) lets
        the MLflow run link it from the prompt registry."""
        self.prompts.append(use)
        if version is not None:
            self.prompt_versions[f"{use.id}#{use.version}"] = version

    def export_started(self, sink: str) -> None:
        """Note that an export to ``sink`` started: until its result is recorded, the
        run is marked as still needed by it (``pending_exports``; pruning keeps it)."""
        if sink not in self.pending_exports:
            self.pending_exports.append(sink)
        self._write_progress()

    def record_export(self, result: Mapping[str, Any]) -> None:
        """Add one exporter result (``ExportResult.as_dict()``)."""
        self.exports.append(dict(result))
        if result.get("sink") in self.pending_exports:
            self.pending_exports.remove(str(result["sink"]))

    def record_quota(self, provider: str, **limits: Any) -> None:
        """Record a provider's rate limits (``requests_per_minute``, ``window_s``...)."""
        self.quotas[provider] = {k: v for k, v in limits.items() if v is not None}

    def _write_progress(self) -> None:
        """Rewrite ``run.yaml`` of the running run (a pending export must be on record
        before the export starts: a crash inside it leaves no other trace)."""
        try:
            write_text(self.run_yaml, render_run_yaml(self.record()))
        except Exception as exc:  # the final write reports a store that is down
            log.warning("run.yaml not updated: %s", redact(str(exc)))

    def record_output(self, name: str, location: str) -> None:
        """Where a table of the run is (``documents``, ``chunks``, ``outputs``...)."""
        self.outputs[name] = location

    def record(self) -> dict[str, Any]:
        """The ``run.yaml`` content as a dict (not yet redacted)."""
        cfg = self.config
        ended = self.ended_at or datetime.now(timezone.utc)
        chain: dict[str, Any] | None = None
        if self.chain_path is not None:
            chain = {"path": self.chain_path, "name": self.chain_name}
            if self.chain_text is not None:
                chain["hash"] = hashlib.sha256(self.chain_text.encode("utf-8")).hexdigest()
            elif Path(self.chain_path).is_file():
                chain["hash"] = file_hash(self.chain_path)
        record: dict[str, Any] = {
            "run_id": self.run_id,
            "status": self.status or "running",
            "started_at": self.started_at.isoformat(timespec="milliseconds"),
            "ended_at": ended.isoformat(timespec="milliseconds"),
            "duration_s": round(time.perf_counter() - self._t0, 3),
            "fmf_version": __version__,
            "profile": cfg.profile,
            "project": cfg.project,
            "config_hash": config_hash(cfg),
            "chain": chain,
            "prompts": [p.as_dict() for p in self.prompts],
            "metrics": self.metrics,
            # copies taken at once: stages that run beside each other (the exports and
            # the cache fold) add their timings and outputs from their own threads
            "timings_s": {k: round(v, 3) for k, v in dict(self.timings).items()},
            "outputs": dict(self.outputs),
            "exports": self.exports,
        }
        if self.pending_exports:
            record["pending_exports"] = list(self.pending_exports)
        if self.quotas:
            record["quotas"] = self.quotas
        if self.error is not None:
            record["error"] = self.error
        if self.extra:
            record.update(self.extra)
        if self.mlflow:
            record["mlflow"] = self.mlflow
        return record

    def finish(self, status: str, error: BaseException | str | None = None) -> str:
        """End the run: write ``run.yaml`` and the MLflow run, even for a failed run.

        Args:
            status: ``succeeded`` or ``failed``.
            error: what failed, recorded as ``code`` and ``message``.

        Returns:
            The location of ``run.yaml``.
        """
        self.status = status
        self.ended_at = datetime.now(timezone.utc)
        if error is not None:
            self.error = _error_dict(error)
        if self._heartbeat is not None:
            self._heartbeat.stop()
        self._end_trace()
        session = None
        if self.config.observability.mlflow.enabled:
            from fmf_spark.observability.mlflow_run import MlflowRunSession

            session = MlflowRunSession.open(self)
        text = render_run_yaml(self.record())
        write_text(self.run_yaml, text)
        log.info("run %s %s; record: %s", self.run_id, status, self.run_yaml)
        if session is not None:
            session.log_and_close(self, text)
        if self._log_token is not None:
            # ValueError: finished in another context than it started in
            with suppress(ValueError):
                _CONTEXT_FIELDS.reset(self._log_token)
            self._log_token = None
        return self.run_yaml

    def _end_trace(self) -> None:
        if self._trace is None:
            return
        metrics = flatten_metrics(self.metrics)
        attributes = {
            f"fmf.{k}": metrics[k]
            for k in ("documents", "chunks", "calls", "failures", "cost_usd")
            if k in metrics
        }
        try:
            self._trace.end(self.status or STATUS_FAILED, self.error, **attributes)
        finally:
            if telemetry.active_trace() is self._trace:
                telemetry.activate_trace(None)
            self._trace = None


class _Heartbeat:
    """Rewrites one file with the current UTC time every ``interval_s`` (daemon thread)."""

    def __init__(self, uri: str, interval_s: float) -> None:
        self.uri = uri
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fmf-heartbeat", daemon=True)

    def beat(self) -> None:
        folder = local_path(self.uri.rsplit("/", 1)[0])
        if folder is not None and not folder.is_dir():
            return  # the run folder is gone (deleted by hand): do not make it again
        try:
            write_text(self.uri, datetime.now(timezone.utc).isoformat(timespec="seconds") + "\n")
        except Exception as exc:  # a missed beat only makes the run look older
            log.warning("heartbeat not written: %s", redact(str(exc)))

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.beat()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


def render_run_yaml(record: Mapping[str, Any]) -> str:
    """YAML text of a run record, with every secret value masked."""
    header = "# fmf run record (written by fmf_spark; secrets are masked)\n"
    return header + redact(yaml.safe_dump(_plain(record), sort_keys=False, allow_unicode=True))


def _error_dict(error: BaseException | str) -> dict[str, Any]:
    if isinstance(error, FmfError):
        out: dict[str, Any] = {"code": error.code, "message": redact(error.message)}
        if error.hint:
            out["hint"] = redact(error.hint)
        return out
    if isinstance(error, BaseException):
        return {"code": type(error).__name__, "message": redact(str(error))}
    return {"code": "error", "message": redact(str(error))}


def _merge(into: dict[str, Any], more: Mapping[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def _plain(value: Any) -> Any:
    """Plain YAML types only (no Python tags in run.yaml)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested metrics as ``a.b.c`` names (for MLflow)."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, name + "."))
        elif isinstance(value, int | float):  # bool is an int: True -> 1.0
            flat[name] = float(value)
    return flat
