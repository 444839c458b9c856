"""Progress of long stages: the figures, the modes, and no crash without a sparkContext."""

from __future__ import annotations

import io
import json
import logging

import pytest

from fmf_spark.observability.logging import JsonFormatter
from fmf_spark.observability.progress import (
    Sample,
    StageProgress,
    _status_tracker,
    count_call,
    progress_mode,
)
from tests.observability.conftest import RPM, SampleRun


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize(
    ("asked", "quiet", "log_format", "tty", "mode"),
    [
        (False, False, "human", True, "tty"),  # a person at a terminal
        (False, False, "human", False, "off"),  # a pipe or a job log: nothing...
        (True, False, "human", False, "lines"),  # ...unless asked
        (False, False, "json", False, "json"),  # JSON logs: one progress line per interval
        (True, True, "json", True, "off"),  # --quiet wins
    ],
)
def test_mode(asked: bool, quiet: bool, log_format: str, tty: bool, mode: str) -> None:
    chosen = progress_mode(asked=asked, quiet=quiet, log_format=log_format, stream=_Stream(tty))
    assert chosen == mode


def test_sample_text() -> None:
    sample = Sample("step summarize", 185.0, 340, 1200, 118.0, 600, 2, 437.0, 1, 2)
    assert sample.text() == (
        "step summarize: 340/1200 requests answered (28%), 118 calls/min (quota 600 RPM), "
        "2 x 429, tasks 1/2, ETA 7m17s, 3m05s elapsed"
    )
    assert Sample("process", 3.2).text() == "process: 3s elapsed"


def test_calls_counted_from_the_watch_on() -> None:
    key = "test-provider:model-a"
    count_call(key, answered=True)  # before the stage: not its call
    with StageProgress("step s", mode="lines", interval_s=3600, stream=io.StringIO()) as stage:
        stage.watch(key, total=10, quota_rpm=600)
        for _ in range(3):
            count_call(key, answered=True)
        count_call(key, answered=False, rate_limited=True)
        sample = stage.sample()
    assert (sample.done, sample.total, sample.rate_limited, sample.quota_rpm) == (3, 10, 1, 600)


@pytest.mark.parametrize("mode", ["tty", "lines", "json"])
def test_modes_write_their_lines(mode: str) -> None:
    stream = io.StringIO()
    records = io.StringIO()
    handler = logging.StreamHandler(records)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("fmf_spark.observability.progress")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with StageProgress("export x", mode=mode, interval_s=3600, stream=stream) as stage:
            stage.watch("test-provider:model-b", total=2)
            count_call("test-provider:model-b", answered=True)
    finally:
        logger.removeHandler(handler)
    line = "export x: 1/2 requests answered (50%)"
    if mode == "json":
        (record,) = [json.loads(x) for x in records.getvalue().splitlines()]
        assert record["message"].startswith(line)
        assert (record["progress"]["done"], record["progress"]["total"]) == (1, 2)
        assert stream.getvalue() == ""
    elif mode == "tty":
        assert stream.getvalue().startswith("\r\x1b[2K" + line) and stream.getvalue()[-1] == "\n"
    else:
        assert stream.getvalue().startswith(line) and stream.getvalue().count("\n") == 1


def test_no_spark_context_means_no_task_counts(spark) -> None:
    class ConnectLike:  # what a Spark Connect session answers for sparkContext
        @property
        def sparkContext(self):
            from pyspark.errors import PySparkNotImplementedError

            raise PySparkNotImplementedError(
                errorClass="NOT_IMPLEMENTED", messageParameters={"feature": "sparkContext()"}
            )

    assert _status_tracker(ConnectLike()) is None
    with StageProgress("process", spark=ConnectLike(), mode="lines", stream=io.StringIO()):
        pass  # no crash
    tracker = _status_tracker(spark)  # a classic session has task counts
    assert tracker is not None and tracker() is None  # nothing running now


@pytest.mark.slow
@pytest.mark.timeout(1800)  # may make the session's sample run (a chain run)
def test_the_sample_run_showed_its_progress(sample_run: SampleRun) -> None:
    lines = sample_run.progress.splitlines()
    steps = {s.id: s for s in sample_run.result.steps}
    extract = [x for x in lines if x.startswith("step extract: ")]
    calls = steps["extract"].calls
    # the last line has the final figures: all but the refused call answered
    assert extract[-1].startswith(
        f"step extract: {calls - 1}/{calls} requests answered ({100 * (calls - 1) / calls:.0f}%)"
    )
    assert f"(quota {RPM} RPM)" in extract[-1] and "x 429" in extract[-1]
    assert any(x.startswith("process: ") for x in lines)
    assert any(x.startswith("export outputs_delta: ") for x in lines)
