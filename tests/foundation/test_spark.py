"""The session factory: a Delta table written and read back through get_spark."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark.sql import Row

from fmf_spark.spark import get_spark


def test_delta_round_trip(spark, tmp_path: Path) -> None:
    from chispa import assert_df_equality

    path = str(tmp_path / "table")
    df = spark.createDataFrame([Row(id=1, text="a"), Row(id=2, text="b")])
    df.write.format("delta").save(path)
    df.where("id = 2").write.format("delta").mode("overwrite").save(path)
    back = spark.read.format("delta").load(path)
    assert_df_equality(back, df.where("id = 2"), ignore_row_order=True)
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").select("version").collect()
    assert sorted(r.version for r in history) == [0, 1]


def test_get_spark_reuses_the_active_session(spark) -> None:
    assert get_spark() is spark


def test_session_settings(spark) -> None:
    conf = spark.conf
    assert conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"
    assert conf.get("spark.sql.shuffle.partitions") == "2"
    assert "DeltaSparkSessionExtension" in conf.get("spark.sql.extensions")
    assert os.environ["PYSPARK_PYTHON"] == sys.executable


def test_python_workers_run_this_interpreter(spark) -> None:
    # a UDF reports the executable of the Python worker that ran it
    rows = spark.range(1).rdd.map(lambda _: __import__("sys").executable).collect()
    assert rows == [sys.executable]
