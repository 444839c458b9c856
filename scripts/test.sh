#!/usr/bin/env bash
# The test command of the README and of CI (`make test`; .ci/run runs exactly that):
#   1. set up .venv from the test lock;
#   2. lint: ruff, format, mypy, deptry + the extras check, the secret scan;
#   3. the whole pytest suite, with coverage; the floors of the critical packages;
#   4. build the wheel and sdist, `twine check` them;
#   5. the README's main command in a fresh venv with only the local lock (no test tools);
#   6. the Spark 3.5 pass (scripts/test35.sh): the Spark-touching tests again in
#      .venv-spark35, from requirements/spark35/test.lock.
# Arguments go to pytest (a subset of the suite skips the coverage floors and the 3.5 pass).
# Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
# shellcheck disable=SC1091
source .venv/bin/activate
export PYSPARK_PYTHON="$PWD/.venv/bin/python"

scripts/lint.sh

echo "== pytest (with coverage of the driver-side code)"
rm -f .coverage coverage.json
python -m pytest --cov=fmf_spark --cov-report=json:coverage.json "$@"
if [ "$#" -eq 0 ]; then
  python scripts/coverage_floors.py coverage.json
else
  echo "coverage floors: skipped (a subset of the suite ran)"
fi

echo "== build + twine check"
rm -rf dist
python -m build --outdir dist . >/dev/null
twine check --strict dist/*
ls dist

echo "== the main command, with only the local lock installed"
scripts/check_main.sh

if [ "$#" -eq 0 ]; then
  echo "== the Spark-touching tests on Spark 3.5"
  deactivate
  scripts/test35.sh
else
  echo "Spark 3.5 pass: skipped (a subset of the suite ran; scripts/test35.sh runs it)"
fi
