"""DataFrame transforms the sinks share: in-batch de-duplication and flattening.

Each is a ``DataFrame -> DataFrame`` function (or a factory of one) for ``df.transform``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fmf_spark.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import StructType


def dedup_latest(
    key_fields: Sequence[str], order_column: str | None = None
) -> Callable[[DataFrame], DataFrame]:
    """Keep one row per key: the latest by ``order_column``, ties broken by content.

    The tie-break is a hash of the whole row, so the same batch always keeps the same
    row whatever the partitioning (a replayed batch must write exactly what the first
    attempt wrote). Rows whose ``order_column`` is null lose against non-null ones.

    Example:
        >>> df.transform(dedup_latest(["request_id"], "latency_ms"))  # doctest: +SKIP
    """
    if not key_fields:
        raise ConfigError("key_fields must name at least one column")

    def transform(df: DataFrame) -> DataFrame:
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        missing = [c for c in [*key_fields, order_column] if c and c not in df.columns]
        if missing:
            raise ConfigError(
                f"key/order column(s) {', '.join(missing)} not in the outputs "
                f"(columns: {', '.join(df.columns)})"
            )
        row_hash = F.xxhash64(F.to_json(F.struct(*[F.col(c) for c in df.columns])))
        order = [row_hash.desc()]
        if order_column:
            order.insert(0, F.col(order_column).desc_nulls_last())
        window = Window.partitionBy(*[F.col(k) for k in key_fields]).orderBy(*order)
        return (
            df.withColumn("_fmf_rank", F.row_number().over(window))
            .where(F.col("_fmf_rank") == 1)
            .drop("_fmf_rank")
        )

    return transform


def flatten_structs(df: DataFrame) -> DataFrame:
    """Struct columns become ``<col>_<field>`` columns (``error`` -> ``error_code``...).

    For flat sinks (CSV, SQL tables, Excel). Maps and arrays become JSON strings.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, MapType, StructType

    cols: list[Column] = []
    for f in df.schema.fields:
        if isinstance(f.dataType, StructType):
            cols.extend(
                F.col(f"`{f.name}`.`{s.name}`").alias(f"{f.name}_{s.name}")
                for s in f.dataType.fields
            )
        elif isinstance(f.dataType, MapType | ArrayType):
            cols.append(F.to_json(F.col(f"`{f.name}`")).alias(f.name))
        else:
            cols.append(F.col(f"`{f.name}`"))
    return df.select(*cols)


def key_json(row: dict[str, Any], key_fields: Sequence[str]) -> str:
    """The key of a row as a compact JSON object (for failure reports)."""
    return json.dumps({k: row.get(k) for k in key_fields}, default=str, sort_keys=True)


def spark_type_names(schema: StructType) -> dict[str, str]:
    """``{column: simpleString type}`` of a flat schema."""
    return {f.name: f.dataType.simpleString() for f in schema.fields}
