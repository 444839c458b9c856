"""Progress of long stages, for a person: requests done of total, calls/min against the
quota, 429s and an ETA.

A :class:`StageProgress` wraps a stage; a daemon thread samples its sources every
``observability.progress_interval_s`` and shows one line:

    step summarize: 340/1200 requests answered (28%), 118 calls/min (quota 600 RPM), 2 x 429,
    ETA 9m40s, 3m05s elapsed

How it is shown (:func:`progress_mode`, chosen by the CLI): on a terminal the line is
rewritten in place; with JSON logs one ``progress`` log line per interval carries the
same figures as fields; otherwise nothing, unless asked (``fmf run --progress``: one
plain line per interval). ``--quiet`` turns it off. A last line with the final figures
is shown when the stage ends.

Sources, all read on the driver:

- calls answered and 429s: counted by the driver's quota broker as tasks report their
  calls (:func:`count_call`); the inference runner tells the stage which counter is its
  own and how many requests it will send (:func:`current`, :meth:`StageProgress.watch`);
- Spark tasks done of total, from the status tracker of a classic session. Spark
  Connect has no ``sparkContext``: the tasks part is then left out, never an error.

With the static limiter (``inference.limiter: static``, or ``auto`` under Spark
Connect) there is no broker, so a step shows tasks (classic) or its elapsed time only.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from contextvars import copy_context
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, Any

from fmf_spark.observability.logging import get_logger

log = get_logger(__name__)

MODES = ("off", "tty", "lines", "json")
#: calls per minute are measured over this trailing window
_RATE_WINDOW_S = 60.0


# --- call counters (fed by the quota broker on the driver) --------------------------------


@dataclass
class _Counts:
    answered: int = 0
    rate_limited: int = 0
    recent: deque[float] = field(default_factory=deque)


_counts: dict[str, _Counts] = {}
_counts_lock = threading.Lock()


def count_call(key: str, *, answered: bool, rate_limited: bool = False) -> None:
    """Count one report of a call for the limiter bucket ``key`` (``provider:model``)."""
    if not (answered or rate_limited):
        return
    now = time.monotonic()
    with _counts_lock:
        counts = _counts.setdefault(key, _Counts())
        if answered:
            counts.answered += 1
            counts.recent.append(now)
            while counts.recent and counts.recent[0] < now - _RATE_WINDOW_S:
                counts.recent.popleft()
        if rate_limited:
            counts.rate_limited += 1


def call_counts(key: str) -> tuple[int, int, int]:
    """(answered, 429s, answered in the last minute) counted so far for ``key``."""
    now = time.monotonic()
    with _counts_lock:
        counts = _counts.get(key)
        if counts is None:
            return 0, 0, 0
        recent = sum(1 for t in counts.recent if t >= now - _RATE_WINDOW_S)
        return counts.answered, counts.rate_limited, recent


# --- how progress is shown ------------------------------------------------------------------

_settings: dict[str, Any] = {"mode": "off", "interval_s": 5.0, "stream": None}


def progress_mode(
    *, asked: bool = False, quiet: bool = False, log_format: str = "human", stream: Any = None
) -> str:
    """The mode the CLI uses: ``off`` when quiet, ``json`` with JSON logs, ``tty`` on a
    terminal, ``lines`` when asked (``--progress``), else ``off``."""
    if quiet:
        return "off"
    if log_format == "json":
        return "json"
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty():
        return "tty"
    return "lines" if asked else "off"


def configure_progress(
    mode: str = "off", interval_s: float | None = None, stream: IO[str] | None = None
) -> None:
    """How stages of this process show progress (see :func:`progress_mode`)."""
    if mode not in MODES:
        raise ValueError(f"progress mode must be one of {', '.join(MODES)}, not {mode!r}")
    _settings["mode"] = mode
    if interval_s is not None:
        _settings["interval_s"] = float(interval_s)
    _settings["stream"] = stream


_current: StageProgress | None = None


def current() -> StageProgress | None:
    """The stage showing progress now, or ``None`` (then there is nothing to tell it)."""
    return _current


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@dataclass
class Sample:
    """The figures of one progress line."""

    stage: str
    elapsed_s: float
    done: int | None = None
    total: int | None = None
    calls_per_min: float | None = None
    quota_rpm: float | None = None
    rate_limited: int | None = None
    eta_s: float | None = None
    tasks_done: int | None = None
    tasks_total: int | None = None

    def text(self) -> str:
        parts: list[str] = []
        if self.total is not None and self.done is not None:
            pct = 100.0 * self.done / self.total if self.total else 100.0
            parts.append(f"{self.done}/{self.total} requests answered ({pct:.0f}%)")
        if self.calls_per_min is not None:
            rate = f"{self.calls_per_min:.0f} calls/min"
            if self.quota_rpm:
                rate += f" (quota {self.quota_rpm:.0f} RPM)"
            parts.append(rate)
        if self.rate_limited:
            parts.append(f"{self.rate_limited} x 429")
        if self.tasks_total:
            parts.append(f"tasks {self.tasks_done}/{self.tasks_total}")
        if self.eta_s is not None:
            parts.append(f"ETA {_duration(self.eta_s)}")
        parts.append(f"{_duration(self.elapsed_s)} elapsed")
        return f"{self.stage}: " + ", ".join(parts)

    def fields(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class StageProgress:
    """Context manager: show the progress of the stage that runs inside it.

    Args:
        label: what runs (``step summarize``).
        spark: the session, for Spark's task counts (classic sessions only).
        mode: ``off``, ``tty``, ``lines`` or ``json``; default: :func:`configure_progress`.
        interval_s: seconds between lines; default: :func:`configure_progress`.
        stream: where ``tty``/``lines`` go (default ``sys.stderr`` at write time).

    Example:
        >>> with StageProgress("step summarize", spark=spark):  # doctest: +SKIP
        ...     infer(...)
    """

    def __init__(
        self,
        label: str,
        *,
        spark: Any = None,
        mode: str | None = None,
        interval_s: float | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        self.label = label
        self.mode = mode or str(_settings["mode"])
        self.interval_s = float(interval_s or _settings["interval_s"])
        self._stream = stream or _settings["stream"]
        self._tracker = _status_tracker(spark) if self.mode != "off" else None
        self._key: str | None = None
        self._baseline = (0, 0)
        self._total: int | None = None
        self._quota_rpm: float | None = None
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._previous: StageProgress | None = None

    @property
    def active(self) -> bool:
        return self.mode != "off"

    def watch(self, key: str, total: int | None, quota_rpm: float | None = None) -> None:
        """Follow the call counter ``key`` from now on, towards ``total`` requests."""
        answered, rate_limited, _ = call_counts(key)
        self._key = key
        self._baseline = (answered, rate_limited)
        self._total = total
        self._quota_rpm = quota_rpm

    def sample(self) -> Sample:
        """The figures now."""
        elapsed = time.monotonic() - self._t0
        out = Sample(self.label, elapsed)
        if self._key is not None:
            answered, rate_limited, recent = call_counts(self._key)
            out.done = answered - self._baseline[0]
            out.rate_limited = rate_limited - self._baseline[1]
            out.total = self._total
            window = min(elapsed, _RATE_WINDOW_S)
            out.calls_per_min = recent * 60.0 / window if window >= 1.0 else None
            out.quota_rpm = self._quota_rpm
            if out.total is not None and out.calls_per_min and out.done < out.total:
                out.eta_s = (out.total - out.done) * 60.0 / out.calls_per_min
        if self._tracker is not None:
            tasks = self._tracker()
            if tasks is not None:
                out.tasks_done, out.tasks_total = tasks
        return out

    def __enter__(self) -> StageProgress:
        global _current
        if not self.active:
            return self
        self._previous, _current = _current, self
        # the thread logs with the stage's context (run_id, step) in JSON mode
        context = copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), name=f"fmf-progress-{self.label}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        global _current
        if not self.active:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.show(self.sample())  # the final figures
        except Exception as error:
            log.debug("progress of %s not shown: %s", self.label, error)
        if self.mode == "tty":
            self._write("\n")
        if _current is self:
            _current = self._previous

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.show(self.sample())
            except Exception as exc:  # progress must never break the stage it watches
                log.debug("progress of %s not shown: %s", self.label, exc)

    def show(self, sample: Sample) -> None:
        """Write one progress line in this stage's mode."""
        if self.mode == "json":
            log.info(sample.text(), extra={"progress": sample.fields()})
        elif self.mode == "tty":
            self._write("\r\x1b[2K" + sample.text())
        elif self.mode == "lines":
            self._write(sample.text() + "\n")

    def _write(self, text: str) -> None:
        stream = self._stream or sys.stderr
        stream.write(text)
        stream.flush()


def _status_tracker(spark: Any) -> Callable[[], tuple[int, int] | None] | None:
    """Finished/total tasks of the active stages, or ``None`` (Spark Connect: no tracker)."""
    if spark is None:
        return None
    from fmf_spark.spark import is_connect

    if is_connect(spark):  # Spark Connect: no sparkContext; progress goes on without tasks
        return None
    try:
        tracker = spark.sparkContext.statusTracker()
    except Exception:  # Spark Connect: no sparkContext; progress goes on without tasks
        return None

    def tasks() -> tuple[int, int] | None:
        done = total = 0
        for stage_id in tracker.getActiveStageIds():
            info = tracker.getStageInfo(stage_id)
            if info is not None:
                done += info.numCompletedTasks
                total += info.numTasks
        return (done, total) if total else None

    return tasks
