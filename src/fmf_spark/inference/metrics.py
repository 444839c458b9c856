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
    """Count an outputs DataFrame (OUTPUTS_SCHEMA): two aggregations and, when some rows
    failed, one per error code."""
    from pyspark.sql import functions as F

    from fmf_spark.schemas import STATUS_ERROR, STATUS_OK

    is_error = F.col("status") == STATUS_ERROR
    rows = outputs.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(F.col("status") == STATUS_OK, 1).otherwise(0)).alias("ok"),
        F.sum(F.when(is_error, 1).otherwise(0)).alias("failed"),
    ).first()
    attempts = F.coalesce(F.col("attempts"), F.lit(0))
    called = attempts > 0
    answered = (F.col("status") == STATUS_OK) & ~called
    requests = (
        outputs.dropDuplicates(["request_id"])
        .agg(
            F.sum(F.when(called, 1).otherwise(0)).alias("calls"),
            F.sum(F.when(answered, 1).otherwise(0)).alias("cached"),
            F.sum(F.greatest(attempts - 1, F.lit(0))).alias("retries"),
            F.sum(F.when(called, F.coalesce(F.col("prompt_tokens"), F.lit(0)))).alias("p"),
            F.sum(F.when(called, F.coalesce(F.col("completion_tokens"), F.lit(0)))).alias("c"),
            F.sum(F.when(called, F.coalesce(F.col("cost_usd"), F.lit(0.0)))).alias("cost"),
        )
        .first()
    )
    metrics = OutputMetrics()
    if rows is None or requests is None:  # agg without groupBy always returns a row
        return metrics
    metrics.rows = int(rows["rows"] or 0)
    metrics.ok = int(rows["ok"] or 0)
    metrics.failed = int(rows["failed"] or 0)
    metrics.calls = int(requests["calls"] or 0)
    metrics.cached = int(requests["cached"] or 0)
    metrics.retries = int(requests["retries"] or 0)
    metrics.prompt_tokens = int(requests["p"] or 0)
    metrics.completion_tokens = int(requests["c"] or 0)
    metrics.cost_usd = round(float(requests["cost"] or 0.0), 8)
    if metrics.failed:
        codes = outputs.where(is_error).groupBy(F.col("error.code").alias("code")).count()
        metrics.failures_by_code = {
            str(r["code"]): int(r["count"])
            for r in codes.collect()  # one row per error code
        }
    return metrics
