"""Exporter throughput: rows/s of export_table for Delta (merge), S3 (parquet) and PostgreSQL.

Run: ``python benchmarks/exporters.py --rows 200000 --batches 5`` (local Spark, a moto
server and a throwaway PostgreSQL server from tests/servers). Prints one line per sink.
The numbers measure this machine's local mode, not a cluster: use them to compare
changes to the exporters, not to size production jobs.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--sinks", default="delta,s3,postgres")
    args = parser.parse_args()

    from tests.servers.moto import apply_aws_test_env, moto_server

    apply_aws_test_env()
    import boto3
    from pyspark.sql import functions as F
    from tests.servers.postgres import postgres_server

    from fmf_spark.config.models import FmfConfig
    from fmf_spark.config.secrets import SecretResolver
    from fmf_spark.exporters import export_table
    from fmf_spark.schemas import OUTPUTS_SCHEMA
    from fmf_spark.spark import get_spark

    spark = get_spark(extra_conf={"spark.sql.shuffle.partitions": "4"})
    spark.sparkContext.setLogLevel("ERROR")
    work = Path(tempfile.mkdtemp(prefix="fmf-bench-"))
    inp = str(work / "artefacts" / "bench" / "outputs")
    per = args.rows // args.batches
    for b in range(args.batches):
        df = spark.range(b * per, (b + 1) * per).select(
            F.sha2(F.col("id").cast("string"), 256).substr(1, 16).alias("request_id"),
            (F.col("id") % 1000).cast("string").alias("doc_id"),
            F.col("id").cast("string").alias("chunk_id"),
            F.lit("summarise").alias("step"),
            F.lit("summary").alias("prompt_id"),
            F.lit("v1").alias("prompt_version"),
            F.lit(hashlib.sha256(b"p").hexdigest()[:12]).alias("prompt_hash"),
            F.lit("sim-gpt-4o-mini").alias("model"),
            F.repeat(F.lit("lorem ipsum "), 40).alias("output_text"),
            F.lit('{"ok": true}').alias("output_json"),
            F.lit(500).cast("long").alias("prompt_tokens"),
            F.lit(120).cast("long").alias("completion_tokens"),
            F.lit(0.00012).alias("cost_usd"),
            F.lit(800).cast("long").alias("latency_ms"),
            F.lit(1).alias("attempts"),
            F.lit("ok").alias("status"),
            F.lit(None).cast(OUTPUTS_SCHEMA["error"].dataType).alias("error"),
        )
        spark.createDataFrame(df.rdd, OUTPUTS_SCHEMA).coalesce(1).write.format("delta").mode(
            "append"
        ).save(inp)

    sinks = args.sinks.split(",")
    with moto_server() as moto, postgres_server() as pg:
        boto3.client("s3", endpoint_url=moto).create_bucket(Bucket="bench")
        exporters = {
            "delta": {"type": "delta", "path": str(work / "delta_target"), "mode": "merge"},
            "s3": {"type": "s3", "bucket": "bench", "endpoint_url": moto, "format": "parquet"},
            "postgres": {
                "type": "postgres",
                "host": pg.host,
                "port": pg.port,
                "database": pg.dbname,
                "user": pg.user,
                "password": {"secret": "pg"},
                "table": "bench",
                "sslmode": "disable",
            },
        }
        cfg = FmfConfig.model_validate(
            {
                "secrets": {"names": {"pg": {"provider": "env", "key": "PG"}}},
                "exporters": {
                    k: {**v, "max_files_per_trigger": 1} for k, v in exporters.items() if k in sinks
                },
            }
        )
        resolver = SecretResolver(cfg.secrets, environ={"PG": pg.password})
        for sink in sinks:
            t0 = time.perf_counter()
            result = export_table(spark, cfg, sink, inp, run_id="bench", resolver=resolver)
            seconds = time.perf_counter() - t0
            print(
                f"{sink:9s} {result.rows_written:>9d} rows in {result.batches} batches: "
                f"{seconds:7.1f}s, {result.rows_written / seconds:9.0f} rows/s"
            )
    spark.stop()


if __name__ == "__main__":
    main()
