"""``fmf_spark.spark.side_by_side``: independent driver actions at the same time.

Plain callables stand in for Spark actions here; the chain and processing tests run it
with real Delta writes.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar

import pytest

from fmf_spark.spark import side_by_side

FIELD: ContextVar[str] = ContextVar("FIELD", default="unset")


def test_actions_overlap_and_all_end_before_it_returns() -> None:
    both_started = threading.Barrier(2, timeout=10)
    done: list[str] = []

    def action(name: str) -> None:
        both_started.wait()  # a deadlock (BrokenBarrierError) unless both run at once
        done.append(name)

    side_by_side(lambda: action("first"), lambda: action("second"))
    assert sorted(done) == ["first", "second"]


def test_the_results_come_back_in_argument_order() -> None:
    assert side_by_side(lambda: "docs", lambda: 6, lambda: None) == ["docs", 6, None]


def test_the_callers_context_reaches_every_action() -> None:
    seen: list[str] = []
    token = FIELD.set("run-1")
    try:
        side_by_side(lambda: seen.append(FIELD.get()), lambda: seen.append(FIELD.get()))
    finally:
        FIELD.reset(token)
    assert seen == ["run-1", "run-1"]


def test_the_first_failure_in_argument_order_is_raised_after_the_others_end() -> None:
    release = threading.Event()
    ended: list[str] = []

    def slow_then_fail() -> None:
        release.wait(10)
        ended.append("second")
        raise KeyError("second")

    def fail_first() -> None:
        release.set()
        raise ValueError("first")

    with pytest.raises(ValueError, match="first"):
        side_by_side(fail_first, slow_then_fail, lambda: ended.append("third"))
    assert sorted(ended) == ["second", "third"]


def test_a_failure_in_a_side_thread_reaches_the_caller() -> None:
    with pytest.raises(KeyError, match="side"):
        side_by_side(lambda: None, lambda: (_ for _ in ()).throw(KeyError("side")))
