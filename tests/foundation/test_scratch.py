"""What sessions leave under ``<temp dir>/fmf_spark``: removed once their process has
ended (a killed run's shuffle files and copy of the jars would fill a small ``/tmp``),
never while a process holds them; Spark's log of an ended run kept a week."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from fmf_spark.spark import LOG_KEEP_S, hold, sweep_scratch
from tests.deploy.helpers import ended_pid


def _aged(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_an_ended_process_leaves_nothing_but_its_recent_log(tmp_path: Path) -> None:
    pid = ended_pid()
    local = tmp_path / f"local-{pid}"
    (local / "spark-1234" / "userFiles-5678").mkdir(parents=True)
    (local / "spark-1234" / "userFiles-5678" / "delta-spark.jar").write_bytes(b"jar")
    warehouse = tmp_path / f"warehouse-{pid}"
    warehouse.mkdir()
    recent_log = tmp_path / f"spark-{pid}.log"
    recent_log.write_text("the run's Spark log")
    old_pid = ended_pid()
    old_log = tmp_path / f"spark-{old_pid}.log"
    old_log.write_text("a week old")
    _aged(old_log, LOG_KEEP_S + 60)
    other = tmp_path / "cds"
    other.mkdir()

    removed = sweep_scratch(tmp_path)

    assert sorted(removed) == sorted([local, warehouse, old_log])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cds", recent_log.name]


def test_a_running_process_keeps_its_folders(tmp_path: Path) -> None:
    mine = hold(tmp_path / f"local-{os.getpid()}")
    parent = tmp_path / f"warehouse-{os.getppid()}"  # alive: the process that runs pytest
    parent.mkdir()
    assert sweep_scratch(tmp_path) == []
    assert mine.is_dir() and parent.is_dir()


def test_a_held_folder_stays_even_when_its_pid_looks_ended(tmp_path: Path) -> None:
    # a process of another PID namespace sharing the temp dir: its PID means nothing here,
    # its lock does
    folder = tmp_path / f"local-{ended_pid()}"
    folder.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY);"
            " fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
            str(folder),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert sweep_scratch(tmp_path) == []
        assert folder.is_dir()
    finally:
        holder.communicate("", timeout=30)
    assert sweep_scratch(tmp_path) == [folder]
