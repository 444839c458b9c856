"""Progress of long Spark stages, printed while a step runs.

A daemon thread polls ``SparkContext.statusTracker()`` (driver-side counters, no extra
Spark job) and reports finished/total tasks of the active stages when they change, at
most every ``interval_s``. Local runs show it on the terminal; on a cluster the same
lines go to the driver log.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class StageProgress:
    """Context manager: report task progress of whatever Spark runs inside it.

    Args:
        spark: the session.
        label: what runs (``step summarize``).
        emit: where lines go (``print`` to stderr in the CLI); ``None`` disables it.
        interval_s: seconds between polls.
    """

    def __init__(
        self,
        spark: SparkSession,
        label: str,
        emit: Callable[[str], None] | None,
        interval_s: float = 2.0,
    ) -> None:
        self.spark = spark
        self.label = label
        self.emit = emit
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> StageProgress:
        if self.emit is not None:
            self._thread = threading.Thread(
                target=self._run, name=f"fmf-progress-{self.label}", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        tracker = self.spark.sparkContext.statusTracker()
        last = ""
        while not self._stop.wait(self.interval_s):
            done = total = 0
            for stage_id in tracker.getActiveStageIds():
                info = tracker.getStageInfo(stage_id)
                if info is not None:
                    done += info.numCompletedTasks
                    total += info.numTasks
            line = f"  {self.label}: {done}/{total} tasks" if total else ""
            if line and line != last and self.emit is not None:
                self.emit(line)
                last = line
