#!/usr/bin/env bash
# The Spark 3.5 pass of `make test` (scripts/test.sh runs it after the main suite; run it
# alone with `scripts/test35.sh`): .venv-spark35 from requirements/spark35/test.lock
# (pyspark 3.5, delta-spark 3.3, Scala 2.12 jars), then every test that runs Spark from
# this venv (markers spark, slow, cluster): the session factory, the connectors, parsing
# and chunking, the inference runner (mapInPandas, task retries, local-cluster, the quota
# broker), the chains (end to end, on a Spark Connect server: pyspark 3.5 ships the client
# only, so the server loads Maven Central's spark-connect_2.12 3.5.7 plugin, see
# tests/servers/spark_connect.py), every sink through foreachBatch (kill and rerun),
# observability, and the deployments that run this venv's Spark: spark-submit (local and
# local-cluster), the EMR package (built from requirements/spark35/local.lock, as EMR 7
# runs Spark 3.5), the notebooks, the IAM-enforced job.
# Left out: the tests of what never runs this venv's Spark: the AWS Batch and Lambda
# images install requirements/spark4/local.lock (the images bring their own Spark 4), and
# the wheel test installs the wheel without pyspark.
# Two workers, as in the main pass (tests/conftest.py: --dist loadfile keeps a file, and
# the packaging files, on one worker).
# FMF_SPARK35_SCOPE=core runs only the core files (below). FMF_TEST_DEADLINE (a Unix
# time) skips the tests not started by then (tests/conftest.py), and the full pass runs
# its longest files first for that (below).
# No coverage here: the main pass measures it. Arguments go to pytest instead.
set -euo pipefail
cd "$(dirname "$0")/.."
# uv from .venv (the test lock has it) installs the lock in seconds from its cache
if [ -z "${UV:-}" ] && [ -x .venv/bin/uv ]; then export UV="$PWD/.venv/bin/uv"; fi
VENV=.venv-spark35 LOCK_SET=spark35 scripts/setup.sh test
# shellcheck disable=SC1091
source .venv-spark35/bin/activate
export PYSPARK_PYTHON="$PWD/.venv-spark35/bin/python"
unset PYSPARK_DRIVER_PYTHON
python -c 'import pyspark, delta; print(f"== pytest on Spark {pyspark.__version__}, delta-spark", __import__("importlib.metadata").metadata.version("delta-spark"))'
# this venv's own class archive (another pyspark: another archive), as in scripts/test.sh
scripts/warm_class_archive.sh

if [ "$#" -eq 0 ] && [ "${FMF_SPARK35_SCOPE:-full}" = "core" ]; then
  # the core files (what `make test` runs when the full pass does not fit its budget):
  # the session factory, connectors, parsing, the runner, the chains (Connect included),
  # the Delta and S3 sinks, progress lines; about a third of the full pass
  set -- -m "spark or slow or cluster" \
    tests/foundation/test_spark.py \
    tests/connectors \
    tests/processing/test_spark.py tests/processing/test_formats_spark.py \
    tests/inference/test_runner.py tests/inference/test_progress.py tests/inference/test_cluster.py \
    tests/chains/test_frames.py tests/chains/test_e2e.py tests/chains/test_cli.py \
    tests/chains/test_connect.py \
    tests/exporters/test_common.py tests/exporters/test_delta.py tests/exporters/test_s3.py \
    tests/observability/test_progress.py
elif [ "$#" -eq 0 ]; then
  # every file; the two workers take the longest first (tests/conftest.py LONGEST_FIRST:
  # the Connect chain, the deployments that run Spark 3.5 (EMR 7, spark-submit, the
  # notebooks of Databricks 15.4 LTS; one unit), the kill and rerun ones...), so that
  # under a deadline (FMF_TEST_DEADLINE: make test sets it for its time budget) the
  # files left out are short ones
  set -- -m "spark or slow or cluster" \
    --ignore tests/deploy/test_aws_batch.py --ignore tests/deploy/test_lambda.py \
    --ignore tests/foundation/test_wheel.py
fi
# C1 alone for the tests' short-lived JVMs, with the tiered code cache size, and the
# parallel collector, as in the main pass (see scripts/test.sh)
SPARK_SUBMIT_OPTS="${SPARK_SUBMIT_OPTS:+$SPARK_SUBMIT_OPTS }-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m -XX:+UseParallelGC" \
  python -m pytest -p no:cacheprovider -n 2 --dist loadfile "$@"
