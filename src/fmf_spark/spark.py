"""The Spark session factory.

:func:`get_spark` returns the active session when there is one (Databricks, Fabric,
notebooks, ``spark-submit`` on EMR): the platform owns it and we must not reconfigure
it. Otherwise it builds a local session with Delta configured through
``delta.configure_spark_with_delta_pip`` (the Delta jars come from Maven Central into
``~/.ivy2`` on first use), ``PYSPARK_PYTHON`` set to the running interpreter so the
Python workers see the same packages, Arrow on and a small number of shuffle partitions.

Secrets never go into Spark conf: ``spark.sparkContext.getConf().getAll()`` is shown in
the Spark UI and in event logs.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from fmf_spark._deps import require

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from fmf_spark.config.models import FmfConfig

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
    """Return the active Spark session, or build a local one with Delta.

    Args:
        config: the fmf config; its ``spark`` section sets master, app name, shuffle
            partitions and extra conf for a locally built session.
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

    delta = require("delta")
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
    for key, value in conf.items():
        builder = builder.config(key, value)
    session: SparkSession = delta.configure_spark_with_delta_pip(builder).getOrCreate()
    return session
