"""``fmf infer`` and ``fmf simulator serve`` end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from fmf_spark.cli import main
from fmf_spark.simulator import SimulatorServer

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, url: str) -> Path:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "extract.yaml").write_text(
        """id: extract
versions:
  "1":
    variables: [text]
    messages:
      - {role: system, content: Extract the vendor.}
      - {role: user, content: "{{ text }}"}
    params: {max_tokens: 50}
    response_schema:
      type: object
      properties: {vendor: {type: string}}
      required: [vendor]
""",
        encoding="utf-8",
    )
    config = tmp_path / "fmf.yaml"
    config.write_text(
        f"""inference:
  default_provider: sim
  providers:
    sim: {{type: openai, base_url: "{url}/v1", model: gpt-4o-mini}}
  prices:
    gpt-4o-mini: {{input_per_1k: 0.15, output_per_1k: 0.6}}
prompts: {{dir: "{prompts}"}}
observability: {{mlflow: {{enabled: false}}}}
""",
        encoding="utf-8",
    )
    return config


def test_infer_streams_a_template_answer(
    tmp_path: Path, sim: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, sim.url)
    (tmp_path / "in.txt").write_text("Invoice from ACME Corp", encoding="utf-8")
    (tmp_path / "t.txt").write_text("Who sent this?\n{{ text }}", encoding="utf-8")
    code = main(
        [
            "--config",
            str(config),
            "infer",
            "--template",
            str(tmp_path / "t.txt"),
            "--input",
            str(tmp_path / "in.txt"),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert out == "[gpt-4o-mini] Answer about: Who sent this Invoice from ACME Corp.\n"
    # 15 prompt tokens at 0.15 + 19 completion tokens at 0.6 per 1k
    assert "15 prompt + 19 completion tokens, $0.013650" in err and "1 call(s)" in err
    assert sim.stats()["ok"] == 1


def test_infer_uses_a_registry_prompt_and_its_schema(
    tmp_path: Path, sim: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, sim.url)
    (tmp_path / "in.txt").write_text("Invoice from ACME Corp", encoding="utf-8")
    code = main(
        [
            "--config",
            str(config),
            "infer",
            "--prompt",
            "extract#1",
            "--input",
            str(tmp_path / "in.txt"),
            "--no-stream",
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    assert out.strip().startswith('{"vendor":')


def test_infer_reports_a_provider_error_on_one_line(
    tmp_path: Path, sim: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from fmf_spark.simulator import FaultRule

    sim.set_faults([FaultRule(kind="context_length")])
    config = write_config(tmp_path, sim.url)
    (tmp_path / "in.txt").write_text("x", encoding="utf-8")
    code = main(
        [
            "--config",
            str(config),
            "infer",
            "--template",
            str(tmp_path / "in.txt"),
            "--input",
            str(tmp_path / "in.txt"),
        ]
    )
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("error: inference.context_length: HTTP 400 context_length_exceeded")


def test_simulator_serve_runs_until_interrupted(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fmf_spark.cli",
            "--config",
            str(ROOT / "conf" / "fmf.yaml"),
            "simulator",
            "serve",
            "--rpm",
            "6",  # one request per 10 s window
            "--window-s",
            "10",
            "--token-accounting",
            "max_tokens",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("simulator listening on http://127.0.0.1:")
        url = first.split(" on ", 1)[1].strip()
        banner = [proc.stdout.readline() for _ in range(5)]
        assert banner[-1].strip().endswith("tokens charged as max_tokens")
        tpm = int(banner[-1].split(" RPM, ")[1].split(" TPM")[0])
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
        answers = [
            httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10) for _ in range(12)
        ]
        codes = [a.status_code for a in answers]
        # every answer says what is left of the window: only max_tokens was charged
        left = {int(a.headers["x-ratelimit-remaining-tokens"]) for a in answers}
        assert left == {int(tpm * 10 / 60) - 5}
        # the windows are fixed (epoch-aligned): 12 requests that straddle one boundary
        # still get at least 10 refusals; only 12 requests spread over 110 s get fewer
        # than 2 (at 60 RPM, 10 per window, a straddle could leave none)
        assert codes.count(200) >= 1
        assert codes.count(429) >= 2
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "stopped: 12 requests" in out
