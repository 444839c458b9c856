"""The session factory: a Delta table written and read back through get_spark."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from pyspark.sql import Row

from fmf_spark.spark import (
    default_parallelism,
    get_spark,
    is_connect,
    materialise,
    materialise_as_files,
)


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


def test_a_classic_session_is_not_connect_and_knows_its_parallelism(spark) -> None:
    assert is_connect(spark) is False
    # the fixture's session: spark.default.parallelism 2
    assert default_parallelism(spark) == 2


def test_materialised_rows_are_computed_once(spark, tmp_path: Path) -> None:
    """Both ways of materialising (``localCheckpoint``, and Parquet where a Connect 3.5
    session has no checkpoint) freeze the rows: ``rand()`` is not drawn again."""
    from pyspark.sql import functions as F

    df = spark.range(20).withColumn("r", F.rand())
    for frozen in (materialise(df, str(tmp_path)), materialise_as_files(df, str(tmp_path))):
        first = sorted(frozen.collect())
        assert len(first) == 20
        assert sorted(frozen.collect()) == first
    # the Parquet copy lives under the scratch folder, never in the working directory
    assert [p.name[:13] for p in tmp_path.iterdir()] == ["materialised-"]


def test_a_session_we_build_keeps_its_warehouse_out_of_the_working_directory(spark) -> None:
    from urllib.parse import urlparse

    warehouse = Path(urlparse(spark.conf.get("spark.sql.warehouse.dir")).path)
    assert warehouse.is_relative_to(tempfile.gettempdir())
    assert not warehouse.is_relative_to(Path.cwd())


def test_a_session_we_build_keeps_its_local_dir_in_a_folder_of_its_process(spark) -> None:
    from fmf_spark.spark import scratch_dir, sweep_scratch

    local = Path(spark.conf.get("spark.local.dir"))
    assert local == scratch_dir() / f"local-{os.getpid()}"
    # Spark's temp folders (shuffle files, the jars' copies) are made inside it
    assert [p for p in local.iterdir() if p.name.startswith(("spark-", "blockmgr-"))]
    assert local not in sweep_scratch(scratch_dir())
