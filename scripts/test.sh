#!/usr/bin/env bash
# The test command of the README and of CI (`make test`; .ci/run runs exactly that):
#   1. set up .venv from the test lock;
#   2. lint: ruff, format, mypy, deptry + the extras check, the secret scan;
#   3. the whole pytest suite, with coverage; the floors of the critical packages;
#   4. build the wheel and sdist, `twine check` them;
#   5. the README's main command in a fresh venv with only the local lock (no test tools);
#   6. the Spark 3.5 pass (scripts/test35.sh): the Spark-facing tests again in
#      .venv-spark35, from requirements/spark35/test.lock (set up in the background
#      while steps 2-5 run). It takes about 0.36 times what the main pytest run took on
#      the same machine (9.6 min against 27 min on a quiet 2-core machine, its Spark
#      Connect test 2 min of it; a busy one is twice as slow for both); when that would push the
#      whole run past 42 min (CI is to stay under 45), it is left out with a line that
#      says so (FMF_TEST_BUDGET_MIN changes the limit; FMF_SPARK35=always or never
#      forces it).
# Arguments go to pytest (a subset of the suite skips the coverage floors and the 3.5 pass).
# Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
scripts/setup.sh test
# shellcheck disable=SC1091
source .venv/bin/activate
export PYSPARK_PYTHON="$PWD/.venv/bin/python"

# the 3.5 pass's venv is set up meanwhile (a download on a fresh machine, then an install
# of about a minute): the pass itself then starts with its first test
spark35_setup=""
if [ "$#" -eq 0 ] && [ "${FMF_SPARK35:-}" != "never" ]; then
  UV="$PWD/.venv/bin/uv" VENV=.venv-spark35 LOCK_SET=spark35 scripts/setup.sh test \
    >.venv-spark35.setup.log 2>&1 &
  spark35_setup=$!
fi

scripts/lint.sh

echo "== pytest (with coverage of the driver-side code)"
rm -f .coverage coverage.json
pytest_started=$SECONDS
python -m pytest --cov=fmf_spark --cov-report=json:coverage.json "$@"
pytest_s=$((SECONDS - pytest_started))
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

if [ -n "$spark35_setup" ] && ! wait "$spark35_setup"; then
  cat .venv-spark35.setup.log >&2
  echo "the Spark 3.5 venv could not be set up (log above)" >&2
  exit 1
fi

budget_min="${FMF_TEST_BUDGET_MIN:-42}"
elapsed_min=$(((SECONDS - started) / 60))
# the 3.5 pass's estimate on this machine: 0.36 x the main pytest run, rounded up
pass_min=$(((pytest_s * 36 + 5999) / 6000))
if [ "$#" -ne 0 ]; then
  echo "Spark 3.5 pass: skipped (a subset of the suite ran; scripts/test35.sh runs it)"
elif [ "${FMF_SPARK35:-}" = "never" ]; then
  echo "Spark 3.5 pass: skipped (FMF_SPARK35=never)"
elif [ "${FMF_SPARK35:-}" != "always" ] && [ $((elapsed_min + pass_min)) -gt "$budget_min" ]; then
  echo "Spark 3.5 pass: NOT RUN: steps 1-5 took ${elapsed_min} min, and the pass (about ${pass_min} on this machine) would exceed the ${budget_min}-min budget; run scripts/test35.sh"
else
  echo "== the Spark-facing tests on Spark 3.5 (after ${elapsed_min} min; estimated ${pass_min} min)"
  deactivate
  scripts/test35.sh
fi
