"""Start-up benchmark: a driver with the class archive (AppCDS) against one without.

    python benchmarks/startup.py                 # 3 session starts each way
    python benchmarks/startup.py --runs 5 --chain  # also the sample chain as `fmf run`

Each case is a fresh Python process, as every ``fmf`` command, AWS Batch task or Lambda
cold start is: ``get_spark`` builds a ``local[2]`` session with Delta, counts ten rows
and exits (**session**); with ``--chain``, ``fmf run`` of the sample chain on the
simulator (**chain**). The **baseline** is the same code with
``spark.class_archive: off``, how every version before the archive started.

The archive is written first, by one warm-up driver, into a folder of this run (the
first driver of an installation pays that once, in a detached helper after it exits).
Then the two variants alternate, so a busy moment of the machine hits both. Figures:
the median wall time of a case, and the median CPU time of the whole machine while it
ran (user + system from ``/proc/stat``: the JVM is not a waited-for child of the
process, so ``getrusage`` misses it; keep the machine otherwise quiet). Ratios are
archive / baseline: below 1 is better.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SESSION = """
import sys
from fmf_spark.config import load_config
from fmf_spark.spark import get_spark
cfg = load_config(sys.argv[1], profile="local", environ={}, overrides=sys.argv[2:])
get_spark(cfg).range(10).count()
"""


def _cpu_ticks() -> int:
    with open("/proc/stat", encoding="ascii") as stat:
        fields = stat.readline().split()[1:]
    user, nice, system = (int(v) for v in fields[:3])
    return user + nice + system


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and machine CPU seconds of one run of ``command``."""
    ticks, started = _cpu_ticks(), time.perf_counter()
    subprocess.run(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
    )
    wall = time.perf_counter() - started
    return wall, (_cpu_ticks() - ticks) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each variant")
    parser.add_argument("--chain", action="store_true", help="also the sample chain")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fmf-startup-"))
    folder = work / "cds"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    env.pop("SPARK_SUBMIT_OPTS", None)
    config = str(ROOT / "conf" / "fmf.yaml")

    def session(setting: str) -> list[str]:
        overrides = ["spark.master=local[2]", f"spark.class_archive={setting}"]
        return [sys.executable, "-c", SESSION, config, *overrides]

    def chain(setting: str) -> list[str]:
        sets = [
            f"spark.class_archive={setting}",
            f"artefacts.root={work / 'artefacts'}",
            f"exporters.outputs_delta.path={work / 'exports'}",
        ]
        flags = [part for item in sets for part in ("--set", item)]
        run = ["run", "--chain", str(ROOT / "chains" / "sample.yaml"), "--quiet"]
        return [sys.executable, "-m", "fmf_spark", "--config", config, *flags, *run]

    # the first run of an installation writes the archive: with --chain that is a chain,
    # whose driver loads the classes of Delta writes, streaming and the rest
    print(f"warm-up: one driver writes the archive under {folder}", flush=True)
    measure((chain if args.chain else session)(str(folder)), env)
    deadline = time.monotonic() + 300
    while not list(folder.glob("*.jsa")) and time.monotonic() < deadline:
        time.sleep(1)
    if not list(folder.glob("*.jsa")):
        sys.exit("no archive was written (Java 17+ needed); nothing to compare")

    cases = [("session", session)] + ([("chain", chain)] if args.chain else [])
    for name, build in cases:
        figures: dict[str, list[tuple[float, float]]] = {"archive": [], "baseline": []}
        for _ in range(args.runs):
            for variant, setting in (("baseline", "off"), ("archive", str(folder))):
                figures[variant].append(measure(build(setting), env))
                print(f"  {name} {variant}: {figures[variant][-1][0]:.1f} s", flush=True)
        wall = {v: statistics.median(w for w, _ in runs) for v, runs in figures.items()}
        cpu = {v: statistics.median(c for _, c in runs) for v, runs in figures.items()}
        print(
            f"{name}: wall {wall['archive']:.1f} s vs {wall['baseline']:.1f} s "
            f"(ratio {wall['archive'] / wall['baseline']:.2f}); "
            f"CPU {cpu['archive']:.1f} s vs {cpu['baseline']:.1f} s "
            f"(ratio {cpu['archive'] / cpu['baseline']:.2f}); median of {args.runs}",
            flush=True,
        )


if __name__ == "__main__":
    main()
