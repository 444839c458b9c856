"""What an outputs DataFrame says about its calls: the one definition of each metric.

Rows with the same ``request_id`` share one call (the batch runner calls each distinct
request once), so calls, tokens, cost and retries are counted over distinct requests;
``rows``, ``ok`` and ``failed`` count rows.

- ``calls``: distinct requests sent to the model in this run (``attempts > 0``);
- ``cached``: distinct requests answered without a call (from the request cache);
- ``retries``: calls beyond the first, summed over the requests;
- ``prompt_tokens``, ``completion_tokens``, ``cost_usd``: of this run's calls only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


@dataclass
class OutputMetrics:
    """Totals of an outputs DataFrame (see the module docstring)."""

    rows: int = 0
    ok: int = 0
    failed: int = 0
    calls: int = 0
    cached: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    failures_by_code: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def output_metrics(outputs: DataFrame) -> OutputMetrics:
    """Count an outputs DataFrame (OUTPUTS_SCHEMA) in one Spark job: rows are grouped by
    request (the rows of a request share its answer), then the requests by error code."""
    from pyspark.sql import functions as F

    from fmf_spark.schemas import STATUS_ERROR, STATUS_OK

    attempts = F.coalesce(F.col("attempts"), F.lit(0))
    requests = outputs.groupBy("request_id").agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(F.col("status") == STATUS_OK, 1).otherwise(0)).alias("ok"),
        F.sum(F.when(F.col("status") == STATUS_ERROR, 1).otherwise(0)).alias("failed"),
        # one row of the request stands for its call (they share it)
        F.first(attempts).alias("attempts"),
        F.first(F.col("status") == STATUS_OK).alias("answered"),
        F.first(F.coalesce(F.col("prompt_tokens"), F.lit(0))).alias("p"),
        F.first(F.coalesce(F.col("completion_tokens"), F.lit(0))).alias("c"),
        F.first(F.coalesce(F.col("cost_usd"), F.lit(0.0))).alias("cost"),
        F.first(F.col("error.code"), ignorenulls=True).alias("code"),
    )
    called = F.col("attempts") > 0
    by_code = requests.groupBy("code").agg(
        F.sum("rows").alias("rows"),
        F.sum("ok").alias("ok"),
        F.sum("failed").alias("failed"),
        F.sum(F.when(called, 1).otherwise(0)).alias("calls"),
        F.sum(F.when(F.col("answered") & ~called, 1).otherwise(0)).alias("cached"),
        F.sum(F.greatest(F.col("attempts") - 1, F.lit(0))).alias("retries"),
        F.sum(F.when(called, F.col("p")).otherwise(0)).alias("p"),
        F.sum(F.when(called, F.col("c")).otherwise(0)).alias("c"),
        F.sum(F.when(called, F.col("cost")).otherwise(0.0)).alias("cost"),
    )
    metrics = OutputMetrics()
    cost = 0.0
    for row in by_code.collect():  # one row per error code, and one for none
        metrics.rows += int(row["rows"] or 0)
        metrics.ok += int(row["ok"] or 0)
        metrics.failed += int(row["failed"] or 0)
        metrics.calls += int(row["calls"] or 0)
        metrics.cached += int(row["cached"] or 0)
        metrics.retries += int(row["retries"] or 0)
        metrics.prompt_tokens += int(row["p"] or 0)
        metrics.completion_tokens += int(row["c"] or 0)
        cost += float(row["cost"] or 0.0)
        if row["failed"]:
            metrics.failures_by_code[str(row["code"])] = int(row["failed"])
    metrics.cost_usd = round(cost, 8)
    return metrics
