"""The request cache: earlier successful answers, by ``request_id``.

Every run under the same artefacts root appends its new successful answers to one
Delta table (``<artefacts>/_cache/outputs``); a later run, and the dry run, read it to
skip requests that already have an answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fmf_spark.storage import join_uri

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def cache_location(artefacts_root: str) -> str:
    """The Delta table of answered requests shared by the runs under ``artefacts_root``."""
    return join_uri(artefacts_root, "_cache", "outputs")


def read_cache(spark: SparkSession, path: str) -> DataFrame | None:
    """The cached successful answers (INFERENCE_RESULT_SCHEMA), one per ``request_id``.

    Returns ``None`` when there is no table yet (the first run).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.utils import AnalysisException

    from fmf_spark.schemas import INFERENCE_RESULT_SCHEMA, STATUS_OK

    try:
        table = spark.read.format("delta").load(path)
        table.schema  # noqa: B018 - resolving the schema is what fails for a missing table
    except AnalysisException:
        return None
    ok = table.where(F.col("status") == STATUS_OK)
    return ok.select(*INFERENCE_RESULT_SCHEMA.fieldNames()).dropDuplicates(["request_id"])
