#!/usr/bin/env bash
# The test command of the README and of CI (`make test`; .ci/run runs exactly that):
#   1. set up .venv from the test lock;
#   2. lint: ruff, format, mypy, deptry + the extras check, the secret scan (meanwhile
#      one run of the sample chain writes the JVM class archive the suite's drivers map);
#   3. the whole pytest suite, with coverage; the floors of the critical packages;
#   4. build the wheel and sdist, `twine check` them;
#   5. the README's main command in a fresh venv with only the local lock (no test tools);
#   6. the Spark 3.5 pass (scripts/test35.sh): every test that runs this venv's Spark,
#      again in .venv-spark35 from requirements/spark35/test.lock (set up in the
#      background while steps 2-5 run). It takes about as long as the main
#      pytest run took on the same machine; when that would push the whole run past
#      42 min (CI is to stay under 45), only its core files run (about 40 %), and
#      when even those would, it is left out; a line says which (FMF_TEST_BUDGET_MIN
#      changes the limit; FMF_SPARK35=always, core or never forces a choice).
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

# the driver's class archive of .venv (scripts/warm_class_archive.sh: one run of the
# sample chain), written while lint runs: every driver the suite starts then maps it
scripts/warm_class_archive.sh >.class_archive.log 2>&1 &
warm=$!

scripts/lint.sh

if ! wait "$warm"; then
  cat .class_archive.log >&2
  exit 1
fi
tail -n 1 .class_archive.log

echo "== pytest (with coverage of the driver-side code)"
rm -f .coverage coverage.json
pytest_started=$SECONDS
# Two workers (pytest-xdist): a test file, or the packaging files together, per worker at
# a time (tests/conftest.py); many tests wait on servers and subprocess JVMs, and two
# workers keep both cores busy. The JVMs the tests start (each worker's session, `fmf
# run`, the Connect server; spark-submit starts them all and reads SPARK_SUBMIT_OPTS)
# live seconds to minutes on tiny inputs: C1 alone compiles enough for them, and C2's
# compiler threads no longer take the 2 cores from the tests (a fifth to a quarter less
# CPU on test_quiet_start + test_delta). C1 alone also shrinks the JIT's code cache from
# 240 MB to 48 MB, which a worker's long-lived session fills ("Out of space in CodeCache
# for adapters" failed the notebooks' fold in CI): the size is set back. Only here: the
# main command's check below runs as users run it.
SPARK_SUBMIT_OPTS="${SPARK_SUBMIT_OPTS:+$SPARK_SUBMIT_OPTS }-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m" \
  python -m pytest -n 2 --dist loadfile --cov=fmf_spark --cov-report=json:coverage.json "$@"
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
# the 3.5 pass's length on this machine, from this run's main pytest time (rounded up):
# the full pass about as long (25 min against 28, measured on one machine), the core
# files about 40 %
full_min=$(((pytest_s * 100 + 5999) / 6000))
core_min=$(((pytest_s * 40 + 5999) / 6000))
scope=""
if [ "$#" -ne 0 ]; then
  echo "Spark 3.5 pass: skipped (a subset of the suite ran; scripts/test35.sh runs it)"
elif [ "${FMF_SPARK35:-}" = "never" ]; then
  echo "Spark 3.5 pass: skipped (FMF_SPARK35=never)"
elif [ "${FMF_SPARK35:-}" = "core" ]; then
  scope=core
elif [ "${FMF_SPARK35:-}" = "always" ] || [ $((elapsed_min + full_min)) -le "$budget_min" ]; then
  scope=full
elif [ $((elapsed_min + core_min)) -le "$budget_min" ]; then
  scope=core
  echo "Spark 3.5 pass: the core files only: steps 1-5 took ${elapsed_min} min, and the full pass (about ${full_min} on this machine) would exceed the ${budget_min}-min budget; run scripts/test35.sh for all of it"
else
  echo "Spark 3.5 pass: NOT RUN: steps 1-5 took ${elapsed_min} min, and even its core files (about ${core_min} on this machine) would exceed the ${budget_min}-min budget; run scripts/test35.sh"
fi
if [ -n "$scope" ]; then
  estimate=$([ "$scope" = full ] && echo "$full_min" || echo "$core_min")
  echo "== the Spark tests on Spark 3.5, ${scope} pass (after ${elapsed_min} min; estimated ${estimate} min)"
  deactivate
  FMF_SPARK35_SCOPE="$scope" scripts/test35.sh
fi
