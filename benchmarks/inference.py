"""Inference benchmark: quota use of ``infer()`` vs. the hand-written baseline, per scenario.

    python benchmarks/inference.py                    # 1,800 requests per run, all scenarios
    python benchmarks/inference.py --requests 600     # shorter, for a busy machine
    python benchmarks/inference.py --scenarios cotenant --skip-baseline
    python benchmarks/inference.py --otel --skip-baseline   # ours with OpenTelemetry off/on/off
    python benchmarks/inference.py --connect --skip-baseline  # azure on a Spark Connect session

Against the simulator (600 RPM / 100k TPM enforced over 10 s windows, 200 ms mean
log-normal latency), ``local[2]`` Spark, 2 tasks calling at once, three scenarios:

- ``azure``: the endpoint charges prompt + ``max_tokens`` per request (Azure OpenAI's
  rule, the limiter's documented estimate): with ~100 prompt tokens and
  ``max_tokens=100`` the TPM quota binds;
- ``max_tokens``: the endpoint charges ``max_tokens`` only: the RPM quota binds, and
  the limiter must learn that from the rate-limit headers (pacing on its estimate
  reaches ~83 % of the RPM quota);
- ``cotenant``: ``max_tokens`` accounting, and a second client (a thread of this
  process with the openai SDK and its default retries, ``user="cotenant"``) sends
  Poisson arrivals at 200 RPM to the same deployment for the whole run.

Each scenario runs **ours** (``infer()``: the driver's quota broker paces both tasks,
retries honour Retry-After, nothing is dropped) and the **baseline** (what a user
writes by hand: ``mapInPandas`` + a 16-thread pool per task + the openai SDK with its
default retries (2); a row whose call still fails is lost) one after the other, each
from a fresh quota window.

Figures, all from the simulator's own counters (nothing is timed in our code), for the
requests of the run itself (the co-tenant's are counted apart, by their ``user``):

- quota use = answered requests (tokens charged) / (quota x active span), where the
  span runs from the run's first request at the simulator to its last answer; the
  binding quota is whichever of RPM and TPM the run used the larger share of. A client
  that bursts at each window's start (the baseline) can show more than 100 %: the
  provider's windows are fixed, so the span cuts its first and last windows short;
- the same in full windows: the mean, over the windows between the run's first and
  last, of the share of the binding window quota the run was admitted (never above
  100 %, and blind to ramp-up and tail);
- with a co-tenant, share of the remaining quota used: per full window, what we were
  admitted / (window quota - what the co-tenant was admitted in that window), averaged
  (also printed over the span, against the co-tenant's rate over its own span), and
  the co-tenant's own 429 share;
- 429s as % of the run's requests that reached the simulator; rows lost.

With ``--connect`` the ``azure`` scenario runs on a Spark Connect session (pyspark's
local Connect server, ``spark.remote: local[<tasks>]``). There the client is not the
driver, so ``inference.limiter: auto`` gives each task a static share of the quota
(quota / tasks) and the calibration's back-off (429s, rate-limit headers) instead of
the driver's broker; its targets are >= 90 % of the binding quota, <= 2 % 429s, 0 rows
lost.

Targets for ours: >= 97 % of the binding quota in ``azure`` and ``max_tokens``, <= 1 %
429s, 0 rows lost; with the co-tenant <= 2 % 429s and >= 95 % of the remaining share (full windows).
The machine running it is shared with other work: CPU contention lowers every figure
a little (both sides alike) and shows up as a lower quota use, never as more 429s.

Two more scenarios measure whole runs rather than one ``infer()`` call:

- ``e2e``: a chain shaped like ``chains/sample.yaml`` (a chunk step, then a document
  step fed its answers, or with ``--e2e-steps 1`` the chunk step alone; without the
  corpus digest, one call whose prompt grows with the corpus) over ``--documents``
  one-chunk documents, run as ``fmf run`` runs it
  (:func:`fmf_spark.cli.app.run_chain`: process, steps, Delta export, ``run.yaml``;
  MLflow off) against the same simulator with Azure's accounting. It prints the run's
  wall time over the quota floor: the time the provider's quota alone needs for the
  requests and tokens the run was charged (``max(requests / RPM, tokens / TPM)``), and a
  rerun of the same input (answered from the request cache: its calls and wall time).
  Ours only: the hand-written baseline has no chain to compare with.
- ``kill``: kill-and-rerun (calls paid twice, as % of the calls done before the kill),
  measured by ``benchmarks/durability.py`` (``run_kill_and_rerun(args) -> dict``, the
  durable-progress work of issue #16), printed as its own table.

With ``--otel``, ours runs three times per scenario in the same process: OpenTelemetry
off, on (every call a span, metrics, exported to a local OTLP/HTTP receiver), off again;
the two "off" runs bracket the "on" one, so a drift of the machine shows as a difference
between them rather than as a cost of tracing. Each run has a provider of its own, so
each starts with what a new job knows (nothing learned yet).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
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


def make_texts(n: int, seed: int) -> list[str]:
    """n distinct texts of 50-90 words (about 60-110 tokens)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(50, 90))) for _ in range(n)]


def make_messages(n: int, seed: int = 11) -> list[str]:
    """n distinct chat requests of 50-90 words (about 60-110 prompt tokens)."""
    return [
        json.dumps(
            [
                {"role": "system", "content": "Summarise the chunk in one sentence."},
                {"role": "user", "content": f"Chunk {i}: {text}"},
            ]
        )
        for i, text in enumerate(make_texts(n, seed))
    ]


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


class CoTenant:
    """Another application on the same deployment: Poisson arrivals at ``rpm``.

    Uses the openai SDK as such an application would (default retries: 2, honouring
    Retry-After), names itself ``user="cotenant"`` so the simulator counts it apart, and
    never waits for an answer before the next arrival (a thread pool sends).
    """

    def __init__(self, base_url: str, rpm: float, max_tokens: int, seed: int = 5) -> None:
        import threading

        self.base_url = base_url
        self.rpm = rpm
        self.max_tokens = max_tokens
        self.rng = random.Random(seed)
        self.messages = make_messages(400, seed=seed)
        self.stop_event = threading.Event()
        self.lost = 0
        self.thread = threading.Thread(target=self._run, name="cotenant", daemon=True)

    def _run(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        import openai

        client = openai.OpenAI(base_url=self.base_url, api_key="unused")

        def call(i: int) -> None:
            messages = json.loads(self.messages[i % len(self.messages)])
            # every request distinct, so the simulator's repeat count stays ours alone
            messages[-1]["content"] = f"Co-tenant request {i}. " + messages[-1]["content"]
            try:
                client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=messages,
                    max_tokens=self.max_tokens,
                    user="cotenant",
                )
            except openai.OpenAIError:
                self.lost += 1

        with ThreadPoolExecutor(32) as pool:
            i = 0
            next_at = time.monotonic()
            while not self.stop_event.is_set():
                next_at += self.rng.expovariate(self.rpm / 60.0)
                self.stop_event.wait(max(0.0, next_at - time.monotonic()))
                if not self.stop_event.is_set():
                    pool.submit(call, i)
                    i += 1
        client.close()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join()


def party(stats: dict[str, Any], user: str) -> dict[str, Any]:
    """One party's counters at the simulator (``""``: requests that name no user)."""
    mine = dict(stats["by_user"].get(user, {}))
    for key in ("requests", "accepted", "ok", "rejected_429", "tokens_charged"):
        mine.setdefault(key, 0)
    return mine


def window_use(stats: dict[str, Any], binding: str) -> tuple[float, float]:
    """Mean over the run's full windows (all but its first and last) of the share of the
    binding quota it was admitted, and of the share the co-tenant left it."""
    limits = stats["window_limits"]
    dim = 0 if binding == "RPM" else 1
    ours = {i: (r, t) for i, u, r, t in stats["windows"] if u == ""}
    other = {i: (r, t) for i, u, r, t in stats["windows"] if u == "cotenant"}
    if len(ours) < 3:
        return float("nan"), float("nan")
    full = range(min(ours) + 1, max(ours))
    used = [ours.get(i, (0, 0))[dim] / limits[dim] for i in full]
    left = [ours.get(i, (0, 0))[dim] / (limits[dim] - other.get(i, (0, 0))[dim]) for i in full]
    return 100.0 * sum(used) / len(used), 100.0 * sum(left) / len(left)


def figures(
    stats: dict[str, Any], rows: int, answered: int, args: argparse.Namespace
) -> dict[str, Any]:
    ours = party(stats, "")
    span = max(1e-9, (ours.get("last_ts") or 0) - (ours.get("first_ts") or 0))
    rpm_used = ours["ok"] / span * 60
    tpm_used = ours["tokens_charged"] / span * 60
    share_rpm = rpm_used / args.rpm
    share_tpm = tpm_used / args.tpm
    binding = "RPM" if share_rpm >= share_tpm else "TPM"
    in_windows, left_in_windows = window_use(stats, binding)
    out = {
        "rows": rows,
        "answered": answered,
        "rows_lost": rows - answered,
        "requests_at_simulator": ours["requests"],
        "accepted": ours["accepted"],
        "rejected_429": ours["rejected_429"],
        "pct_429": 100.0 * ours["rejected_429"] / max(1, ours["requests"]),
        "span_s": span,
        "rpm_used": rpm_used,
        "tpm_used": tpm_used,
        "binding": binding,
        "quota_use_pct": 100.0 * max(share_rpm, share_tpm),
        "window_use_pct": in_windows,
        "repeat_success": stats["repeat_success"],
    }
    other = party(stats, "cotenant")
    if other["requests"]:
        other_span = max(1e-9, (other.get("last_ts") or 0) - (other.get("first_ts") or 0))
        other_rpm = other["ok"] / other_span * 60
        other_tpm = other["tokens_charged"] / other_span * 60
        left_rpm = rpm_used / max(1e-9, args.rpm - other_rpm)
        left_tpm = tpm_used / max(1e-9, args.tpm - other_tpm)
        out.update(
            cotenant_rpm=other_rpm,
            cotenant_pct_429=100.0 * other["rejected_429"] / max(1, other["requests"]),
            remaining_share_pct=100.0 * max(left_rpm, left_tpm),
            window_remaining_share_pct=left_in_windows,
        )
    return out


def wait_for_fresh_window(window_s: float) -> None:
    """Start the next run at a window boundary plus one idle window: a clean quota."""
    now = time.time()
    time.sleep((window_s - now % window_s) + window_s)


def fresh_start(sim: Any, window_s: float, cotenant: CoTenant | None) -> None:
    """Zero the counters at a fresh window; with a co-tenant, let it run one window first."""
    wait_for_fresh_window(window_s)
    sim.reset()
    if cotenant is not None:
        if not cotenant.thread.is_alive():
            cotenant.start()
        time.sleep(window_s)


#: one ``infer()`` call each, ours and the baseline side by side
QUOTA_SCENARIOS = ("azure", "max_tokens", "cotenant")
SCENARIOS = (*QUOTA_SCENARIOS, "e2e", "kill")
# ours, then with --otel the same with tracing on and off again: (provider suffix, name, traced)
OURS_RUNS = (("", "ours", False), ("_otel", "ours+otel", True), ("_again", "ours again", False))


def run_ours(
    df: Any, cfg: Any, provider: str, sim: Any, args: argparse.Namespace, traced: bool
) -> dict[str, Any]:
    """One run of ``infer()`` over ``df`` through ``provider``; the simulator's figures."""
    from fmf_spark.inference import InferenceStep, QuotaBroker, infer

    started = time.monotonic()
    step = InferenceStep("bench", provider, "bench", "1", "h", max_tokens=args.max_tokens)
    with otel_on(cfg) if traced else contextlib.nullcontext():
        out = infer(df, step, cfg)
        answered = out.where("status = 'ok'").count()
    figs = figures(sim.stats(), args.requests, answered, args)
    figs["wall_s"] = time.monotonic() - started
    bucket = QuotaBroker.shared().bucket(f"{provider}:gpt-4o-mini")
    if bucket is not None:
        figs["learned"] = bucket.calibration.snapshot()
    return figs


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1800)
    parser.add_argument("--rpm", type=int, default=600)
    parser.add_argument("--tpm", type=int, default=100_000)
    parser.add_argument("--window-s", type=float, default=10.0)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--max-tokens", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8, help="ours: calls per task")
    parser.add_argument("--threads", type=int, default=16, help="baseline: threads per task")
    parser.add_argument("--cotenant-rpm", type=float, default=200.0)
    parser.add_argument("--documents", type=int, default=300, help="e2e: one-chunk documents")
    parser.add_argument(
        "--e2e-steps",
        type=int,
        choices=(1, 2),
        default=2,
        help="e2e: the chunk step alone (1), or then the document step (2)",
    )
    parser.add_argument("--limiter", choices=("auto", "broker", "static"), default="auto")
    parser.add_argument(
        "--scenarios",
        default=None,
        help=f"comma-separated: {', '.join(SCENARIOS)} (default: all; azure with --connect)",
    )
    parser.add_argument(
        "--connect",
        action="store_true",
        help="a Spark Connect session (local Connect server): the limiter's static split",
    )
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument(
        "--otel", action="store_true", help="ours with OpenTelemetry off, on, off (same run)"
    )
    args = parser.parse_args()
    if args.scenarios is None:
        args.scenarios = "azure" if args.connect else ",".join(SCENARIOS)
    scenarios = [x.strip() for x in args.scenarios.split(",") if x.strip()]
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from fmf_spark.config.models import FmfConfig
    from fmf_spark.simulator import SimulatorServer, SimulatorSettings
    from fmf_spark.spark import get_spark, is_connect

    settings = SimulatorSettings(
        requests_per_minute=args.rpm,
        tokens_per_minute=args.tpm,
        window_s=args.window_s,
        latency_ms=args.latency_ms,
        latency_sigma=0.5,
    )
    sim = SimulatorServer(settings)
    sim.start()
    provider = {
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
    cfg = FmfConfig.model_validate(
        {
            "spark": {
                "master": f"local[{args.tasks}]",
                "shuffle_partitions": args.tasks,
                **({"remote": f"local[{args.tasks}]"} if args.connect else {}),
            },
            "inference": {
                "tasks": args.tasks,
                "limiter": args.limiter,
                # one provider per run: each starts with a fresh bucket, as a new job would
                "providers": {
                    name + suffix: provider
                    for name in scenarios
                    if name in QUOTA_SCENARIOS
                    for suffix, _, _ in OURS_RUNS[: 3 if args.otel else 1]
                },
            },
        }
    )
    spark = get_spark(cfg)
    if not is_connect(spark):
        spark.sparkContext.setLogLevel("ERROR")
    messages = make_messages(args.requests)
    rows = [(f"doc{i}", f"chunk{i}", m) for i, m in enumerate(messages)]
    df = spark.createDataFrame(rows, "doc_id string, chunk_id string, messages string")
    df = df.repartition(args.tasks).cache()
    df.count()
    # warm the Python workers (Spark reuses them): both versions then start with openai
    # and fmf_spark imported, so the wall times compare the calling, not the imports
    spark.range(args.tasks).repartition(args.tasks).mapInPandas(warm_up, "id long").collect()

    print(
        f"simulator: {args.rpm} RPM / {args.tpm} TPM over {args.window_s:g} s windows, "
        f"{args.latency_ms:g} ms mean latency; {args.requests} requests of max_tokens="
        f"{args.max_tokens}, {args.tasks} tasks, limiter {args.limiter}"
        + (" (Spark Connect)" if args.connect else "")
        + (
            f"; e2e: {args.documents} documents, {args.e2e_steps} step(s)"
            if "e2e" in scenarios
            else ""
        ),
        flush=True,
    )
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for scenario in (s for s in scenarios if s in QUOTA_SCENARIOS):
        sim.settings.token_accounting = (
            "prompt_and_max_tokens" if scenario == "azure" else "max_tokens"
        )
        cotenant = None
        if scenario == "cotenant":
            cotenant = CoTenant(sim.openai_base_url, args.cotenant_rpm, args.max_tokens)
        runs: dict[str, dict[str, Any]] = {}

        for suffix, name, traced in OURS_RUNS[: 3 if args.otel else 1]:
            fresh_start(sim, args.window_s, cotenant)
            runs[name] = run_ours(df, cfg, scenario + suffix, sim, args, traced)
            print(f"{scenario}: {name} done in {runs[name]['wall_s']:.0f} s", flush=True)

        if not args.skip_baseline:
            fresh_start(sim, args.window_s, cotenant)
            started = time.monotonic()
            fn = baseline_partition(
                sim.openai_base_url, "gpt-4o-mini", args.max_tokens, args.threads
            )
            answers = df.mapInPandas(fn, "doc_id string, answer string").collect()
            answered = sum(1 for a in answers if a.answer is not None)
            runs["baseline"] = figures(sim.stats(), args.requests, answered, args)
            runs["baseline"]["wall_s"] = time.monotonic() - started
            print(f"{scenario}: baseline done in {runs['baseline']['wall_s']:.0f} s", flush=True)
        if cotenant is not None:
            cotenant.stop()
        results[scenario] = runs

    if "e2e" in scenarios:
        results["e2e"] = {"ours": run_e2e(spark, sim, args)}
    sim.stop()
    spark.stop()
    if "kill" in scenarios:
        results["kill"] = {"ours": run_kill(args)}

    verdicts = []
    for scenario, runs in results.items():
        print(f"\n== {scenario} ==")
        if scenario == "e2e":
            print_e2e(runs["ours"])
        elif scenario == "kill":
            durability().print_table(runs["ours"])
        else:
            print_table(runs)
            verdicts.append(verdict(scenario, runs["ours"], connect=args.connect))
    print()
    for line in verdicts:
        print(line)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


# --- e2e: a whole chain run against its quota floor ----------------------------------------

E2E_CHAIN = """\
name: bench_e2e
description: The sample chain's chunk and document steps, for the end-to-end benchmark.
inputs: {connector: samples, select: "**/*"}
processing:
  chunking: {strategy: markdown, max_tokens: 256, overlap_tokens: 32}
steps:
  - id: summarize
    prompt: summarize_chunk#1
    scope: chunk
    inputs: {path: "${doc.path}", text: "${chunk.text}"}
  - id: brief
    prompt: doc_brief#1
    scope: document
    inputs: {path: "${doc.path}", summaries: "${steps.summarize.output_json.summary}"}
outputs:
  - export: outputs_delta
"""


def run_e2e(spark: Any, sim: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The chain over ``args.documents`` one-chunk documents, then again (all cached).

    Returns the first run's wall time, the quota floor of what the simulator charged
    it, their ratio, the stage timings from ``run.yaml``, and the rerun's calls and time.
    """
    from fmf_spark.chains.model import load_chain
    from fmf_spark.cli.app import run_chain
    from fmf_spark.config import load_config
    from fmf_spark.prompts.registry import PromptRegistry

    sim.settings.token_accounting = "prompt_and_max_tokens"
    with tempfile.TemporaryDirectory(prefix="fmf-bench-e2e-") as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        for i, text in enumerate(make_texts(args.documents, seed=23)):
            (docs / f"note{i:05d}.md").write_text(f"# Note {i}\n\n{text}\n", encoding="utf-8")
        chain_path = Path(tmp) / "bench_e2e.yaml"
        chain_text = E2E_CHAIN
        if args.e2e_steps == 1:  # without the document step
            brief = chain_text.index("  - id: brief")
            chain_text = chain_text[:brief] + chain_text[chain_text.index("outputs:", brief) :]
        chain_path.write_text(chain_text, encoding="utf-8")
        provider = "inference.providers.simulator"
        cfg = load_config(
            Path(ROOT) / "conf" / "fmf.yaml",
            profile="local",
            environ={},
            overrides=[
                f"connectors.samples.root={docs}",
                f"artefacts.root={Path(tmp) / 'artefacts'}",
                f"exporters.outputs_delta.path={Path(tmp) / 'exports'}",
                f"prompts.dir={Path(ROOT) / 'prompts'}",
                "observability.mlflow.enabled=false",
                f"inference.tasks={args.tasks}",
                f"inference.limiter={args.limiter}",
                f"{provider}.base_url={sim.url}",
                f"{provider}.concurrency={args.concurrency}",
                f"{provider}.rate_limit.requests_per_minute={args.rpm}",
                f"{provider}.rate_limit.tokens_per_minute={args.tpm}",
                f"{provider}.rate_limit.window_s={args.window_s}",
            ],
        )
        chain = load_chain(chain_path)
        registry = PromptRegistry(Path(ROOT) / "prompts")

        fresh_start(sim, args.window_s, None)
        started = time.monotonic()
        result = run_chain(spark, chain, cfg, registry=registry)
        wall = time.monotonic() - started
        ours = party(sim.stats(), "")
        calling = calling_spans(spark, f"{result.run_dir}/requests")
        print(f"e2e: first run done in {wall:.0f} s", flush=True)

        fresh_start(sim, args.window_s, None)
        started = time.monotonic()
        rerun = run_chain(spark, chain, cfg, registry=registry)
        rerun_wall = time.monotonic() - started
        rerun_requests = party(sim.stats(), "")["requests"]
        print(f"e2e: rerun done in {rerun_wall:.0f} s", flush=True)

    request_floor = 60.0 * ours["ok"] / args.rpm
    token_floor = 60.0 * ours["tokens_charged"] / args.tpm
    floor = max(request_floor, token_floor)
    return {
        "documents": result.documents,
        "chunks": result.chunks,
        "calls": sum(s.calls for s in result.steps),
        "answered": sum(s.ok for s in result.steps),
        "requests_at_simulator": ours["requests"],
        "rejected_429": ours["rejected_429"],
        "tokens_charged": ours["tokens_charged"],
        "binding": "RPM" if request_floor >= token_floor else "TPM",
        "floor_s": floor,
        "wall_s": wall,
        "ratio": wall / floor if floor else float("nan"),
        "timings_s": dict(result.timings),
        "calling_s": calling,
        "rerun_calls": sum(s.calls for s in rerun.steps),
        "rerun_requests_at_simulator": rerun_requests,
        "rerun_wall_s": rerun_wall,
    }


def calling_spans(spark: Any, requests_path: str) -> dict[str, float]:
    """Per step, from the run's requests table: first call sent to last answer, s."""
    from pyspark.sql import functions as F

    spans = (
        spark.read.format("delta")
        .load(requests_path)
        .groupBy("step")
        .agg(
            (
                F.max(F.col("ended_at").cast("double")) - F.min(F.col("sent_at").cast("double"))
            ).alias("span")
        )
        .collect()
    )
    return {f"step.{r['step']}": float(r["span"]) for r in spans}


def print_e2e(e2e: dict[str, Any]) -> None:
    print(
        f"{e2e['documents']} documents, {e2e['chunks']} chunks: {e2e['calls']} calls, "
        f"{e2e['answered']} answered, {e2e['requests_at_simulator']} requests at the "
        f"simulator ({e2e['rejected_429']} 429s), {e2e['tokens_charged']} tokens charged"
    )
    calling = e2e["calling_s"]
    stages = ", ".join(
        f"{k} {v:.1f}" + (f" (calls {calling[k]:.1f})" if k in calling else "")
        for k, v in e2e["timings_s"].items()
    )
    print(f"stages, s (calls: first sent to last answered): {stages}")
    print(
        f"wall time {e2e['wall_s']:.1f} s / quota floor {e2e['floor_s']:.1f} s "
        f"({e2e['binding']} binds) = {e2e['ratio']:.2f}x   (issue #16 target <= 1.1x)"
    )
    print(
        f"rerun, unchanged input: {e2e['rerun_calls']} calls, "
        f"{e2e['rerun_requests_at_simulator']} requests at the simulator, "
        f"{e2e['rerun_wall_s']:.1f} s ({100 * e2e['rerun_wall_s'] / e2e['wall_s']:.0f} % "
        "of the first run)"
    )


# --- kill: the durable-progress benchmark, when it is there --------------------------------

DURABILITY = Path(ROOT) / "benchmarks" / "durability.py"


@functools.cache
def durability() -> Any:
    """``benchmarks/durability.py``, loaded by path (this file runs as a script)."""
    spec = importlib.util.spec_from_file_location("fmf_bench_durability", DURABILITY)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {DURABILITY}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_kill(args: argparse.Namespace) -> dict[str, Any]:
    """Kill-and-rerun: ``benchmarks/durability.py``'s ``run_kill_and_rerun(args)`` with
    this benchmark's arguments; its figures (calls paid twice as % of the calls done
    before the kill) join the ``--json`` output."""
    figures: dict[str, Any] = durability().run_kill_and_rerun(args)
    return figures


def verdict(scenario: str, ours: dict[str, Any], *, connect: bool = False) -> str:
    if connect:  # no broker: each task paces at quota / tasks, backing off on 429s
        ok = ours["quota_use_pct"] >= 90.0 and ours["pct_429"] <= 2.0
        target = "Spark Connect: quota use >= 90 %, 429s <= 2 %, 0 rows lost"
    elif scenario == "cotenant":
        ok = ours["pct_429"] <= 2.0 and ours["window_remaining_share_pct"] >= 95.0
        target = "429s <= 2 %, >= 95 % of the remaining share, 0 rows lost"
    else:
        ok = ours["quota_use_pct"] >= 97.0 and ours["pct_429"] <= 1.0
        target = "quota use >= 97 %, 429s <= 1 %, 0 rows lost"
    ok = ok and ours["rows_lost"] == 0
    return f"{scenario} targets ({target}): {'MET' if ok else 'NOT MET'}"


def print_table(runs: dict[str, dict[str, Any]]) -> None:
    lines = [
        ("quota use, % of binding quota", "quota_use_pct", "{:.1f}"),
        ("  the same in full windows", "window_use_pct", "{:.1f}"),
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
    if "remaining_share_pct" in runs["ours"]:
        lines[2:2] = [
            ("% of the share the co-tenant left", "remaining_share_pct", "{:.1f}"),
            ("  the same in full windows", "window_remaining_share_pct", "{:.1f}"),
            ("co-tenant requests/min answered", "cotenant_rpm", "{:.0f}"),
            ("co-tenant 429s, % of its requests", "cotenant_pct_429", "{:.2f}"),
        ]
    names = list(runs)
    both = "ours" in runs and "baseline" in runs
    header = f"{'':36}" + "".join(f"{n:>12}" for n in names)
    if both:
        header += f"{'ours/base':>12}"
    print(header)
    for label, key, fmt in lines:
        row = f"{label:36}" + "".join(f"{fmt.format(runs[n][key]):>12}" for n in names)
        if both and isinstance(runs["ours"][key], int | float):
            base = runs["baseline"][key]
            ratio = "-" if not base else f"{runs['ours'][key] / base:.2f}x"
            row += f"{ratio:>12}"
        print(row)
    learned = runs["ours"].get("learned")
    if learned:
        print(
            f"ours learned: provider charge {learned['scale']:.2f}x the estimate, "
            f"share left {100 * learned['request_share']:.0f} % of RPM / "
            f"{100 * learned['token_share']:.0f} % of TPM"
        )


if __name__ == "__main__":
    sys.exit(main())
