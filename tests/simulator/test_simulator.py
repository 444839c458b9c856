"""The simulator over real HTTP: quota windows, headers, faults, answers, stats."""

from __future__ import annotations

import json

import httpx
import jsonschema
import openai
import pytest

from fmf_spark.simulator import FaultRule, SimulatorServer, SimulatorSettings

SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "kind": {"enum": ["invoice", "letter"]},
        "ok": {"type": "boolean"},
    },
    "required": ["title", "score", "tags", "kind", "ok"],
}


def _chat(url: str, content: str, **extra: object) -> httpx.Response:
    body = {"model": "m", "messages": [{"role": "user", "content": content}], **extra}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10)


class FixedClock:
    """The simulator's clock, moved by the test (quota windows never depend on real time)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_window_quota_rejects_over_limit_with_retry_after_and_headers() -> None:
    # 60 RPM over 10 s windows = 10 requests per window
    clock = FixedClock(1_000_002.5)  # 7.5 s before the window ends
    settings = SimulatorSettings(requests_per_minute=60, window_s=10, latency_ms=0)
    with SimulatorServer(settings, clock=clock) as sim:
        answers = [_chat(sim.url, f"q{i}", max_tokens=5) for i in range(13)]
        clock.now += 10  # the next window
        after = _chat(sim.url, "next window", max_tokens=5)
        stats = sim.stats()
    assert [r.status_code for r in answers] == [200] * 10 + [429] * 3
    assert answers[0].headers["x-ratelimit-remaining-requests"] == "9"
    assert answers[9].headers["x-ratelimit-remaining-requests"] == "0"
    assert answers[9].headers["x-ratelimit-reset-requests"] == "7.500s"
    assert answers[10].headers["retry-after"] == "8"
    assert answers[10].headers["retry-after-ms"] == "7500"
    assert after.status_code == 200
    assert (stats["accepted"], stats["rejected_429"], stats["max_requests_per_window"]) == (
        11,
        3,
        10,
    )


def test_tokens_charged_prompt_plus_max_tokens_and_rejected_over_tpm() -> None:
    # 600 TPM over 60 s windows: 600 tokens per window
    settings = SimulatorSettings(
        requests_per_minute=None, tokens_per_minute=600, window_s=60, latency_ms=0
    )
    with SimulatorServer(settings, clock=FixedClock()) as sim:
        ok = _chat(sim.url, "hello", max_tokens=500)
        assert ok.status_code == 200
        remaining = int(ok.headers["x-ratelimit-remaining-tokens"])
        charged = sim.stats()["tokens_charged"]
        assert charged == ok.json()["usage"]["prompt_tokens"] + 500
        assert remaining == 600 - charged
    settings = SimulatorSettings(
        requests_per_minute=None, tokens_per_minute=10, window_s=60, latency_ms=0
    )
    with SimulatorServer(settings, clock=FixedClock()) as sim:
        over = _chat(sim.url, "hello", max_tokens=50)
        assert over.status_code == 429
        assert over.json()["error"]["code"] == "rate_limit_exceeded"
        assert sim.stats()["tokens_charged"] == 0


def test_answers_are_deterministic_and_valid_for_the_schema() -> None:
    with SimulatorServer(SimulatorSettings(latency_ms=0)) as sim:
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="k", max_retries=0)
        fmt = {"type": "json_schema", "json_schema": {"name": "doc", "schema": SCHEMA}}
        msgs = [{"role": "user", "content": "Invoice 42 from ACME for widgets"}]
        first = client.chat.completions.create(model="m", messages=msgs, response_format=fmt)
        again = client.chat.completions.create(model="m", messages=msgs, response_format=fmt)
        text = client.chat.completions.create(model="m", messages=msgs, max_tokens=100)
        assert first.choices[0].message.content == again.choices[0].message.content
        value = json.loads(first.choices[0].message.content or "")
        jsonschema.validate(value, SCHEMA)
        assert "Invoice 42 from ACME" in (text.choices[0].message.content or "")
        assert sim.stats()["repeat_success"] == 1  # the same body answered twice


def test_max_tokens_truncates_with_finish_reason_length() -> None:
    with SimulatorServer(SimulatorSettings(latency_ms=0)) as sim:
        body = _chat(sim.url, "a long question with many words in it", max_tokens=3).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] <= 3


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("server_error", 500, "server_error"),
        ("unavailable", 503, "service_unavailable"),
        ("request_timeout", 408, "timeout"),
        ("content_filter", 400, "content_filter"),
        ("bad_request", 400, "invalid_request"),
        ("context_length", 400, "context_length_exceeded"),
        ("auth", 401, "invalid_api_key"),
        ("quota_exhausted", 429, "insufficient_quota"),
        ("rate_limit", 429, "rate_limit_exceeded"),
    ],
)
def test_targeted_faults_fire_the_given_number_of_times(kind: str, status: int, code: str) -> None:
    rules = [FaultRule(kind=kind, match="FAIL", times=1)]  # type: ignore[arg-type]
    with SimulatorServer(SimulatorSettings(latency_ms=0, faults=rules)) as sim:
        first = _chat(sim.url, "please FAIL")
        second = _chat(sim.url, "please FAIL")
        other = _chat(sim.url, "fine")
        stats = sim.stats()
    assert first.status_code == status
    assert first.json()["error"]["code"] == code
    assert second.status_code == 200 and other.status_code == 200
    assert stats[f"fault_{kind}"] == 1


def test_malformed_body_and_filtered_output() -> None:
    rules = [
        FaultRule(kind="malformed", match="BROKEN"),
        FaultRule(kind="content_filter_output", match="FILTER"),
    ]
    with SimulatorServer(SimulatorSettings(latency_ms=0, faults=rules)) as sim:
        broken = _chat(sim.url, "BROKEN")
        filtered = _chat(sim.url, "FILTER")
    assert broken.status_code == 200
    with pytest.raises(ValueError):
        broken.json()
    assert filtered.json()["choices"][0]["finish_reason"] == "content_filter"


def test_random_faults_follow_the_ratio_with_a_fixed_seed() -> None:
    settings = SimulatorSettings(latency_ms=0, error_5xx_ratio=0.5, seed=7, tokens_per_minute=None)
    with SimulatorServer(settings) as sim:
        codes = [_chat(sim.url, f"x{i}").status_code for i in range(40)]
    assert 10 <= codes.count(500) <= 30
    assert codes.count(500) + codes.count(200) == 40


def test_api_key_is_checked_and_azure_route_uses_the_deployment() -> None:
    with SimulatorServer(SimulatorSettings(latency_ms=0, api_key="sekret-key")) as sim:
        azure = openai.AzureOpenAI(
            azure_endpoint=sim.url, api_key="sekret-key", api_version="2024-10-21", max_retries=0
        )
        answer = azure.chat.completions.create(
            model="my-deployment", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.model == "my-deployment"
        wrong = openai.OpenAI(base_url=sim.openai_base_url, api_key="nope", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


def test_stream_sends_server_sent_events_with_usage() -> None:
    with SimulatorServer(SimulatorSettings(latency_ms=0)) as sim:
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="k", max_retries=0)
        stream = client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "stream this answer"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[m] Answer about: stream this answer."
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_stats_and_admin_endpoints_over_http() -> None:
    with SimulatorServer(SimulatorSettings(latency_ms=0)) as sim:
        _chat(sim.url, "one")
        assert httpx.get(f"{sim.url}/stats").json()["accepted"] == 1
        httpx.post(f"{sim.url}/admin/storm", json={"seconds": 60, "retry_after_s": 2})
        stormy = _chat(sim.url, "two")
        assert stormy.status_code == 429 and stormy.headers["retry-after"] == "2"
        httpx.post(f"{sim.url}/admin/reset")
        assert _chat(sim.url, "three").status_code == 200
        stats = httpx.get(f"{sim.url}/stats").json()
    assert stats["requests"] == 1 and stats["storm_429"] == 0


def test_bedrock_converse_route_refunds_unused_max_tokens() -> None:
    import boto3
    from botocore.config import Config

    with SimulatorServer(SimulatorSettings(latency_ms=0)) as sim:
        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=sim.url,
            region_name="us-east-1",
            config=Config(retries={"total_max_attempts": 1}),
        )
        answer = client.converse(
            modelId="anthropic.claude-3-5-sonnet-20240620-v1:0",
            system=[{"text": "You are terse."}],
            messages=[{"role": "user", "content": [{"text": "Hello Bedrock"}]}],
            inferenceConfig={"maxTokens": 400},
        )
        stats = sim.stats()
    usage = answer["usage"]
    assert "Hello Bedrock" in answer["output"]["message"]["content"][0]["text"]
    assert stats["tokens_charged"] == usage["inputTokens"] + usage["outputTokens"]


def test_max_tokens_accounting_charges_only_max_tokens() -> None:
    settings = SimulatorSettings(
        requests_per_minute=None,
        tokens_per_minute=600,
        window_s=60,
        latency_ms=0,
        token_accounting="max_tokens",
    )
    with SimulatorServer(settings, clock=FixedClock()) as sim:
        answers = [
            _chat(sim.url, f"a long question number {i} " * 20, max_tokens=250) for i in range(3)
        ]
        stats = sim.stats()
    # the prompts (100+ tokens each) are free: two requests of 250 fit in 600, not three
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert [r.headers["x-ratelimit-remaining-tokens"] for r in answers] == ["350", "100", "100"]
    assert stats["tokens_charged"] == 500 and stats["prompt_tokens"] > 200


def test_every_openai_answer_carries_what_is_left_of_the_window() -> None:
    clock = FixedClock(1_000_004.0)  # 6 s before the window ends
    settings = SimulatorSettings(
        requests_per_minute=12, tokens_per_minute=None, window_s=10, latency_ms=0
    )
    with SimulatorServer(settings, clock=clock) as sim:
        ok = [_chat(sim.url, f"q{i}") for i in range(2)]
        refused = _chat(sim.url, "one too many")
        clock.now += 10  # a new window, in a storm
        sim.storm(5.0, retry_after_s=1.0)
        stormy = _chat(sim.url, "busy")
    assert [r.headers["x-ratelimit-remaining-requests"] for r in ok] == ["1", "0"]
    assert refused.status_code == 429
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-reset-requests"] == "6.000s"
    assert "x-ratelimit-remaining-tokens" not in refused.headers  # no TPM quota here
    # a 429 of a storm: the window still has room, and the headers say so
    assert stormy.status_code == 429 and stormy.headers["x-ratelimit-remaining-requests"] == "2"


def test_bedrock_throttles_like_bedrock() -> None:
    settings = SimulatorSettings(requests_per_minute=1, window_s=60, latency_ms=0)
    body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    with SimulatorServer(settings, clock=FixedClock()) as sim:
        url = f"{sim.url}/model/anthropic.claude-3-haiku/converse"
        answers = [httpx.post(url, json=body, timeout=10) for _ in range(2)]
    ok, throttled = answers
    assert ok.status_code == 200 and throttled.status_code == 429
    assert throttled.headers["x-amzn-ErrorType"].startswith("ThrottlingException:")
    assert throttled.json() == {"message": "Too many requests, please wait before trying again."}
    for answer in answers:  # Bedrock sends neither Retry-After nor rate-limit headers
        assert not {h for h in answer.headers if h.startswith(("retry-after", "x-ratelimit"))}


def test_requests_are_counted_per_user_and_window() -> None:
    clock = FixedClock(1_000_000.0)
    settings = SimulatorSettings(
        requests_per_minute=18, tokens_per_minute=None, window_s=10, latency_ms=0
    )
    with SimulatorServer(settings, clock=clock) as sim:
        for i in range(2):
            _chat(sim.url, f"ours {i}", max_tokens=5)
        for i in range(2):
            _chat(sim.url, f"theirs {i}", max_tokens=5, user="cotenant")
        clock.now += 10
        _chat(sim.url, "theirs again", max_tokens=5, user="cotenant")
        stats = sim.stats()
    ours, theirs = stats["by_user"][""], stats["by_user"]["cotenant"]
    assert (ours["requests"], ours["ok"], ours.get("rejected_429", 0)) == (2, 2, 0)
    assert (theirs["requests"], theirs["ok"], theirs["rejected_429"]) == (3, 2, 1)
    assert theirs["first_ts"] == 1_000_000.0 and theirs["last_ts"] == 1_000_010.0
    counted = [(i - 100_000, u, r) for i, u, r, _ in stats["windows"]]
    assert counted == [(0, "", 2), (0, "cotenant", 1), (1, "cotenant", 1)]
