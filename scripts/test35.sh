#!/usr/bin/env bash
# The Spark 3.5 pass of `make test` (scripts/test.sh runs it after the main suite; run it
# alone with `scripts/test35.sh`): .venv-spark35 from requirements/spark35/test.lock
# (pyspark 3.5, delta-spark 3.3, Scala 2.12 jars), then the tests that exercise the Spark
# and Delta APIs the library calls (markers spark, slow, cluster in the files below):
# the session factory and materialise, the connectors' DataFrames, the parsing and
# chunking UDFs, the inference runner (mapInPandas, task retries, local-cluster), the
# chain's frames and end-to-end runs, the sample chain through the CLI on a Spark Connect
# server (pyspark 3.5 ships the client only: the server loads Maven Central's
# spark-connect_2.12 3.5.7 plugin, see tests/servers/spark_connect.py), the Delta and S3
# sinks through foreachBatch (replays, MERGE, kill and rerun), progress lines.
# Left out, with the reason (CI's time budget: the whole Spark-touching suite twice does
# not fit in it; these run on the Spark 4 line):
#   tests/deploy/          the images, the EMR package, the Lambda target and the bundle
#                          install requirements/spark4/local.lock (packaging);
#   quota pacing, calibration and kill-the-driver tests (inference/test_quota_sharing.py,
#   chains/test_durability.py): Python-side logic over the same mapInPandas path the
#   runner tests cover; the other sinks (DynamoDB, PostgreSQL, SharePoint): the same
#   foreachBatch machinery as Delta and S3.
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

if [ "$#" -eq 0 ]; then
  set -- -m "spark or slow or cluster" \
    tests/foundation/test_spark.py \
    tests/connectors \
    tests/processing/test_spark.py tests/processing/test_formats_spark.py \
    tests/inference/test_runner.py tests/inference/test_progress.py tests/inference/test_cluster.py \
    tests/chains/test_frames.py tests/chains/test_e2e.py tests/chains/test_cli.py \
    tests/chains/test_connect.py \
    tests/exporters/test_common.py tests/exporters/test_delta.py tests/exporters/test_s3.py \
    tests/observability/test_progress.py
fi
python -m pytest -p no:cacheprovider "$@"
