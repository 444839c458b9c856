"""What the deployment tests share: the pyspark home, spark-submit, the Delta coordinates."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyspark

ROOT = Path(__file__).resolve().parents[2]
SPARK_HOME = Path(pyspark.__file__).parent
SPARK_SUBMIT = SPARK_HOME / "bin" / "spark-submit"
#: what EMR passes to turn its own Delta on (the jars come with the cluster)
DELTA_CONF = (
    "--conf",
    "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
    "--conf",
    "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
)
#: keep a spark-submit job small on a shared 2-core machine
SMALL_CONF = (
    "--conf",
    "spark.ui.enabled=false",
    "--conf",
    "spark.sql.shuffle.partitions=2",
    "--conf",
    "spark.ui.showConsoleProgress=false",
    # Delta's 50 snapshot partitions suit a cluster's nodes, not two local cores
    "--conf",
    "spark.databricks.delta.snapshotPartitions=2",
)


def delta_package() -> str:
    """The Delta Maven coordinate that pairs with the installed pyspark and delta-spark."""
    from importlib.metadata import version

    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    return f"io.delta:delta-spark_{spark_minor}_2.13:{version('delta-spark')}"


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without anything that marks a launched Spark."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYSPARK_", "SPARK_", "FMF_", "FMF__"))
    }
    env["SPARK_HOME"] = str(SPARK_HOME)
    env.update(extra or {})
    return env


def spark_submit(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path = ROOT,
    timeout: float = 1500,
) -> subprocess.CompletedProcess[str]:
    """Run ``spark-submit`` of the pyspark package with ``args``; output captured."""
    return subprocess.run(
        [str(SPARK_SUBMIT), *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def python_exe() -> str:
    return sys.executable
