"""The wheel the bundle deploys, built once per test session by the bundle's own command."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy.bundle import ROOT, artifact_build_command


@pytest.fixture(scope="session")
def bundle_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``fmf_spark`` wheel, built by the ``build`` command of databricks.yml's artifact."""
    wheel_dir = tmp_path_factory.mktemp("dist")
    subprocess.run(
        artifact_build_command(wheel_dir), cwd=ROOT, check=True, capture_output=True, timeout=600
    )
    (wheel,) = wheel_dir.glob("*.whl")
    return wheel
