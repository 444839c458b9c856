"""The wheel builds, carries py.typed, and `fmf --help` works without pyspark."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_installs_without_pyspark(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(ROOT)],
        check=True,
        timeout=300,
    )
    (wheel,) = dist.glob("fmf_spark-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "fmf_spark/py.typed" in names
    assert "fmf_spark/cli/__init__.py" in names
    assert "fmf_spark/log4j2-quiet.properties" in names  # the quiet Spark log config

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", str(wheel)], check=True, timeout=600
    )

    no_spark = subprocess.run([str(py), "-c", "import pyspark"], capture_output=True, timeout=60)
    assert no_spark.returncode != 0, "the base wheel must not pull pyspark"

    fmf = env_dir / "bin" / "fmf"
    helped = subprocess.run([str(fmf), "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert "<command>" in helped.stdout and "config" in helped.stdout

    validated = subprocess.run(
        [str(fmf), "--config", str(ROOT / "conf" / "fmf.yaml"), "config", "validate"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert validated.returncode == 0, validated.stderr
    assert "config OK" in validated.stdout

    # fmf-job (the Databricks wheel task's entry point) exits with the failed run's code
    failed = subprocess.run(
        [
            str(env_dir / "bin" / "fmf-job"),
            "--config",
            str(tmp_path / "none.yaml"),
            "config",
            "validate",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 2, failed.stderr
    assert failed.stderr.startswith("error: config.invalid: cannot read config file")

    # a command that needs an extra fails with the pip command that fixes it
    aws_conf = tmp_path / "aws.yaml"
    aws_conf.write_text(
        "secrets:\n  providers: {sm: {type: aws_secrets_manager, region: us-east-1}}\n"
        "  names: {k: {provider: sm, key: x}}\n"
    )
    keys = subprocess.run(
        [str(fmf), "--config", str(aws_conf), "keys", "test"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert keys.returncode == 2
    assert "pip install 'fmf-spark[aws]'" in keys.stdout
