"""Inference benchmark: quota utilisation of ``infer()`` vs. the hand-written baseline.

    python benchmarks/inference.py                    # 1,800 requests at 600 RPM / 100k TPM
    python benchmarks/inference.py --requests 600     # shorter, for a busy machine
    python benchmarks/inference.py --otel --skip-baseline   # ours with OpenTelemetry off/on/off

Against the simulator (600 RPM / 100k TPM enforced over 10 s windows, 200 ms mean
log-normal latency), ``local[2]`` Spark, 2 tasks calling at once:

- **ours**: ``infer()``: the driver's quota broker paces both tasks, retries honour
  Retry-After, nothing is dropped;
- **baseline**: what a user writes by hand: ``mapInPandas`` + a 16-thread pool per
  task + the openai SDK with its default retries (2), a row whose call still fails is
  lost (``None``).

Figures, all from the simulator's own counters (nothing is timed in our code):

- goodput = answered requests / (binding quota x active span), where the span runs from
  the first request that reached the simulator to the last answer, and the binding
  quota is whichever of RPM and TPM the run used the larger share of;
- 429s as % of the requests that reached the simulator;
- rows lost (no answer at the end of the job).

Targets for ours: goodput >= 97 % of quota, 429s <= 1 %, 0 rows lost.

With ``--otel``, ours runs three times in the same process: OpenTelemetry off, on
(every call a span, metrics, exported to a local OTLP/HTTP receiver), off again; the
two "off" runs bracket the "on" one, so a drift of the machine shows as a difference
between them rather than as a cost of tracing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

WORDS = [
    "invoice",
    "contract",
    "supplier",
    "delivery",
    "payment",
    "amount",
    "currency",
    "clause",
    "term",
    "party",
    "liability",
    "warranty",
    "schedule",
    "annex",
    "signature",
    "notice",
    "renewal",
    "period",
    "service",
    "level",
]


def make_messages(n: int, seed: int = 11) -> list[str]:
    """n distinct chat requests of 50-90 words (about 60-110 prompt tokens)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(50, 90)))
        out.append(
            json.dumps(
                [
                    {"role": "system", "content": "Summarise the chunk in one sentence."},
                    {"role": "user", "content": f"Chunk {i}: {text}"},
                ]
            )
        )
    return out


def baseline_partition(base_url: str, model: str, max_tokens: int, threads: int) -> Any:
    """The hand-written version: a thread pool per task and the SDK's default retries."""

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        from concurrent.futures import ThreadPoolExecutor

        import openai
        import pandas as pd

        client = openai.OpenAI(base_url=base_url, api_key="unused")  # max_retries=2

        def call(messages: str) -> str | None:
            try:
                answer = client.chat.completions.create(
                    model=model, messages=json.loads(messages), max_tokens=max_tokens
                )
                return answer.choices[0].message.content
            except openai.OpenAIError:
                return None  # what such code typically does: the row is lost

        with ThreadPoolExecutor(threads) as pool:
            for batch in batches:
                answers = list(pool.map(call, batch["messages"]))
                yield pd.DataFrame({"doc_id": batch["doc_id"], "answer": answers})

    return run


def warm_up(batches: Iterator[Any]) -> Iterator[Any]:
    import openai

    import fmf_spark.inference.runner  # noqa: F401
    from fmf_spark.inference.tokens import count_tokens

    openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="unused").close()
    count_tokens("warm up")
    yield from batches


def figures(
    stats: dict[str, Any], rows: int, answered: int, args: argparse.Namespace
) -> dict[str, Any]:
    span = max(1e-9, (stats["last_ts"] or 0) - (stats["first_ts"] or 0))
    rpm_used = stats["ok"] / span * 60
    tpm_used = stats["tokens_charged"] / span * 60
    share_rpm = rpm_used / args.rpm
    share_tpm = tpm_used / args.tpm
    binding = "RPM" if share_rpm >= share_tpm else "TPM"
    return {
        "rows": rows,
        "answered": answered,
        "rows_lost": rows - answered,
        "requests_at_simulator": stats["requests"],
        "accepted": stats["accepted"],
        "rejected_429": stats["rejected_429"],
        "pct_429": 100.0 * stats["rejected_429"] / max(1, stats["requests"]),
        "span_s": span,
        "rpm_used": rpm_used,
        "tpm_used": tpm_used,
        "binding": binding,
        "goodput_pct": 100.0 * max(share_rpm, share_tpm),
        "repeat_success": stats["repeat_success"],
    }


def wait_for_fresh_window(window_s: float) -> None:
    """Start the next run at a window boundary plus one idle window: a clean quota."""
    now = time.time()
    time.sleep((window_s - now % window_s) + window_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1800)
    parser.add_argument("--rpm", type=int, default=600)
    parser.add_argument("--tpm", type=int, default=100_000)
    parser.add_argument("--window-s", type=float, default=10.0)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--max-tokens", type=int, default=40)
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8, help="ours: calls per task")
    parser.add_argument("--threads", type=int, default=16, help="baseline: threads per task")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument(
        "--otel", action="store_true", help="ours with OpenTelemetry off, on, off (same run)"
    )
    args = parser.parse_args()

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from fmf_spark.config.models import FmfConfig
    from fmf_spark.inference import InferenceStep, infer
    from fmf_spark.simulator import SimulatorServer, SimulatorSettings
    from fmf_spark.spark import get_spark

    settings = SimulatorSettings(
        requests_per_minute=args.rpm,
        tokens_per_minute=args.tpm,
        window_s=args.window_s,
        latency_ms=args.latency_ms,
        latency_sigma=0.5,
    )
    sim = SimulatorServer(settings)
    sim.start()
    cfg = FmfConfig.model_validate(
        {
            "spark": {"master": f"local[{args.tasks}]", "shuffle_partitions": args.tasks},
            "inference": {
                "tasks": args.tasks,
                "providers": {
                    "sim": {
                        "type": "simulator",
                        "base_url": sim.url,
                        "model": "gpt-4o-mini",
                        "concurrency": args.concurrency,
                        "rate_limit": {
                            "requests_per_minute": args.rpm,
                            "tokens_per_minute": args.tpm,
                            "window_s": args.window_s,
                        },
                    }
                },
            },
        }
    )
    spark = get_spark(cfg)
    spark.sparkContext.setLogLevel("ERROR")
    messages = make_messages(args.requests)
    rows = [(f"doc{i}", f"chunk{i}", m) for i, m in enumerate(messages)]
    df = spark.createDataFrame(rows, "doc_id string, chunk_id string, messages string")
    df = df.repartition(args.tasks).cache()
    df.count()
    # warm the Python workers (Spark reuses them): both versions then start with openai
    # and fmf_spark imported, so the wall times compare the calling, not the imports
    spark.range(args.tasks).repartition(args.tasks).mapInPandas(warm_up, "id long").collect()

    results: dict[str, dict[str, Any]] = {}
    print(
        f"simulator: {args.rpm} RPM / {args.tpm} TPM over {args.window_s:g} s windows, "
        f"{args.latency_ms:g} ms mean latency; {args.requests} requests, {args.tasks} tasks",
        flush=True,
    )

    step = InferenceStep("bench", "sim", "bench", "1", "h", max_tokens=args.max_tokens)

    def run_ours(name: str, traced: bool = False) -> dict[str, Any]:
        wait_for_fresh_window(args.window_s)
        sim.reset()
        started = time.monotonic()
        with otel_on(cfg) if traced else contextlib.nullcontext():
            out = infer(df, step, cfg)
            answered = out.where("status = 'ok'").count()
        figs = figures(sim.stats(), args.requests, answered, args)
        figs["wall_s"] = time.monotonic() - started
        results[name] = figs
        print(f"{name} done in {figs['wall_s']:.0f} s", flush=True)
        return figs

    ours = run_ours("ours")
    if args.otel:
        run_ours("ours+otel", traced=True)
        run_ours("ours again")

    if not args.skip_baseline:
        wait_for_fresh_window(args.window_s)
        sim.reset()
        started = time.monotonic()
        fn = baseline_partition(sim.openai_base_url, "gpt-4o-mini", args.max_tokens, args.threads)
        answers = df.mapInPandas(fn, "doc_id string, answer string").collect()
        answered = sum(1 for a in answers if a.answer is not None)
        base = figures(sim.stats(), args.requests, answered, args)
        base["wall_s"] = time.monotonic() - started
        results["baseline"] = base
        print(f"baseline done in {base['wall_s']:.0f} s", flush=True)

    sim.stop()
    spark.stop()
    print_table(results)
    if args.json:
        print(json.dumps(results, indent=2))
    ok = ours["goodput_pct"] >= 97.0 and ours["pct_429"] <= 1.0 and ours["rows_lost"] == 0
    print(f"targets (goodput >= 97 %, 429s <= 1 %, 0 rows lost): {'MET' if ok else 'NOT MET'}")
    return 0


@contextlib.contextmanager
def otel_on(cfg: Any) -> Iterator[None]:
    """OpenTelemetry on for the block: a run trace exporting to a local OTLP receiver."""
    sys.path.insert(0, ROOT)
    from tests.servers.otlp import otlp_receiver

    from fmf_spark.observability.otel import RunTrace
    from fmf_spark.observability.telemetry import activate_trace, otel_settings

    with otlp_receiver() as receiver:
        otel = cfg.observability.otel.model_copy(
            update={"enabled": True, "endpoint": receiver.url, "model_call_sample_ratio": 1.0}
        )
        trace = RunTrace(otel_settings(otel), {"fmf.run_id": "benchmark"})
        activate_trace(trace)
        try:
            with trace.span("fmf.step", {"fmf.step": "bench"}):
                yield
        finally:
            activate_trace(None)
            trace.end("succeeded")
        spans = receiver.spans()
        calls = sum(1 for s in spans if s["name"] == "fmf.model_call")
        print(f"otel: {len(spans)} spans received ({calls} model calls)", flush=True)


def print_table(results: dict[str, dict[str, Any]]) -> None:
    lines = [
        ("goodput, % of binding quota", "goodput_pct", "{:.1f}"),
        ("binding quota", "binding", "{}"),
        ("requests/min answered", "rpm_used", "{:.0f}"),
        ("tokens/min charged", "tpm_used", "{:.0f}"),
        ("429s, % of requests", "pct_429", "{:.2f}"),
        ("requests at the simulator", "requests_at_simulator", "{}"),
        ("rows lost", "rows_lost", "{}"),
        ("rows answered twice", "repeat_success", "{}"),
        ("active span at the simulator, s", "span_s", "{:.1f}"),
        ("wall time, s", "wall_s", "{:.1f}"),
    ]
    names = list(results)
    both = "ours" in results and "baseline" in results
    header = f"{'':34}" + "".join(f"{n:>12}" for n in names)
    if both:
        header += f"{'ours/base':>12}"
    print(header)
    for label, key, fmt in lines:
        row = f"{label:34}" + "".join(f"{fmt.format(results[n][key]):>12}" for n in names)
        if both and isinstance(results["ours"][key], int | float):
            base = results["baseline"][key]
            ratio = "-" if not base else f"{results['ours'][key] / base:.2f}x"
            row += f"{ratio:>12}"
        print(row)


if __name__ == "__main__":
    sys.exit(main())
