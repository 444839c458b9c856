"""The batch runner on real Spark against the simulator: rows, errors, cache, quota, storms."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from fmf_spark.errors import QuotaExhausted
from fmf_spark.inference import (
    InferenceStep,
    compute_cost,
    count_tokens,
    estimate_prompt_tokens,
    infer,
    inference_metrics,
    request_id,
)
from fmf_spark.schemas import OUTPUTS_SCHEMA
from fmf_spark.simulator import FaultRule, SimulatorServer
from tests.inference.conftest import PRICES, PROVIDERS, make_config, make_resolver

INPUT_DDL = "doc_id string, chunk_id string, messages string"


def msgs(text: str) -> str:
    return json.dumps(
        [{"role": "system", "content": "Summarise."}, {"role": "user", "content": text}]
    )


def step_for(provider: str, **kwargs: Any) -> InferenceStep:
    defaults: dict[str, Any] = {"max_tokens": 64, "temperature": 0.0}
    defaults.update(kwargs)
    return InferenceStep("summary", provider, "summarise", "3", "hash-abc", **defaults)


def run(
    spark: SparkSession,
    sim: SimulatorServer,
    rows: list[tuple[Any, ...]],
    step: InferenceStep,
    **kw: Any,
) -> DataFrame:
    inference = kw.pop("inference", {"tasks": 2})
    cfg = make_config(sim.url, provider_overrides=kw.pop("provider_overrides", None), **inference)
    df = spark.createDataFrame(rows, INPUT_DDL)
    return infer(df, step, cfg, resolver=make_resolver(cfg), **kw)


MODEL = {
    "openai": "gpt-4o-mini",
    "azure": "gpt-4o-mini",
    "bedrock": "anthropic.claude-3-haiku",
    "databricks": "gpt-4o-mini",
}
#: the name the simulator sees (Azure: the deployment; Model Serving: the endpoint)
WIRE_MODEL = {
    "openai": "gpt-4o-mini",
    "azure": "dep-mini",
    "bedrock": "anthropic.claude-3-haiku",
    "databricks": "dbx-mini",
}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_one_output_row_per_input_row_and_errors_are_rows(
    spark: SparkSession, sim: SimulatorServer, provider: str
) -> None:
    sim.set_faults([FaultRule(kind="bad_request", match="rejected")])
    rows = [
        ("d1", "c1", msgs("alpha invoice text")),
        ("d1", "c2", msgs("beta contract text")),
        ("d2", None, msgs("alpha invoice text")),  # same request as c1: called once
        ("d3", "c4", msgs("this one is rejected")),
        ("d4", "c5", "not json"),
    ]
    step = step_for(provider)
    out = run(spark, sim, rows, step)
    assert out.schema == OUTPUTS_SCHEMA

    model = MODEL[provider]

    def ok(doc: str, chunk: str | None, text: str) -> tuple[Any, ...]:
        answer = f"[{WIRE_MODEL[provider]}] Answer about: {text}."
        prompt = estimate_prompt_tokens(msgs(text))
        completion = count_tokens(answer)
        cost = compute_cost(model, prompt, completion, _prices())
        rid = request_id(step, model, msgs(text))
        return (rid, doc, chunk, answer, None, prompt, completion, cost, 1, "ok", None)

    def err(doc: str, chunk: str, messages: str, code: str, calls: int) -> tuple[Any, ...]:
        rid = request_id(step, model, messages)
        return (rid, doc, chunk, None, None, None, None, None, calls, "error", code)

    expected = spark.createDataFrame(
        [
            ok("d1", "c1", "alpha invoice text"),
            ok("d1", "c2", "beta contract text"),
            ok("d2", None, "alpha invoice text"),
            err("d3", "c4", msgs("this one is rejected"), "inference.invalid_request", 1),
            err("d4", "c5", "not json", "inference.invalid_request", 0),
        ],
        "request_id string, doc_id string, chunk_id string, output_text string, "
        "output_json string, prompt_tokens bigint, completion_tokens bigint, cost_usd double, "
        "attempts int, status string, code string",
    )
    actual = out.select(
        "request_id",
        "doc_id",
        "chunk_id",
        "output_text",
        "output_json",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "attempts",
        "status",
        "error.code",
    )
    assertDataFrameEqual(actual, expected)
    assert (
        out.where(
            "step = 'summary' and prompt_id = 'summarise' and prompt_version = '3' "
            f"and prompt_hash = 'hash-abc' and model = '{model}'"
        ).count()
        == 5
    )
    stats = sim.stats()
    assert (stats["requests"], stats["ok"], stats["repeat_success"]) == (3, 2, 0)


def _prices() -> Any:
    from fmf_spark.config.inference import ModelPrice

    return {k: ModelPrice(**v) for k, v in PRICES.items()}


def test_structured_output_lands_in_output_json(spark: SparkSession, sim: SimulatorServer) -> None:
    schema = {
        "type": "object",
        "properties": {"kind": {"enum": ["invoice", "letter"]}, "amount": {"type": "number"}},
        "required": ["kind", "amount"],
    }
    out = run(
        spark,
        sim,
        [("d1", "c1", msgs("Invoice for 12 EUR"))],
        step_for("openai", response_schema=schema),
    )
    row = out.collect()[0]
    assert row.status == "ok"
    value = json.loads(row.output_json)
    assert value["kind"] in ("invoice", "letter") and isinstance(value["amount"], float)


def test_rerun_with_cache_calls_only_failed_rows_then_nothing(
    spark: SparkSession, sim: SimulatorServer, tmp_path: Any
) -> None:
    cache = str(tmp_path / "outputs")
    rows = [(f"d{i}", f"c{i}", msgs(f"document number {i}")) for i in range(6)]
    step = step_for("openai")
    retry = {"retry": {"max_attempts": 2, "base_delay_s": 0.01, "max_delay_s": 0.02}}

    sim.set_faults([FaultRule(kind="server_error", match="number 4")])
    first = run(spark, sim, rows, step, cache_path=cache, provider_overrides=retry)
    assert sorted(r.status for r in first.collect()) == ["error"] + ["ok"] * 5
    first.write.format("delta").save(cache)
    assert sim.stats()["requests"] == 5 + 2  # row 4 failed twice

    sim.set_faults([])
    sim.reset()
    second = run(spark, sim, rows, step, cache_path=cache, provider_overrides=retry)
    assert sim.stats()["requests"] == 1  # only the failed row is called again
    assert {r.doc_id: (r.status, r.attempts) for r in second.collect()} == {
        **{f"d{i}": ("ok", 0) for i in (0, 1, 2, 3, 5)},
        "d4": ("ok", 1),
    }
    second.write.format("delta").mode("overwrite").save(cache)

    sim.reset()
    third = run(spark, sim, rows, step, cache_path=cache)
    assert sim.stats()["requests"] == 0
    assertDataFrameEqual(third.drop("attempts"), second.drop("attempts"))
    metrics = inference_metrics(third)
    assert (metrics["rows"], metrics["ok"], metrics["cached"], metrics["calls"]) == (6, 6, 6, 0)
    assert metrics["cost_usd"] == 0.0


def test_quota_exhaustion_stops_the_job_with_a_clear_error(
    spark: SparkSession, sim: SimulatorServer
) -> None:
    sim.set_faults([FaultRule(kind="quota_exhausted", match="number 3")])
    rows = [(f"d{i}", f"c{i}", msgs(f"document number {i}")) for i in range(10)]
    with pytest.raises(QuotaExhausted) as caught:
        run(
            spark,
            sim,
            rows,
            step_for("openai", concurrency=1),
            inference={"tasks": 1},
            provider_overrides={"rate_limit": {"requests_per_minute": 60_000}},
        )
    message = caught.value.one_line()
    assert "no quota left" in message and "insufficient_quota" in message
    assert "rerun once the quota resets" in message
    partial = caught.value.partial  # type: ignore[attr-defined]
    statuses = {r.doc_id: (r.status, r.error.code if r.error else None) for r in partial.collect()}
    assert len(statuses) == 10
    called = sim.stats()["requests"]
    ok = [d for d, (s, _) in statuses.items() if s == "ok"]
    assert len(ok) == called - 1  # every call but the exhausted one succeeded
    assert all(code == "inference.quota_exhausted" for s, code in statuses.values() if s == "error")


@pytest.mark.slow
def test_a_30s_429_storm_ends_with_every_row_succeeded_once(
    spark: SparkSession, sim: SimulatorServer
) -> None:
    rows = [(f"d{i}", f"c{i}", msgs(f"storm document {i}")) for i in range(20)]
    sim.storm(30.0, retry_after_s=2.0)
    out = run(
        spark,
        sim,
        rows,
        step_for("azure"),
        provider_overrides={
            "rate_limit": {"requests_per_minute": 6000, "tokens_per_minute": 10**7}
        },
    )
    stats = sim.stats()
    result = out.collect()
    assert all(r.status == "ok" for r in result) and len(result) == 20
    assert stats["ok"] == 20 and stats["repeat_success"] == 0
    assert stats["storm_429"] > 0
    # every call beyond the first of each row was a 429 of the storm
    assert sum(r.attempts for r in result) == 20 + stats["storm_429"]
