"""The sample run the observability tests look at, made once per session.

A two-step chain (chunk summaries, then one answer per document) over three small
documents, against the simulator with a binding quota (4 requests per 1 s window),
three forced 429s and one chunk refused by the content filter, with an export to a
Delta table; OpenTelemetry on, exporting to a local OTLP/HTTP receiver that requires a
bearer token resolved from a secret. The tests then check the trace, the metrics, the
run report and the run index of this one real run.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fmf_spark.chains.model import Chain
from fmf_spark.config import load_config
from fmf_spark.config.models import FmfConfig
from fmf_spark.observability.redaction import clear_secrets
from fmf_spark.simulator import FaultRule, SimulatorServer, SimulatorSettings
from tests.chains.helpers import ROOT, make_registry
from tests.servers.otlp import OtlpReceiver, otlp_receiver

OTEL_TOKEN = "otel-SENTINEL-7d41c0ffee9b2a"
RPM, WINDOW_S = 240, 1.0

SECTION = (
    "The {name} team reviewed delivery times and invoice disputes. Most suppliers met "
    "the agreed terms, and two contracts were renewed for another year. "
)


def write_docs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    long = "\n\n".join(f"## Part {i}\n\n" + SECTION.format(name=f"unit {i}") * 3 for i in range(4))
    (folder / "annual.md").write_text("# Annual review\n\n" + long, encoding="utf-8")
    (folder / "memo.md").write_text(
        "# Memo\n\nSupplier onboarding moves to the new portal.\n", encoding="utf-8"
    )
    (folder / "notes.md").write_text("# Notes\n\nThe office moves on Monday.\n", encoding="utf-8")


CHAIN: dict[str, Any] = {
    "name": "observed",
    "inputs": {"connector": "samples", "select": "**/*.md"},
    "processing": {"chunking": {"strategy": "markdown", "max_tokens": 64, "overlap_tokens": 0}},
    "steps": [
        {
            "id": "extract",
            "prompt": "extract#1",
            "scope": "chunk",
            "inputs": {"text": "${chunk.text}", "path": "${doc.path}"},
            "params": {"concurrency": 2},
            "on_error": "continue",
            "max_failed_ratio": 0.5,
        },
        {
            "id": "per_doc",
            "prompt": "combine#1",
            "scope": "document",
            "inputs": {"items": "${steps.extract.output_json.summary}"},
            "on_error": "continue",
            "max_failed_ratio": 1.0,
        },
    ],
    "outputs": [{"export": "outputs_delta"}],
}


@dataclass
class SampleRun:
    config: FmfConfig
    result: Any
    receiver: OtlpReceiver
    simulator_stats: dict[str, Any]
    artefacts: Path
    tmp: Path
    progress: str


def sample_config(tmp: Path, sim_url: str, otlp_url: str, **more: str) -> FmfConfig:
    overrides = [
        f"connectors.samples.root={tmp / 'docs'}",
        f"artefacts.root={tmp / 'artefacts'}",
        f"exporters.outputs_delta.path={tmp / 'exports' / 'outputs'}",
        f"observability.mlflow.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
        "prompts.mlflow_sync=false",
        "inference.default_provider=sim",
        "inference.providers.sim={type: openai, base_url: '" + sim_url + "', "
        "model: sim-gpt-4o-mini, concurrency: 2, "
        f"rate_limit: {{requests_per_minute: {RPM}, window_s: {WINDOW_S}}}, "
        "retry: {base_delay_s: 0.01, max_delay_s: 0.05}}",
        "inference.tasks=2",
        "secrets.names.otel_token={provider: env, key: FMF_TEST_OTEL_TOKEN}",
        "observability.otel.enabled=true",
        f"observability.otel.endpoint={otlp_url}",
        "observability.otel.headers={authorization: {secret: otel_token}}",
        "observability.otel.model_call_sample_ratio=1.0",
        *[f"{k}={v}" for k, v in more.items()],
    ]
    return load_config(ROOT / "conf" / "fmf.yaml", profile="local", environ={}, overrides=overrides)


@pytest.fixture(scope="session")
def sample_run(spark, tmp_path_factory) -> Iterator[SampleRun]:
    from fmf_spark.cli.app import run_chain
    from fmf_spark.observability.progress import configure_progress

    tmp = tmp_path_factory.mktemp("observed")
    write_docs(tmp / "docs")
    registry = make_registry(tmp / "prompts")
    # the secret holds the header's whole value
    os.environ["FMF_TEST_OTEL_TOKEN"] = f"Bearer {OTEL_TOKEN}"
    settings = SimulatorSettings(
        requests_per_minute=RPM,
        tokens_per_minute=None,
        window_s=WINDOW_S,
        latency_ms=30,
        latency_sigma=0.5,
        faults=[
            FaultRule(kind="rate_limit", times=3, retry_after_s=0.3),
            FaultRule(kind="content_filter", match="Supplier onboarding"),
        ],
    )
    with (
        SimulatorServer(settings) as sim,
        otlp_receiver({"authorization": f"Bearer {OTEL_TOKEN}"}) as receiver,
    ):
        cfg = sample_config(tmp, sim.openai_base_url, receiver.url)
        chain = Chain.model_validate(CHAIN)
        progress = io.StringIO()
        configure_progress("lines", 0.5, stream=progress)  # what `fmf run --progress` sets
        try:
            result = run_chain(spark, chain, cfg, registry=registry)
        finally:
            configure_progress("off")
        stats = sim.stats()
        yield SampleRun(cfg, result, receiver, stats, tmp / "artefacts", tmp, progress.getvalue())
    os.environ.pop("FMF_TEST_OTEL_TOKEN", None)
    clear_secrets()
