"""The driver's class archive (AppCDS): written once by a driver at its exit, checked,
then mapped by every later driver of the same Java and pyspark."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fmf_spark import class_archive
from fmf_spark.class_archive import Plan, java_home, plan, promote

ROOT = Path(__file__).resolve().parents[2]


def _jdk(tmp_path: Path, version: str | None) -> dict[str, str]:
    home = tmp_path / f"jdk-{version}"
    (home / "bin").mkdir(parents=True)
    if version is not None:
        (home / "release").write_text(f'IMPLEMENTOR="test"\nJAVA_VERSION="{version}"\n')
    return {"JAVA_HOME": str(home), "PATH": os.environ.get("PATH", "")}


def test_off_or_an_old_or_unknown_java_adds_nothing(tmp_path: Path) -> None:
    assert plan("off", _jdk(tmp_path, "17.0.15")) is None
    assert plan(str(tmp_path / "a"), _jdk(tmp_path, "11.0.2")) is None
    assert plan(str(tmp_path / "a"), _jdk(tmp_path, "1.8.0_392")) is None
    assert plan(str(tmp_path / "a"), _jdk(tmp_path, None)) is None  # no release file
    assert not (tmp_path / "a").exists()


def test_without_an_archive_the_driver_writes_one_to_its_own_file(tmp_path: Path) -> None:
    env = _jdk(tmp_path, "17.0.15")
    folder = tmp_path / "cds"
    first = plan(str(folder), env)
    assert first is not None and first.part is not None
    assert first.part.parent == folder and str(os.getpid()) in first.part.name
    assert first.java_options.startswith(f"-XX:ArchiveClassesAtExit={first.part} ")
    assert "-Xlog:cds=off" in first.java_options

    first.final.write_bytes(b"archive")  # what a finished write leaves
    second = plan(str(folder), env)
    assert second == Plan(f"-XX:SharedArchiveFile={first.final} {class_archive.QUIET}", first.final)


def test_another_java_or_jars_is_another_archive(tmp_path: Path) -> None:
    a, b = (
        plan(str(tmp_path), _jdk(tmp_path, "17.0.15")),
        plan(str(tmp_path), _jdk(tmp_path, "21.0.2")),
    )
    assert a is not None and b is not None and a.final != b.final


def test_a_folder_it_cannot_write_without_an_archive_starts_as_before(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # no folder can be made under a file, even by root
    assert plan(str(blocked / "cds"), _jdk(tmp_path, "17.0.15")) is None


def test_part_files_of_killed_runs_are_removed_later(tmp_path: Path) -> None:
    folder = tmp_path / "cds"
    folder.mkdir()
    old, recent = folder / "spark-x.111.part", folder / "spark-x.222.part"
    old.write_bytes(b"half")
    recent.write_bytes(b"being written")
    hour_ago = time.time() - class_archive.STALE_S - 5
    os.utime(old, (hour_ago, hour_ago))
    plan(str(folder), _jdk(tmp_path, "17.0.15"))
    assert not old.exists() and recent.exists()


def test_a_mapped_archive_is_marked_used_and_old_or_surplus_ones_go(tmp_path: Path) -> None:
    env = _jdk(tmp_path, "17.0.15")
    folder = tmp_path / "cds"
    chosen = plan(str(folder), env)
    assert chosen is not None
    chosen.final.write_bytes(b"archive")
    os.utime(chosen.final, (time.time() - 3 * 86400,) * 2)
    assert plan(str(folder), env) is not None  # a driver maps it: used now
    assert time.time() - chosen.final.stat().st_mtime < 60

    # other installations' archives: five of the last days, one unused for over a week
    others = []
    for days in (1, 2, 3, 4, 5, 8):
        archive = folder / f"spark-other{days}.jsa"
        archive.write_bytes(b"archive")
        os.utime(archive, (time.time() - days * 86400,) * 2)
        others.append(archive)
    new = folder / "spark-new.jsa"
    new.write_bytes(b"just written")
    removed = class_archive.remove_unused(folder, keep=new)
    # kept: the new one and the KEEP - 1 most recently used; the week-old one went too
    assert sorted(p.name for p in folder.glob("*.jsa")) == sorted(
        [new.name, chosen.final.name, "spark-other1.jsa", "spark-other2.jsa"]
    )
    assert sorted(removed) == sorted(others[2:])


def test_an_archive_no_jvm_maps_is_never_given_its_name(tmp_path: Path) -> None:
    java = java_home(os.environ)
    if java is None:
        pytest.skip("no java")
    part, final = tmp_path / "a.123.part", tmp_path / "a.jsa"
    part.write_bytes(b"\0" * 4096)  # what a driver killed in its write leaves, say
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    check = [str(java / "bin" / "java"), "-Xshare:on", f"-XX:SharedArchiveFile={part}", "-version"]
    assert promote(gone.pid, part, final, check) is False
    assert not part.exists() and not final.exists()


_SESSION = textwrap.dedent(
    """
    import sys
    from fmf_spark.config import load_config
    from fmf_spark.spark import get_spark

    cfg = load_config(
        sys.argv[1], profile="local", environ={},
        overrides=["spark.master=local[1]", "spark.class_archive=" + sys.argv[2]],
    )
    spark = get_spark(cfg)
    print("rows", spark.range(5).count())
    """
)


def _session(folder: Path, **env: str) -> str:
    run = subprocess.run(
        [sys.executable, "-c", _SESSION, str(ROOT / "conf" / "fmf.yaml"), str(folder)],
        env={**os.environ, "PYSPARK_PYTHON": sys.executable, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


@pytest.mark.slow
def test_the_first_driver_writes_the_archive_and_the_next_maps_it(tmp_path: Path) -> None:
    if plan(str(tmp_path / "probe")) is None:
        pytest.skip("no Java 17+ here")
    folder = tmp_path / "cds"
    assert "rows 5" in _session(folder)
    # the write happens after the first process exited, in a detached helper
    deadline = time.monotonic() + class_archive.WRITE_TIMEOUT_S
    while not list(folder.glob("*.jsa")) and time.monotonic() < deadline:
        time.sleep(1)
    (archive,) = folder.glob("*.jsa")
    assert not list(folder.glob("*.part"))

    loaded = tmp_path / "classes.log"
    out = _session(folder, SPARK_SUBMIT_OPTS=f"-Xlog:class+load=info:file={loaded}")
    assert "rows 5" in out and "cds" not in out.lower()
    lines = loaded.read_text().splitlines()
    spark_context = [line for line in lines if "org.apache.spark.SparkContext " in line]
    assert spark_context and "shared objects file (top)" in spark_context[0], spark_context
    mapped = sum("shared objects file (top)" in line for line in lines)
    assert mapped > 5000, (mapped, len(lines))  # Spark's classes, not a handful
    assert list(folder.glob("*.jsa")) == [archive]
