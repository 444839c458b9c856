"""Kill-and-rerun benchmark: how many calls a rerun pays again after the driver is killed.

    python benchmarks/durability.py                    # 600 one-chunk documents, 600 RPM
    python benchmarks/durability.py --documents 1800   # the issue's size (~3 min a run)

A chain of one step over ``--documents`` one-chunk documents runs as ``fmf run``
(``python -m fmf_spark run``, ``local[2]``, 2 tasks x 4 calls in flight) against the
simulator over HTTP, at ``--rpm`` (enforced by the simulator over 1 s windows, and the
provider's limiter aims at it). Once the simulator has answered ``--kill-at`` of the
requests, the driver's whole process group gets ``SIGKILL`` (as a pre-empted driver or
a job timeout would); then the same command runs again to the end.

Figures, all from the simulator's own counters:

- calls before the kill: requests that reached the simulator in the killed run;
- in flight at the kill: requests the killed run sent and the quota admitted (so
  charged) that had no answer at the kill (with those the simulator read from its
  socket only after the kill);
- rerun calls (paid): requests of the rerun that the quota admitted (its 429s cost
  nothing);
- paid twice: rerun requests whose identical request had already been answered in
  the killed run (the simulator's ``repeat_success``), also as % of the calls before
  the kill. Target 0, at most the requests in flight at the kill.

Side by side: **durable progress** with the defaults (``inference.progress_rows`` /
``progress_seconds``: tasks commit their answers while the step runs, at most 1 s
late), **every answer** (``progress_rows=1``: a commit per answer, so only the calls in
flight can be paid twice, at one small file per answer) and the **baseline**, the same
code with ``inference.progress_rows=0``, which is how every version before durable
progress behaved: answers reached the request cache only when a step finished.

:func:`run_kill_and_rerun` returns the three as a dict (``benchmarks/inference.py`` prints
it with its own figures); :func:`kill_and_rerun` is one case (the durability test runs
it on a small chain).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CHAIN = """\
name: durability
inputs: {connector: samples, select: "**/*.md"}
steps:
  - id: summarize
    prompt: summarize_chunk#1
    scope: chunk
    inputs: {path: "${doc.path}", text: "${chunk.text}"}
    params: {concurrency: %(concurrency)d, max_tokens: 32}
"""


def write_inputs(folder: Path, documents: int, concurrency: int) -> Path:
    """One-chunk documents under ``folder/docs`` and the chain; returns the chain file."""
    docs = folder / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    for i in range(documents):
        (docs / f"doc-{i:05d}.md").write_text(
            f"# Note {i}\n\nDelivery {i} for supplier {i % 37} is due in week {i % 52}.\n",
            encoding="utf-8",
        )
    chain = folder / "chain.yaml"
    chain.write_text(CHAIN % {"concurrency": concurrency}, encoding="utf-8")
    return chain


def fmf_run_command(
    chain: Path, folder: Path, sim_url: str, rpm: int, settings: list[str]
) -> list[str]:
    """``python -m fmf_spark run`` of the chain against the running simulator."""
    sets = [
        f"connectors.samples.root={folder / 'docs'}",
        f"prompts.dir={ROOT / 'prompts'}",
        "observability.mlflow.enabled=false",
        "spark.master=local[2]",
        "spark.shuffle_partitions=2",
        "inference.tasks=2",
        f"inference.providers.simulator.base_url={sim_url}",
        f"inference.providers.simulator.rate_limit.requests_per_minute={rpm}",
        "inference.providers.simulator.rate_limit.window_s=1",
        *settings,
    ]
    command = [sys.executable, "-m", "fmf_spark", "run", "--chain", str(chain)]
    command += ["--config", str(ROOT / "conf" / "fmf.yaml"), "--profile", "local"]
    command += ["--artefacts", str(folder / "artefacts")]
    for value in sets:
        command += ["--set", value]
    return command


def _start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with log.open("ab") as out:
        # its own process group: the kill takes the driver, its JVM and Python workers
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True
        )


def kill_and_rerun(
    folder: Path,
    *,
    documents: int,
    rpm: int,
    settings: list[str],
    kill_at: float = 1 / 3,
    concurrency: int = 4,
    latency_ms: float = 200.0,
    timeout_s: float = 900.0,
    quiet_s: float = 0.0,
) -> dict[str, Any]:
    """Run the chain, ``SIGKILL`` its process group after ``kill_at`` of the answers,
    rerun it to the end; return the simulator's figures and where the artefacts are.

    Args:
        folder: an empty working folder (documents, chain, artefacts, logs).
        documents: one-chunk documents, so one request each.
        rpm: the quota (simulator and provider).
        settings: more ``--set`` values (``inference.progress_rows=0``: the baseline).
        kill_at: share of the requests answered when the driver is killed.
        concurrency: calls in flight per task (2 tasks).
        latency_ms: the simulator's mean answer latency.
        timeout_s: the longest each run may take.
        quiet_s: once the answers are there, hold every new call back (the simulator
            answers 429, which nobody pays for and the run retries) and kill once no
            answer has been sent for this long (0: kill at once). Every answer sent has
            then had this long to reach its task, also on a busy machine, so the figures
            count only what durable progress lost, not answers still on the wire.
    """
    from fmf_spark.simulator import SimulatorServer, SimulatorSettings

    chain = write_inputs(folder, documents, concurrency)
    log = folder / "fmf.log"
    sim_settings = SimulatorSettings(
        requests_per_minute=rpm, tokens_per_minute=None, window_s=1, latency_ms=latency_ms
    )
    with SimulatorServer(sim_settings) as sim:
        command = fmf_run_command(chain, folder, sim.url, rpm, settings)
        first = _start(command, log)
        target = max(1, round(documents * kill_at))
        deadline = time.monotonic() + timeout_s
        while sim.stats()["ok"] < target:
            if first.poll() is not None:
                raise RuntimeError(f"fmf run ended before the kill; see {log}")
            if time.monotonic() > deadline:
                first.kill()
                raise RuntimeError(f"no {target} answers in {timeout_s:.0f} s; see {log}")
            time.sleep(0.02)
        if quiet_s > 0:
            # a pause in the answers that the quota's pace does not give on its own: a
            # storm until the kill, which the calls in flight outlive (they are answered)
            sim.storm(timeout_s)
            while time.time() - (sim.stats()["last_ts"] or 0.0) < quiet_s:
                time.sleep(0.01)
        # the simulator's threads report the connections the kill resets: not news here
        with contextlib.redirect_stderr(io.StringIO()):
            os.killpg(first.pid, signal.SIGKILL)
            at_kill = sim.stats()
            first.wait()
            time.sleep(max(1.0, 3 * latency_ms / 1000))  # calls in flight end at the simulator
            before = sim.stats()
            sim.storm(0)  # the rerun is answered
        if before["ok"] >= documents:
            raise RuntimeError("the killed run had answered everything: kill earlier")

        rerun = _start(command, log)
        code = rerun.wait(timeout=timeout_s)
        if code != 0:
            raise RuntimeError(f"the rerun failed ({code}); see {log}")
        after = sim.stats()
    calls_before = before["requests"]
    paid_twice = after["repeat_success"] - before["repeat_success"]
    return {
        "documents": documents,
        "settings": settings,
        "answered_at_kill": at_kill["ok"],
        # sent before the kill, paid (admitted by the quota), not answered at the kill:
        # also those the simulator read from its socket only after the kill
        "in_flight_at_kill": before["accepted"] - at_kill["ok"],
        "max_in_flight": 2 * concurrency,
        "calls_before_kill": calls_before,
        "answered_before_kill": before["ok"],
        "rerun_calls": after["requests"] - before["requests"],
        # the rerun's calls the quota admitted: what the rerun paid for (its 429s not)
        "rerun_paid": after["accepted"] - before["accepted"],
        "paid_twice": paid_twice,
        "paid_twice_pct": round(100.0 * paid_twice / calls_before, 2) if calls_before else 0.0,
        "artefacts": str(folder / "artefacts"),
    }


def run_kill_and_rerun(args: argparse.Namespace) -> dict[str, Any]:
    """The kill-and-rerun case: durable progress (defaults, every answer), the baseline.

    ``args``: ``documents``, ``rpm``, ``kill_at`` (see :func:`parse_args`; the inference
    benchmark passes its own arguments, which have no ``kill_at``: a third).
    """
    kill_at = getattr(args, "kill_at", 1 / 3)
    results: dict[str, Any] = {}
    cases = {
        "durable (defaults)": [],
        "every answer (rows=1)": ["inference.progress_rows=1"],
        "baseline (rows=0)": ["inference.progress_rows=0"],
    }
    for name, settings in cases.items():
        with tempfile.TemporaryDirectory(prefix="fmf-durability-") as tmp:
            case = kill_and_rerun(
                Path(tmp),
                documents=args.documents,
                rpm=args.rpm,
                settings=settings,
                kill_at=kill_at,
            )
        case.pop("artefacts")
        results[name] = case
    return results


def print_table(results: dict[str, Any]) -> None:
    """The two cases side by side."""
    rows = [
        ("calls before the kill", "calls_before_kill"),
        ("in flight at the kill", "in_flight_at_kill"),
        ("rerun calls (paid)", "rerun_paid"),
        ("calls paid twice", "paid_twice"),
        ("paid twice, % of calls before the kill", "paid_twice_pct"),
    ]
    names = list(results)
    print(f"{'kill and rerun':42}" + "".join(f"{n:>24}" for n in names))
    for label, key in rows:
        print(f"{label:42}" + "".join(f"{results[n][key]!s:>24}" for n in names))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--documents", type=int, default=600)
    parser.add_argument("--rpm", type=int, default=600)
    parser.add_argument("--kill-at", type=float, default=1 / 3)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"kill and rerun: {args.documents} one-chunk documents, {args.rpm} RPM, "
        f"driver killed after {args.kill_at:.0%} of the answers"
    )
    print_table(run_kill_and_rerun(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
