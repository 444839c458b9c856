"""Redaction: every registered secret is masked in both log formats, also URL-encoded,
and SAS signatures are masked even when never registered."""

from __future__ import annotations

import io
import json
import logging

import pytest
from pydantic import SecretStr

from fmf_spark.observability.logging import configure_logging, get_logger
from fmf_spark.observability.redaction import clear_secrets, redact, register_secret

SECRET = "s3cr3t/Val+ue=&x"


@pytest.fixture(autouse=True)
def _registered():
    register_secret(SECRET)
    yield
    clear_secrets()


def test_plain_and_encoded_forms_are_masked() -> None:
    from urllib.parse import quote, quote_plus

    text = f"a={SECRET} b={quote(SECRET, safe='')} c={quote_plus(SECRET)}"
    assert redact(text) == "a=*** b=*** c=***"


def test_sas_signature_is_masked_without_registration() -> None:
    url = "https://acct.blob.core.windows.net/c/f?sv=2024-01-01&sp=r&sig=AbC%2Bdef%3D&se=2030"
    assert (
        redact(url) == "https://acct.blob.core.windows.net/c/f?sv=2024-01-01&sp=r&sig=***&se=2030"
    )


def test_bearer_token_is_masked() -> None:
    assert redact("Authorization: Bearer eyJhbGciOi.abc.def") == "Authorization: Bearer ***"


def test_short_values_are_not_registered() -> None:
    register_secret("ab")
    assert redact("ab abc") == "ab abc"


@pytest.mark.parametrize("fmt", ["human", "json"])
def test_log_formats_mask_messages_args_and_tracebacks(fmt: str) -> None:
    stream = io.StringIO()
    configure_logging(fmt, stream=stream)
    log = get_logger("test")
    log.info("key is %s", SECRET)
    try:
        raise RuntimeError(f"connect failed with key={SECRET}")
    except RuntimeError:
        log.exception("call failed")
    out = stream.getvalue()
    assert SECRET not in out
    assert out.count("***") >= 2  # the argument and the exception's message
    if fmt == "json":
        records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert [r["level"] for r in records] == ["INFO", "ERROR"]
        assert "exc" in records[1]


def test_third_party_loggers_are_filtered(caplog: pytest.LogCaptureFixture) -> None:
    configure_logging("human", stream=io.StringIO())
    with caplog.at_level(logging.INFO):
        logging.getLogger("botocore.test").info("sending secret %s", SECRET)
    assert SECRET not in caplog.text


def test_secretstr_repr_hides_value() -> None:
    assert SECRET not in repr(SecretStr(SECRET))
