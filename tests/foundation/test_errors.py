"""Every error survives a pickle round trip (they cross Spark's Python workers and Py4J)."""

from __future__ import annotations

import inspect
import pickle

import pytest

from fmf_spark import errors
from fmf_spark.errors import (
    FmfError,
    InferenceError,
    InvalidOutput,
    QuotaExhausted,
    RateLimited,
    error_struct,
)
from fmf_spark.inference.base import Completion, RateLimitInfo

ERROR_CLASSES = sorted(
    (
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, FmfError) and cls.__module__ == errors.__name__
    ),
    key=lambda cls: cls.__name__,
)


def test_every_error_lives_in_errors_py() -> None:
    names = [cls.__name__ for cls in ERROR_CLASSES]
    for name in ("LimiterUnreachable", "ParseFailure", "ParseTimeout"):
        assert name in names


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_pickle_round_trip_keeps_every_field(cls: type[FmfError]) -> None:
    error = cls("it broke", hint="try again", retryable=True)
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is cls
    assert vars(back) == vars(error)
    assert (back.message, back.code, back.hint, back.retryable, str(back)) == (
        "it broke",
        cls.code,
        "try again",
        True,
        "it broke",
    )


def test_inference_fields_are_declared_and_pickled() -> None:
    completion = Completion("not json", 10, 5, "stop", 12, "gpt-4o-mini")
    error = InvalidOutput("bad JSON", attempts=2, elapsed_ms=40, completion=completion)
    back = pickle.loads(pickle.dumps(error))
    assert (back.attempts, back.elapsed_ms, back.completion) == (2, 40, completion)
    limited = RateLimited("slow down", retry_after=1.5, rate_limit=RateLimitInfo(0, 10))
    back_limited = pickle.loads(pickle.dumps(limited))
    assert (back_limited.retry_after, back_limited.rate_limit) == (1.5, RateLimitInfo(0, 10))
    assert back_limited.code == "inference.rate_limited" and back_limited.retryable
    assert (InferenceError("x").attempts, InferenceError("x").completion) == (0, None)


def test_the_partial_outputs_of_quota_exhausted_stay_on_the_driver() -> None:
    error = QuotaExhausted("no quota", partial=object())  # a DataFrame does not pickle
    back = pickle.loads(pickle.dumps(error))
    assert back.partial is None and back.message == "no quota"


def test_one_error_struct_for_every_failed_row() -> None:
    assert error_struct("a.b", "x" * 2001) == {
        "code": "a.b",
        "message": "x" * 2000 + "...",
        "retryable": False,
    }
    assert RateLimited("wait").to_struct() == {
        "code": "inference.rate_limited",
        "message": "wait",
        "retryable": True,
    }
