"""OpenTelemetry: the sample run's trace and metrics as a collector receives them.

The receiver (tests/servers/otlp.py) decodes the OTLP/HTTP protobuf payloads; the
expected values come from the run's own outputs table and the simulator's counters.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.chains.helpers import ROOT
from tests.observability.conftest import OTEL_TOKEN, SampleRun

# the first test also makes the session's sample run (a chain run): allow for a busy machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

DELTA = 1  # AGGREGATION_TEMPORALITY_DELTA


def _called(spark, run: SampleRun) -> dict[str, dict[str, Any]]:
    """Each request the run called: its step and result, from the outputs table."""
    outputs = spark.read.format("delta").load(f"{run.result.run_dir}/outputs")
    rows = outputs.where("attempts > 0").dropDuplicates(["request_id"]).collect()
    return {
        r["request_id"]: {
            "step": r["step"],
            "status": r["status"],
            "error_code": r["error"]["code"] if r["error"] else None,
            "attempts": r["attempts"],
            "input_tokens": r["prompt_tokens"],
            "output_tokens": r["completion_tokens"],
            "cost_usd": r["cost_usd"],
            "latency_ms": r["latency_ms"],
        }
        for r in rows
    }


def _expected_429(run: SampleRun) -> int:
    stats = run.simulator_stats
    return sum(int(stats.get(k) or 0) for k in ("rejected_429", "storm_429", "fault_rate_limit"))


def test_trace_tree_joins_driver_and_executor_spans(sample_run: SampleRun) -> None:
    spans = sample_run.receiver.spans()
    by_id = {s["span_id"]: s for s in spans}
    assert len(by_id) == len(spans)  # no span exported twice
    (run,) = [s for s in spans if s["name"] == "fmf.run"]
    assert run["parent_id"] is None
    assert {s["trace_id"] for s in spans} == {run["trace_id"]}
    # every span but the run's has its parent in the same trace
    assert all(s["parent_id"] in by_id for s in spans if s is not run)

    stages = sorted(
        (s["name"], s["attributes"]["fmf.stage"]) for s in spans if s["parent_id"] == run["span_id"]
    )
    assert stages == [
        ("fmf.commit", "commit"),
        ("fmf.export", "export.outputs_delta"),
        ("fmf.process", "process"),
        ("fmf.step", "step.extract"),
        ("fmf.step", "step.per_doc"),
    ]
    driver = run["resource"]["service.instance.id"]
    steps = {s["attributes"]["fmf.step"]: s for s in spans if s["name"] == "fmf.step"}
    for step_id, step_span in steps.items():
        tasks = [s for s in spans if s["parent_id"] == step_span["span_id"]]
        assert tasks and {t["name"] for t in tasks} == {"fmf.task"}
        for task in tasks:
            # made in an executor's Python worker, not in the driver
            assert task["resource"]["fmf.role"] == "executor"
            assert task["resource"]["service.instance.id"] != driver
            assert task["attributes"]["fmf.step"] == step_id
            assert isinstance(task["attributes"]["fmf.partition"], int)
            calls = [s for s in spans if s["parent_id"] == task["span_id"]]
            assert {c["name"] for c in calls} <= {"fmf.model_call"}
            assert task["attributes"]["fmf.calls"] == len(calls)  # sample ratio 1.0


def test_model_call_spans_match_the_outputs(spark, sample_run: SampleRun) -> None:
    spans = sample_run.receiver.spans()
    calls = [s for s in spans if s["name"] == "fmf.model_call"]
    prompts = {p.id: p for p in sample_run.result.steps}
    seen = {}
    for span in calls:
        a = span["attributes"]
        step = a["fmf.step"]
        assert a["fmf.provider"] == "sim"
        assert a["gen_ai.request.model"] == "sim-gpt-4o-mini"
        assert a["fmf.prompt"] == prompts[step].prompt
        assert a["fmf.prompt_hash"] == prompts[step].prompt_hash
        seen[a["fmf.request_id"]] = {
            "step": step,
            "status": a["fmf.status"],
            "error_code": a.get("fmf.error_code"),
            "attempts": a["fmf.attempts"],
            "input_tokens": a.get("gen_ai.usage.input_tokens"),
            "output_tokens": a.get("gen_ai.usage.output_tokens"),
            "cost_usd": a.get("fmf.cost_usd"),
            "latency_ms": a.get("fmf.latency_ms"),
        }
    assert seen == _called(spark, sample_run)
    # the content filter's refusal is an error span; the 429s are events on theirs
    failed = [s for s in calls if s["attributes"]["fmf.status"] != "ok"]
    assert [s["attributes"]["fmf.error_code"] for s in failed] == ["inference.content_filtered"]
    assert all(s["status"] == 2 for s in failed)  # STATUS_CODE_ERROR
    waits = [e for s in calls for e in s["events"] if e["name"] == "rate_limited"]
    assert len(waits) == sum(s["attributes"]["fmf.rate_limited"] for s in calls)
    assert len(waits) == _expected_429(sample_run) >= 3


def test_metrics_count_every_call(spark, sample_run: SampleRun) -> None:
    points = sample_run.receiver.metric_points()
    assert points and {p["temporality"] for p in points} == {DELTA}

    def total(name: str, **attrs: Any) -> float:
        return sum(
            p.get("value", p.get("count", 0))
            for p in points
            if p["name"] == name and all(p["attributes"].get(k) == v for k, v in attrs.items())
        )

    called = _called(spark, sample_run).values()
    assert total("fmf.model.calls") == len(called)
    assert total("fmf.model.calls", **{"fmf.status": "error"}) == 1
    assert total("fmf.model.tokens", **{"gen_ai.token.type": "input"}) == sum(
        c["input_tokens"] or 0 for c in called
    )
    assert total("fmf.model.tokens", **{"gen_ai.token.type": "output"}) == sum(
        c["output_tokens"] or 0 for c in called
    )
    assert total("fmf.model.cost") == pytest.approx(sum(c["cost_usd"] or 0 for c in called))
    assert total("fmf.model.rate_limited") == _expected_429(sample_run)
    assert total("fmf.model.latency") == sum(1 for c in called if c["latency_ms"] is not None)
    for step in ("extract", "per_doc"):
        assert total("fmf.model.calls", **{"fmf.step": step}) == sum(
            1 for c in called if c["step"] == step
        )


def test_run_span_and_no_secret_in_any_payload(sample_run: SampleRun) -> None:
    spans = sample_run.receiver.spans()
    (run,) = [s for s in spans if s["name"] == "fmf.run"]
    result = sample_run.result
    assert run["attributes"]["fmf.run_id"] == result.run_id
    assert run["attributes"]["fmf.chain"] == "observed"
    assert run["attributes"]["fmf.status"] == "succeeded"
    assert run["attributes"]["fmf.calls"] == result.calls
    payloads = sample_run.receiver.payloads
    assert payloads
    # the bearer token reached the collector as a header (it refuses requests without)...
    assert {p.headers["authorization"] for p in payloads} == {f"Bearer {OTEL_TOKEN}"}
    # ...and nowhere in a body, raw or decoded
    for payload in payloads:
        assert OTEL_TOKEN.encode() not in payload.raw
        assert OTEL_TOKEN not in str(payload.decoded)
    assert OTEL_TOKEN not in Path(result.run_yaml).read_text()


def test_settings_travel_pickled_without_showing_their_headers() -> None:
    from fmf_spark.observability.telemetry import OtelSettings

    settings = OtelSettings("http://127.0.0.1:4318", (("authorization", "Bearer s3cret-value"),))
    assert "s3cret" not in repr(settings)
    assert pickle.loads(pickle.dumps(settings)) == settings


def test_call_sampling_is_by_request_id() -> None:
    pytest.importorskip("opentelemetry.sdk")
    import hashlib

    from fmf_spark.observability.otel import TaskSpan

    ids = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(2000)]
    span = TaskSpan.__new__(TaskSpan)
    picks = {}
    for ratio in (0.0, 0.1, 0.5, 1.0):
        span.sample_ratio = ratio
        picks[ratio] = {i for i in ids if span.sampled(i)}
        assert picks[ratio] == {i for i in ids if span.sampled(i)}  # the same again
    assert picks[0.0] == set() and picks[1.0] == set(ids)
    assert picks[0.1] < picks[0.5] < picks[1.0]  # a larger ratio keeps the smaller's picks
    assert 150 <= len(picks[0.1]) <= 250 and 900 <= len(picks[0.5]) <= 1100


def test_tracing_off_imports_no_opentelemetry(tmp_path) -> None:
    """With otel off, a run and a task's telemetry import nothing of OpenTelemetry."""
    script = f"""
import pickle, sys
from fmf_spark.config import load_config
from fmf_spark.observability.run import RunContext
from fmf_spark.observability.telemetry import task_telemetry

cfg = load_config({str(ROOT / "conf" / "fmf.yaml")!r}, profile="local", environ={{}},
                  overrides=["artefacts.root={tmp_path}", "observability.mlflow.enabled=false"])
ctx = RunContext.start(cfg)
with ctx.stage("step.s"):
    telemetry = pickle.loads(pickle.dumps(task_telemetry(step="s", provider="p")))
    with telemetry.task() as observer:
        row = observer.observe("ab12", lambda: {{"status": "ok"}})
ctx.finish("succeeded")
print(json.dumps({{
    "otel": sorted(m for m in sys.modules if m.startswith("opentelemetry")),
    "row": sorted(row),
    "fields": telemetry.fields,
}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", "import json\n" + script],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["otel"] == []
    assert data["row"] == sorted(
        ["status", "started_at", "sent_at", "ended_at", "rate_limited", "rate_limited_at"]
    )
    assert data["fields"]["step"] == "s" and data["fields"]["run_id"]


def test_header_secret_must_be_a_reference() -> None:
    from fmf_spark.config.models import FmfConfig

    with pytest.raises(ValueError, match="carries a credential"):
        FmfConfig.model_validate(
            {"observability": {"otel": {"headers": {"Authorization": "Bearer abc123"}}}}
        )
    cfg = FmfConfig.model_validate(
        {
            "secrets": {"names": {"tok": {"provider": "env", "key": "T"}}},
            "observability": {
                "otel": {"headers": {"authorization": "secret:tok", "x-tenant": "team-a"}}
            },
        }
    )
    headers = cfg.observability.otel.headers
    assert str(headers["authorization"]) == "secret:tok" and headers["x-tenant"] == "team-a"
