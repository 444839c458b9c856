"""Contract tests: the Azure OpenAI, OpenAI and Bedrock clients against the simulator.

The same tests run for every provider over real HTTP with the real SDKs; the simulator's
stats count the calls that really reached it.
"""

from __future__ import annotations

import pytest

from fmf_spark.errors import (
    AuthError,
    ContentFiltered,
    ContextLengthExceeded,
    InvalidOutput,
    InvalidRequest,
    QuotaExhausted,
    RateLimited,
    Transient,
)
from fmf_spark.inference import (
    CompletionParams,
    Message,
    ProviderRuntime,
    QuotaSpec,
    RetryingClient,
    RetryPolicy,
)
from fmf_spark.inference.limiter import LocalLimiter
from fmf_spark.simulator import FaultRule, SimulatorServer
from tests.inference.conftest import PROVIDERS, make_config, make_resolver

SCHEMA = {
    "type": "object",
    "properties": {"vendor": {"type": "string"}, "total": {"type": "number"}},
    "required": ["vendor", "total"],
}


def client_for(sim: SimulatorServer, provider: str, **kwargs: object) -> RetryingClient:
    cfg = make_config(sim.url, provider_overrides={"timeout_s": 0.5})
    runtime = ProviderRuntime.build(provider, cfg.inference.providers[provider], make_resolver(cfg))
    policy = RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.02)
    return RetryingClient(runtime.adapter(), policy, **kwargs)  # type: ignore[arg-type]


def ask(client: RetryingClient, text: str, **params: object) -> object:
    messages = [Message("system", "You extract facts."), Message("user", text)]
    return client.complete(messages, CompletionParams(max_tokens=64, **params))  # type: ignore[arg-type]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_text_answer_usage_and_model(sim: SimulatorServer, provider: str) -> None:
    client = client_for(sim, provider)
    answer = ask(client, "Invoice from ACME Corp")
    stats = sim.stats()
    assert "Invoice from ACME Corp" in answer.text  # type: ignore[attr-defined]
    assert answer.prompt_tokens == stats["prompt_tokens"]  # type: ignore[attr-defined]
    assert answer.completion_tokens == stats["completion_tokens"] > 0  # type: ignore[attr-defined]
    assert (answer.attempts, answer.finish_reason) == (1, "stop")  # type: ignore[attr-defined]
    assert answer.model == ("anthropic.claude-3-haiku" if provider == "bedrock" else "gpt-4o-mini")  # type: ignore[attr-defined]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_structured_output_is_parsed_and_validated(sim: SimulatorServer, provider: str) -> None:
    answer = ask(client_for(sim, provider), "Invoice from ACME Corp", response_schema=SCHEMA)
    assert set(answer.json) == {"vendor", "total"}  # type: ignore[attr-defined]
    assert isinstance(answer.json["total"], float)  # type: ignore[attr-defined]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "kind", ["rate_limit", "server_error", "unavailable", "request_timeout", "timeout", "malformed"]
)
def test_each_retryable_error_is_retried_and_counted(
    sim: SimulatorServer, provider: str, kind: str
) -> None:
    sim.set_faults([FaultRule(kind=kind, match="FLAKY", times=2, retry_after_s=0.05)])  # type: ignore[arg-type]
    answer = ask(client_for(sim, provider), "a FLAKY request")
    stats = sim.stats()
    assert answer.attempts == 3  # type: ignore[attr-defined]
    assert stats["requests"] == 3 and stats["ok"] == 1
    assert stats[f"fault_{kind}"] == 2


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("content_filter", ContentFiltered),
        ("content_filter_output", ContentFiltered),
        ("bad_request", InvalidRequest),
        ("context_length", ContextLengthExceeded),
        ("auth", AuthError),
        ("quota_exhausted", QuotaExhausted),
    ],
)
def test_each_non_retryable_error_makes_exactly_one_call(
    sim: SimulatorServer, provider: str, kind: str, error: type[Exception]
) -> None:
    if provider == "bedrock" and kind == "content_filter_output":
        kind = "content_filter"  # Bedrock reports both as a guardrail stop reason
    sim.set_faults([FaultRule(kind=kind, match="BAD")])  # type: ignore[arg-type]
    with pytest.raises(error) as caught:
        ask(client_for(sim, provider), "a BAD request")
    assert caught.value.attempts == 1  # type: ignore[attr-defined]
    assert sim.stats()["requests"] == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_transient_errors_stop_after_max_attempts(sim: SimulatorServer, provider: str) -> None:
    sim.set_faults([FaultRule(kind="server_error", match="DOWN")])
    with pytest.raises(Transient) as caught:
        ask(client_for(sim, provider), "DOWN again")
    assert caught.value.attempts == 3  # type: ignore[attr-defined]
    assert caught.value.retryable
    assert sim.stats()["requests"] == 3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_rate_limits_are_bounded_by_time_not_count(sim: SimulatorServer, provider: str) -> None:
    sim.set_faults([FaultRule(kind="rate_limit", match="BUSY", retry_after_s=0.05)])
    client = client_for(sim, provider)
    # Bedrock throttles without Retry-After: the backoff must be short to fit the budget
    client.policy = RetryPolicy(
        max_attempts=3, base_delay_s=0.01, max_delay_s=0.02, max_rate_limited_s=0.5
    )
    with pytest.raises(RateLimited) as caught:
        ask(client, "BUSY forever")
    # more calls than max_attempts: 429s are waited out until the time budget is spent
    assert caught.value.attempts > 3  # type: ignore[attr-defined]
    assert sim.stats()["requests"] == caught.value.attempts  # type: ignore[attr-defined]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_invalid_json_is_an_error_or_one_repair_call(sim: SimulatorServer, provider: str) -> None:
    sim.set_faults([FaultRule(kind="invalid_json", match="SLOPPY", times=1)])
    with pytest.raises(InvalidOutput) as caught:
        ask(client_for(sim, provider), "SLOPPY one", response_schema=SCHEMA)
    assert caught.value.completion.completion_tokens > 0  # type: ignore[attr-defined]
    assert sim.stats()["requests"] == 1
    sim.reset()
    sim.set_faults([FaultRule(kind="invalid_json", match="SLOPPY", times=1)])
    answer = ask(client_for(sim, provider, repair_retry=True), "SLOPPY two", response_schema=SCHEMA)
    assert answer.attempts == 2 and set(answer.json) == {"vendor", "total"}  # type: ignore[attr-defined]
    assert sim.stats()["requests"] == 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_quota_exhaustion_stops_the_shared_limiter(sim: SimulatorServer, provider: str) -> None:
    sim.set_faults([FaultRule(kind="quota_exhausted")])
    limiter = LocalLimiter(QuotaSpec(requests_per_minute=6000, tokens_per_minute=None))
    client = client_for(sim, provider, limiter=limiter)
    with pytest.raises(QuotaExhausted):
        ask(client, "first")
    with pytest.raises(QuotaExhausted) as caught:
        ask(client, "second")
    assert caught.value.attempts == 0  # type: ignore[attr-defined]
    assert sim.stats()["requests"] == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_streaming_callback_receives_the_answer(sim: SimulatorServer, provider: str) -> None:
    pieces: list[str] = []
    client = client_for(sim, provider)
    answer = client.complete(
        [Message("user", "stream me a reply")],
        CompletionParams(max_tokens=64),
        on_token=pieces.append,
    )
    assert "".join(pieces) == answer.text
    assert len(pieces) == (1 if provider == "bedrock" else len(answer.text.split()))
    assert answer.completion_tokens > 0
