"""A quiet start: the main command prints no Ivy log and no Spark WARN line by default;
``--verbose`` brings Spark's console log back."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fmf_spark import cli
from fmf_spark import spark as spark_mod
from fmf_spark.spark import QUIET_LOG4J, delta_jars, delta_packages, session_conf, verbose_from_env
from tests.chains.helpers import first_step

ROOT = Path(__file__).resolve().parents[2]

#: what Spark's Ivy resolution and its console log look like
NOISE = re.compile(
    r":: (loading settings|resolving dependencies|retrieving|resolution report) ::"
    r"|Ivy Default Cache|The jars for the packages stored in|^\s+found \S+#\S+ in "
    r"|Host \S+ not found| WARN |log4j2-defaults\.properties",
    re.MULTILINE,
)


@pytest.mark.slow
def test_the_sample_chain_runs_quietly_from_another_folder(tmp_path: Path) -> None:
    """The sample chain with an absolute ``--config``, run from a folder that is not the
    project's (as a job or a notebook does): it finds its prompts, documents and chain
    through the config file, writes its artefacts beside it, leaves the working
    directory untouched, and prints no Ivy or Spark log line."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    for folder in ("conf", "chains", "prompts", "samples"):
        shutil.copytree(ROOT / folder, project / folder)
    # where the run starts and what it prints is the test, not the chain: its first step
    sample = project / "chains" / "sample.yaml"
    sample.write_bytes(first_step(sample))
    elsewhere.mkdir()
    # a user's shell: no FMF_* of the suite, and no MLFLOW_TRACKING_URI that an earlier
    # test's mlflow.set_tracking_uri() left in this process's environment
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("FMF_VERBOSE", "FMF_CONFIG") and not k.startswith("MLFLOW_")
    }
    fmf = Path(sys.executable).with_name("fmf")
    done = subprocess.run(
        [str(fmf), "--config", str(project / "conf" / "fmf.yaml"), "run", "--chain", "sample.yaml"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "RUN: chain sample" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith(("mlflow run: ", "run record: "))
    noise = [m.group(0) for m in NOISE.finditer(output)]
    assert noise == [], output
    (run_dir,) = [p for p in (project / "artefacts").iterdir() if p.name[0].isdigit()]
    assert f"run record: {run_dir / 'run.yaml'}" in done.stdout
    assert (project / "mlflow.db").is_file()
    assert sorted(p.name for p in elsewhere.iterdir()) == []


def test_a_quiet_session_logs_to_a_file_and_a_verbose_one_to_the_console() -> None:
    quiet = session_conf({}, ["/j/a.jar"], verbose=False)
    options = quiet["spark.driver.extraJavaOptions"]
    assert f"-Dlog4j2.configurationFile={QUIET_LOG4J.as_uri()}" in options
    assert re.search(r"-Dfmf\.spark\.log=\S+spark-\d+\.log", options)
    assert QUIET_LOG4J.is_file()

    verbose = session_conf({}, ["/j/a.jar"], verbose=True)
    assert "spark.driver.extraJavaOptions" not in verbose


def test_the_users_java_options_and_jars_are_kept() -> None:
    conf = session_conf(
        {"spark.driver.extraJavaOptions": "-Xss4m", "spark.jars": "/mine.jar"},
        ["/j/a.jar", "/j/b.jar"],
        verbose=False,
    )
    assert conf["spark.driver.extraJavaOptions"].startswith("-Xss4m -Dlog4j2.configurationFile=")
    assert conf["spark.jars"] == "/mine.jar,/j/a.jar,/j/b.jar"
    assert "spark.jars.packages" not in conf
    # a log4j configuration of the user's own wins
    own = "-Dlog4j2.configurationFile=/etc/mine.properties"
    kept = session_conf({"spark.driver.extraJavaOptions": own}, [], verbose=False)
    assert kept["spark.driver.extraJavaOptions"] == own


def test_without_resolved_jars_spark_resolves_the_delta_package() -> None:
    conf = session_conf({"spark.jars.packages": "org.x:y:1"}, None, verbose=True)
    (delta,) = delta_packages()
    assert delta.startswith("io.delta:delta-spark_")
    assert conf["spark.jars.packages"] == f"{delta},org.x:y:1"
    assert "spark.jars" not in conf


def test_custom_repositories_leave_the_resolution_to_spark() -> None:
    assert delta_jars({"spark.jars.repositories": "https://mirror.example/maven"}) is None
    assert delta_jars({"spark.jars.ivySettings": "/etc/ivysettings.xml"}) is None


def test_the_resolved_jar_list_is_reused_until_a_jar_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (coordinate,) = delta_packages()
    jar = tmp_path / "cache" / "a.jar"
    jar.parent.mkdir()
    jar.write_bytes(b"")
    manifest = tmp_path / "fmf_spark" / f"{coordinate.replace(':', '_')}.txt"
    manifest.parent.mkdir()
    manifest.write_text(f"{jar}\n")
    resolved: list[str] = []

    def resolve(coordinate: str, ivy_home: Path, *, verbose: bool) -> list[str]:
        resolved.append(coordinate)
        return [str(jar)]

    monkeypatch.setattr(spark_mod, "_resolve", resolve)
    conf = {"spark.jars.ivy": str(tmp_path)}
    assert delta_jars(conf) == [str(jar)]
    assert resolved == []  # read from the list, Ivy not run

    jar.unlink()
    assert delta_jars(conf) == [str(jar)]
    assert resolved == [coordinate]  # the list named a missing jar: resolved again


def test_fmf_verbose(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert verbose_from_env({"FMF_VERBOSE": "1"})
    assert not verbose_from_env({"FMF_VERBOSE": "0"})
    assert not verbose_from_env({})

    monkeypatch.delenv("FMF_VERBOSE", raising=False)
    monkeypatch.setattr(
        cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "tests.foundation.probe_commands")
    )
    for flags, seen in (([], "None"), (["--verbose"], "1"), (["--debug"], "1")):
        assert cli.main([*flags, "probe-env"]) == 0
        assert capsys.readouterr().out.strip() == f"FMF_VERBOSE={seen}"
        assert "FMF_VERBOSE" not in os.environ  # set for the command only
