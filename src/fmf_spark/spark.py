"""The Spark session factory.

:func:`get_spark` returns the active session when there is one (Databricks, Fabric,
notebooks). When Spark was launched by the platform but no session exists yet
(``spark-submit`` on EMR or anywhere: the driver runs inside a JVM spark-submit started,
with the master and jars the platform chose), it takes
``SparkSession.builder.getOrCreate()`` as it is: no master, no Delta packages, no conf
of ours. Only a plain ``python``/``fmf`` process builds a local session, with Delta
configured through ``delta.configure_spark_with_delta_pip`` (the Delta jars come from
Maven Central into ``~/.ivy2`` on first use) unless the config's ``spark.conf`` names
its own jars (``spark.jars``: jars baked into a container image, no Maven at run time),
``PYSPARK_PYTHON`` set to the running interpreter so the Python workers see the same
packages, Arrow on and a small number of shuffle partitions.

Secrets never go into Spark conf: ``spark.sparkContext.getConf().getAll()`` is shown in
the Spark UI and in event logs.
"""

from __future__ import annotations

import glob
import os
import sys
from typing import TYPE_CHECKING

from fmf_spark._deps import require
from fmf_spark.errors import ConfigError
from fmf_spark.observability.logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyspark.sql import SparkSession

    from fmf_spark.config.models import FmfConfig

log = get_logger(__name__)

#: conf keys that bring their own jars: a locally built session then adds no Delta package
JAR_KEYS = ("spark.jars", "spark.jars.packages")

LOCAL_DEFAULTS: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.driver.memory": "2g",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
}


def get_spark(
    config: FmfConfig | None = None, *, extra_conf: dict[str, str] | None = None
) -> SparkSession:
    """Return the active or platform-launched Spark session, or build a local one with Delta.

    Args:
        config: the fmf config; its ``spark`` section sets master, app name, shuffle
            partitions and extra conf for a locally built session. A session the
            platform launched (see :func:`platform_launch`) ignores it.
        extra_conf: more conf for a locally built session (tests, benchmarks).

    Example:
        >>> spark = get_spark()  # doctest: +SKIP
        >>> spark.range(3).write.format("delta").save("/tmp/t")  # doctest: +SKIP
    """
    require("pyspark")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    launched = platform_launch()
    if launched is not None:
        # the platform chose master, jars (EMR's own Delta) and conf: take them as they are
        platform: SparkSession = SparkSession.builder.getOrCreate()
        log.info(
            "using the Spark session of the platform (%s), master %s",
            launched,
            platform.conf.get("spark.master", "unknown"),
        )
        return platform

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

    master, app_name, partitions, user_conf = "local[*]", "fmf_spark", 8, {}
    if config is not None:
        master = config.spark.master
        app_name = config.spark.app_name
        partitions = config.spark.shuffle_partitions
        user_conf = dict(config.spark.conf)
    if master.startswith("local-cluster"):
        # executors of local-cluster are launched through SPARK_HOME's scripts
        import pyspark

        os.environ.setdefault("SPARK_HOME", os.path.dirname(pyspark.__file__))

    builder = SparkSession.builder.master(master).appName(app_name)
    conf = {**LOCAL_DEFAULTS, "spark.sql.shuffle.partitions": str(partitions)}
    conf.update(user_conf)
    conf.update(extra_conf or {})
    if conf.get("spark.jars"):
        conf["spark.jars"] = expand_jars(conf["spark.jars"])
    for key, value in conf.items():
        builder = builder.config(key, value)
    if not brings_own_jars(conf):
        builder = require("delta").configure_spark_with_delta_pip(builder)
    session: SparkSession = builder.getOrCreate()
    return session


def expand_jars(value: str) -> str:
    """``spark.jars`` with its globs expanded (``/opt/fmf/jars/*.jar`` -> the jars there).

    spark-submit expands globs for the driver's class path but the SparkContext would
    try to add the pattern itself as a jar; a pattern that matches nothing is an error
    here, not a ClassNotFoundException at the first Delta write.

    Raises:
        ConfigError: a pattern matches no file.
    """
    out: list[str] = []
    for item in (part.strip() for part in value.split(",")):
        if not any(c in item for c in "*?["):
            out += [item] if item else []
            continue
        matches = sorted(glob.glob(item))
        if not matches:
            raise ConfigError(
                f"spark.conf.spark.jars: no file matches {item}",
                hint="fetch the jars with scripts/fetch_jars.py <folder> (the images do)",
            )
        out += matches
    return ",".join(out)


def brings_own_jars(conf: Mapping[str, str]) -> bool:
    """Whether ``conf`` names its own jars (then Delta must be among them)."""
    return any(conf.get(key) for key in JAR_KEYS)


def platform_launch(environ: Mapping[str, str] | None = None) -> str | None:
    """Why Spark counts as launched by the platform, or ``None`` for a plain process.

    Launched means: a SparkContext already runs in this process (a notebook, a job
    that made one), or ``spark-submit`` started this driver (it hands the Python
    process its running JVM through ``PYSPARK_GATEWAY_PORT``), or the launch
    configuration names a master: ``PYSPARK_SUBMIT_ARGS``, or the ``spark-defaults.conf``
    of ``SPARK_CONF_DIR`` (default ``$SPARK_HOME/conf``), as on a cluster's own nodes.
    """
    env = os.environ if environ is None else environ
    try:
        from pyspark import SparkContext

        # a class attribute read, not a use of the context: nothing runs on the JVM
        if SparkContext._active_spark_context is not None:
            return "a SparkContext is running"
    except ImportError:  # a Spark Connect-only client has no classic SparkContext
        pass
    if env.get("PYSPARK_GATEWAY_PORT"):
        return "started by spark-submit"
    args = env.get("PYSPARK_SUBMIT_ARGS", "").split()
    if any(arg == "--master" or arg.startswith("--master=") for arg in args):
        return "PYSPARK_SUBMIT_ARGS names a master"
    conf_dir = env.get("SPARK_CONF_DIR") or os.path.join(env.get("SPARK_HOME", ""), "conf")
    defaults = os.path.join(conf_dir, "spark-defaults.conf")
    if env.get("SPARK_CONF_DIR", env.get("SPARK_HOME")) and _names_master(defaults):
        return f"{defaults} sets spark.master"
    return None


def _names_master(defaults: str) -> bool:
    """Whether a ``spark-defaults.conf`` has a ``spark.master`` line."""
    try:
        with open(defaults, encoding="utf-8") as handle:
            return any(line.split(None, 1)[:1] == ["spark.master"] for line in handle)
    except OSError:
        return False
