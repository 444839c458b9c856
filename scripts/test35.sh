#!/usr/bin/env bash
# The Spark 3.5 pass of `make test` (scripts/test.sh runs it after the main suite; run it
# alone with `scripts/test35.sh`): .venv-spark35 from requirements/spark35/test.lock
# (pyspark 3.5, delta-spark 3.3, Scala 2.12 jars), then every test that touches Spark
# (markers spark, slow, cluster): processing and its UDFs, the inference runner, chains
# end to end, the exporters, durability and kill/rerun, observability, the session factory.
# Left out, with the reason:
#   tests/deploy/          the images, the EMR package, the Lambda target and the bundle
#                          install requirements/spark4/local.lock: deployment packaging
#                          is tested on the Spark 4 line only;
#   tests/foundation/test_wheel.py   packaging: the wheel without pyspark (no Spark in it);
#   tests/chains/test_connect.py     pyspark 3.5 ships no Connect server, and the plugin
#                          for 3.5.9 (spark-connect_2.12) is not on Maven Central: Spark
#                          Connect is tested on the Spark 4 line.
# No coverage here: the main pass measures it. Arguments go to pytest.
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
  set -- -m "spark or slow or cluster" --ignore=tests/deploy --ignore=tests/chains/test_connect.py \
    --deselect tests/foundation/test_wheel.py::test_wheel_installs_without_pyspark tests
fi
python -m pytest -p no:cacheprovider "$@"
