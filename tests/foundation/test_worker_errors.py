"""An FmfError raised in a Spark Python worker reaches the user as one line."""

from __future__ import annotations

import pickle

import pytest

from fmf_spark import cli, errors
from fmf_spark.errors import ChainError, FmfError, RateLimited, recover_error
from fmf_spark.processing.text import ParseFailure
from tests.foundation import probe_commands
from tests.foundation.probe_commands import CODE, HINT, MESSAGE


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "tests.foundation.probe_commands")
    )


def test_a_worker_error_is_recovered_from_sparks_exception(spark) -> None:
    job = spark.range(2, numPartitions=1).mapInPandas(probe_commands.raise_in_worker, "id long")
    with pytest.raises(Exception) as caught:
        job.collect()
    assert not isinstance(caught.value, FmfError)  # Spark's wrapper, with the text only
    error = recover_error(caught.value)
    assert isinstance(error, ChainError)
    assert (error.code, error.message, error.hint) == (CODE, MESSAGE, HINT)


@pytest.mark.parametrize("api", ["dataframe", "rdd"])
def test_the_cli_prints_one_line_for_a_worker_error(
    spark, probe, capsys: pytest.CaptureFixture[str], api: str
) -> None:
    argv = ["probe-worker-error", *(["--rdd"] if api == "rdd" else [])]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"error: {CODE}: {MESSAGE} (hint: {HINT})"]


def test_debug_adds_the_whole_trace(spark, probe, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--debug", "probe-worker-error"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "raise_in_worker" in err  # the worker's frames
    assert err.rstrip().splitlines()[-1] == f"error: {CODE}: {MESSAGE} (hint: {HINT})"


def test_errors_pickle_with_their_type_code_and_hint() -> None:
    raised = [
        ChainError(MESSAGE, code=CODE, hint=HINT),
        RateLimited("429", retry_after=2.5),
        ParseFailure("not a zip", code="processing.corrupt"),
        *(
            cls("m")
            for cls in vars(errors).values()
            if isinstance(cls, type) and issubclass(cls, FmfError)
        ),
    ]
    for error in raised:
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error)
        assert (back.code, back.message, back.hint, back.retryable) == (
            error.code,
            error.message,
            error.hint,
            error.retryable,
        )
        assert back.one_line() == error.one_line()
    assert pickle.loads(pickle.dumps(raised[1])).retry_after == 2.5


def test_recover_error_finds_nothing_in_other_errors() -> None:
    assert recover_error(ValueError("fmf-error: {not json")) is None
    assert recover_error(RuntimeError("plain")) is None
    # a marker naming a class outside the package gives the base class, not an import
    text = 'fmf-error: {"type": "os.system", "code": "x.y", "message": "m", "hint": null}'
    found = recover_error(RuntimeError(text))
    assert type(found) is FmfError and found.code == "x.y"


def test_the_cli_summarises_an_unexpected_worker_error_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = (
        "An exception was thrown from the Python worker.\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n'
        "ZeroDivisionError: division by zero\n"
    )
    assert cli._summary(RuntimeError(text)) == "ZeroDivisionError: division by zero"
    assert cli._summary(RuntimeError("first\nsecond")) == "RuntimeError: first"
