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
    """The Delta Maven coordinate that pairs with the installed pyspark and delta-spark
    (``delta-spark_4.x_2.13`` on Spark 4, ``delta-spark_2.12`` on Spark 3.5)."""
    from fmf_spark.spark import delta_packages

    (package,) = delta_packages()
    return package


#: the lock set of the running pyspark line (requirements/<set>/): what a package built
#: for the Spark the tests run on installs
LOCK_SET = "spark35" if pyspark.__version__.startswith("3.") else "spark4"


def ended_pid() -> int:
    """The PID of a process that has ended (a killed run's, for what it left behind)."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without anything that marks a launched Spark
    (``SPARK_SUBMIT_OPTS`` stays: the JVM options `make test` gives every test JVM)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k == "SPARK_SUBMIT_OPTS" or not k.startswith(("PYSPARK_", "SPARK_", "FMF_", "FMF__"))
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
