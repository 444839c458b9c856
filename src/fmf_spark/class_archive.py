"""JVM class-data sharing (AppCDS) for the driver of a session fmf_spark starts itself.

A Spark driver JVM loads and verifies some twenty thousand classes before its first job:
on this project's 2-core machines that is about 13 CPU-seconds and 11 s of wall time for
a session that counts ten rows (C1 only). A dynamic CDS archive of those classes, mapped
at start, halves both (see ``benchmarks/startup.py``). Every ``fmf`` command, local
test run, AWS Batch task and Lambda cold start pays that start.

How it works, per Java and pyspark installation (an archive is only valid for the JVM
build and the jars it was written from, so its name is a hash of both):

- **archive present**: the driver maps it (``-XX:SharedArchiveFile``).
- **absent**: the driver records the classes it loads and writes them when it exits
  (``-XX:ArchiveClassesAtExit``) to a file private to this process. When this Python
  process exits, it ends the JVM and leaves a detached helper to wait for the write
  (15-20 s of one core, once per installation; nobody waits for it), check the file with
  a throwaway ``java -Xshare:on`` on the driver's own class path, and only then give it
  its final name (an atomic rename). A partial archive crashes the JVM that maps it
  (SIGBUS), so a file left by a killed run is never used; it is deleted later.

``FMF_CLASS_ARCHIVE_WAIT=1`` makes the exiting process wait for the helper instead: a
container image build or a test set-up runs the sample chain once that way, and the
archive is in place when the command returns (``scripts/warm_class_archive.sh``).

Never for a session the platform launched (Databricks, EMR, spark-submit) or a remote
Spark Connect server: those JVMs are not started here. Needs Java 17 or later (read from
the JDK's ``release`` file); with anything else, or ``spark.class_archive: off``, the
driver starts as before. The JVM's own CDS messages are turned off: an archive that does
not fit (another heap size, say) is silently not used.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fmf_spark.observability.logging import get_logger

log = get_logger(__name__)

#: the JVM's messages about the archive (a mismatch warns on stdout) stay off
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"
#: a part file older than this belongs to a run that did not finish its write
STALE_S = 3600.0
#: archives kept in a folder: the most recently used ones (a driver that maps one marks
#: it used); the others, and any unused for a week, go when a new one is written (each
#: reinstall of pyspark or the JDK makes a new one of 150-210 MB)
KEEP = 4
UNUSED_S = 7 * 86400.0
#: the longest an exiting driver is waited for while it writes the archive
WRITE_TIMEOUT_S = 300.0
MIN_JAVA = 17

_writing: set[Path] = set()


@dataclass(frozen=True)
class Plan:
    """What one driver does with the archive: map it, or write it at exit."""

    java_options: str
    final: Path
    part: Path | None = None  # set when this driver writes the archive


def default_folder() -> Path:
    return Path(tempfile.gettempdir()) / "fmf_spark" / "cds"


def plan(setting: str, environ: Mapping[str, str] | None = None) -> Plan | None:
    """The archive options for a driver about to start, or ``None`` (off, no Java 17+).

    Args:
        setting: ``spark.class_archive``: ``auto`` (a folder under the temp dir),
            ``off``, or the folder to keep archives in (a container image bakes one there).
        environ: where ``JAVA_HOME`` and ``SPARK_HOME`` are read (default ``os.environ``).
    """
    if setting.strip().lower() in ("off", "false", "no", "none", ""):
        return None
    env = os.environ if environ is None else environ
    home = java_home(env)
    if home is None or (java_major(home) or 0) < MIN_JAVA:
        return None
    folder = default_folder() if setting.strip().lower() == "auto" else Path(setting)
    final = folder / f"spark-{installation_key(home, env)}.jsa"
    if final.is_file():
        _mark_used(final)
        return Plan(f"-XX:SharedArchiveFile={final} {QUIET}", final)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale(folder)
    except OSError:
        return None  # a read-only folder without an archive: start as before
    if not os.access(folder, os.W_OK):
        return None
    part = folder / f"{final.stem}.{os.getpid()}.part"
    return Plan(f"-XX:ArchiveClassesAtExit={part} {QUIET}", final, part)


def java_home(environ: Mapping[str, str]) -> Path | None:
    """The JDK spark-submit runs: ``JAVA_HOME``, else the ``java`` on ``PATH``."""
    if environ.get("JAVA_HOME"):
        return Path(environ["JAVA_HOME"])
    java = shutil.which("java", path=environ.get("PATH"))
    return Path(os.path.realpath(java)).parent.parent if java else None


def java_major(home: Path) -> int | None:
    """The JDK's feature version from its ``release`` file (``JAVA_VERSION="17.0.15"``)."""
    try:
        text = (home / "release").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = re.search(r'^JAVA_VERSION="(?:1\.)?(\d+)', text, re.MULTILINE)
    return int(found.group(1)) if found else None


def installation_key(home: Path, environ: Mapping[str, str]) -> str:
    """A hash of what the archive depends on: the JDK build and Spark's jars."""
    import pyspark

    spark_home = Path(environ.get("SPARK_HOME") or os.path.dirname(pyspark.__file__))
    digest = hashlib.sha256()
    digest.update(str(home.resolve()).encode())
    digest.update((home / "release").read_bytes())
    digest.update(pyspark.__version__.encode())
    jars = spark_home / "jars"
    for entry in sorted(os.scandir(jars), key=lambda e: e.name) if jars.is_dir() else []:
        info = entry.stat()
        digest.update(f"{entry.name}:{info.st_size}:{int(info.st_mtime)}".encode())
    return digest.hexdigest()[:16]


def started(chosen: Plan | None) -> None:
    """After the session started: when its driver writes the archive, finish the write
    when this process exits."""
    # one JVM per process: a second session is the same driver, already registered
    if chosen is None or chosen.part is None or chosen.part in _writing:
        return
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    proc = getattr(gateway, "proc", None)
    if gateway is None or proc is None or proc.stdin is None:
        return
    jvm = gateway.jvm
    runtime = jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    check = [
        str(Path(jvm.System.getProperty("java.home")) / "bin" / "java"),
        "-Xshare:on",
        f"-XX:SharedArchiveFile={chosen.part}",
        *[a for a in runtime.getInputArguments() if str(a).startswith("--add-")],
        "-cp",
        str(jvm.System.getProperty("java.class.path")),
        "-version",
    ]
    _writing.add(chosen.part)
    atexit.register(_finish, proc, chosen, check)
    log.debug("this driver writes the class archive %s when it exits", chosen.final)


def _finish(proc: subprocess.Popen[bytes], chosen: Plan, check: list[str]) -> None:
    """At exit: end the driver (its stdin closing is its signal) and leave the wait for
    its write, the check and the rename to a detached helper, so no one waits for it."""
    assert chosen.part is not None
    try:
        if proc.poll() is None and proc.stdin is not None:
            proc.stdin.close()
        helper = subprocess.Popen(
            [
                sys.executable,
                "-m",
                __name__,
                str(proc.pid),
                str(chosen.part),
                str(chosen.final),
                *check,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if os.environ.get("FMF_CLASS_ARCHIVE_WAIT", "") not in ("", "0"):
            helper.wait()  # an image build or a test set-up: the archive is there after
    except OSError as exc:
        log.debug("no class archive this time: %s", exc)


def promote(pid: int, part: Path, final: Path, check: list[str]) -> bool:
    """Once the driver ``pid`` has exited, give its archive its final name if a JVM maps
    it (``check``: ``java -Xshare:on`` on the driver's class path); else delete it."""
    try:
        deadline = time.monotonic() + WRITE_TIMEOUT_S
        while alive(pid):
            if time.monotonic() > deadline:
                return False  # left as a stale part file
            time.sleep(0.2)
        run = subprocess.run(
            check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60
        )
        if part.is_file() and run.returncode == 0:
            os.replace(part, final)
            remove_unused(final.parent, keep=final)
            return True
    except (OSError, subprocess.SubprocessError):
        pass
    part.unlink(missing_ok=True)
    return False


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its parent counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): the signal said it exists
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _mark_used(archive: Path) -> None:
    """Set the archive's mtime to now: mapping a file does not (``remove_unused``)."""
    with contextlib.suppress(OSError):  # a read-only image folder: never swept either
        os.utime(archive)


def remove_unused(folder: Path, keep: Path) -> list[Path]:
    """Delete the archives of ``folder`` beyond the :data:`KEEP` most recently used, and
    those unused for :data:`UNUSED_S`; never ``keep``. A driver that maps one of them
    keeps its mapping (the file goes when it exits). Returns the deleted paths."""
    now = time.time()
    dated = []
    for archive in folder.glob("spark-*.jsa"):
        try:
            dated.append((archive.stat().st_mtime, archive))
        except OSError:
            continue
    dated.sort(reverse=True)
    removed = []
    for rank, (mtime, archive) in enumerate(dated):
        if archive == keep or (rank < KEEP and now - mtime <= UNUSED_S):
            continue
        try:
            archive.unlink()
            removed.append(archive)
        except OSError:
            pass
    return removed


def _remove_stale(folder: Path) -> None:
    """Part files of runs that ended without finishing their write."""
    now = time.time()
    for part in folder.glob("*.part"):
        try:
            if now - part.stat().st_mtime > STALE_S:
                part.unlink()
        except OSError:
            pass


if __name__ == "__main__":  # the detached helper of :func:`_finish`
    promote(int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:])
