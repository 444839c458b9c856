#!/usr/bin/env bash
# The test command of the README and of CI (`make test`; .ci/run runs exactly that):
#   1. set up .venv from the test lock;
#   2. lint: ruff, format, mypy, deptry + the extras check, the secret scan (meanwhile
#      one run of the sample chain writes the JVM class archive the suite's drivers map);
#   3. the whole pytest suite, with coverage; the floors of the critical packages;
#   4. build the wheel and sdist, `twine check` them;
#   5. the README's main command in a fresh venv with only the local lock (no test tools);
#   6. the Spark 3.5 pass (scripts/test35.sh): every test that runs this venv's Spark,
#      again in .venv-spark35 from requirements/spark35/test.lock (set up, with its class
#      archive, in the background while steps 2-3 run; step 5 runs beside it). Its files
#      run longest first (as in step 3), and a test not started 3 min before the run's
#      time budget (42 min: CI is to stay under 45; FMF_TEST_BUDGET_MIN changes it) is
#      skipped: the end of its output counts and names them. FMF_SPARK35=always runs it
#      all without a deadline, core only its core files, never leaves it out.
# Arguments go to pytest (a subset of the suite skips the coverage floors and the 3.5 pass).
# Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
# a step's heading, with the minutes since the start (where CI's time goes)
step() { echo "== $* (at $(((SECONDS - started) / 60)) min)"; }
scripts/setup.sh test
# shellcheck disable=SC1091
source .venv/bin/activate
export PYSPARK_PYTHON="$PWD/.venv/bin/python"

# the 3.5 pass's venv is set up meanwhile (a download on a fresh machine, then an install
# of about a minute), then its class archive written (one run of the sample chain): the
# pass itself then starts with its first test
spark35_setup=""
if [ "$#" -eq 0 ] && [ "${FMF_SPARK35:-}" != "never" ]; then
  (
    UV="$PWD/.venv/bin/uv" VENV=.venv-spark35 LOCK_SET=spark35 scripts/setup.sh test
    deactivate
    # shellcheck disable=SC1091
    source .venv-spark35/bin/activate
    PYSPARK_PYTHON="$PWD/.venv-spark35/bin/python" scripts/warm_class_archive.sh
  ) >.venv-spark35.setup.log 2>&1 &
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

step "pytest (with coverage of the driver-side code)"
rm -f .coverage coverage.json
# Two workers (pytest-xdist): a test file, or the packaging files together, per worker at
# a time (tests/conftest.py); many tests wait on servers and subprocess JVMs, and two
# workers keep both cores busy. The JVMs the tests start (each worker's session, `fmf
# run`, the Connect server; spark-submit starts them all and reads SPARK_SUBMIT_OPTS)
# live seconds to minutes on tiny inputs: C1 alone compiles enough for them, and C2's
# compiler threads no longer take the 2 cores from the tests (a fifth to a quarter less
# CPU on test_quiet_start + test_delta). C1 alone also shrinks the JIT's code cache from
# 240 MB to 48 MB, which a worker's long-lived session fills ("Out of space in CodeCache
# for adapters" failed the notebooks' fold in CI): the size is set back. The parallel
# collector instead of G1 (no concurrent refinement or marking threads): a sample chain
# run took 63 instead of 69 CPU-s (medians, 7 alternating pairs, lower in each pair; the
# serial collector 64). Only here: the main command's check below runs as users run it.
SPARK_SUBMIT_OPTS="${SPARK_SUBMIT_OPTS:+$SPARK_SUBMIT_OPTS }-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m -XX:+UseParallelGC" \
  python -m pytest -n 2 --dist loadfile --cov=fmf_spark --cov-report=json:coverage.json "$@"
if [ "$#" -eq 0 ]; then
  python scripts/coverage_floors.py coverage.json
else
  echo "coverage floors: skipped (a subset of the suite ran)"
fi

step "build + twine check"
rm -rf dist
python -m build --outdir dist . >/dev/null
twine check --strict dist/*
ls dist

if [ -z "$spark35_setup" ]; then
  step "the main command, with only the local lock installed"
  scripts/check_main.sh
  if [ "$#" -ne 0 ]; then
    echo "Spark 3.5 pass: skipped (a subset of the suite ran; scripts/test35.sh runs it)"
  else
    echo "Spark 3.5 pass: skipped (FMF_SPARK35=never)"
  fi
  exit 0
fi

if ! wait "$spark35_setup"; then
  cat .venv-spark35.setup.log >&2
  echo "the Spark 3.5 venv or its class archive could not be set up (log above)" >&2
  exit 1
fi
tail -n 1 .venv-spark35.setup.log

# the main command's check (about 1.5 min, mostly one chain run) runs beside the 3.5 pass,
# whose deadline absorbs the shared CPU; its output follows the pass's
step "the main command, with only the local lock installed (beside the 3.5 pass)"
scripts/check_main.sh >.check_main.log 2>&1 &
check_main=$!

budget_min="${FMF_TEST_BUDGET_MIN:-42}"
scope=full
deadline=""
case "${FMF_SPARK35:-}" in
  core) scope=core ;;
  always) ;;
  *)
    # tests not started 3 min before the budget's end are skipped: the longest one left
    # then (a file's first test with its servers) ends about at the budget
    left_s=$((budget_min * 60 - (SECONDS - started) - 180))
    if [ "$left_s" -lt 120 ]; then
      scope=""
      echo "Spark 3.5 pass: NOT RUN: steps 1-4 took $(((SECONDS - started) / 60)) min of the ${budget_min}-min budget; run scripts/test35.sh"
    else
      deadline=$(($(date +%s) + left_s))
    fi
    ;;
esac
status=0
if [ -n "$scope" ]; then
  step "the Spark tests on Spark 3.5, ${scope} pass${deadline:+ (tests not started within $((left_s / 60)) min are skipped)}"
  deactivate
  FMF_SPARK35_SCOPE="$scope" FMF_TEST_DEADLINE="$deadline" scripts/test35.sh || status=$?
fi
check_status=0
wait "$check_main" || check_status=$?
echo "== the main command's check (ran beside the 3.5 pass)"
cat .check_main.log
if [ "$check_status" -ne 0 ]; then
  echo "the main command's check failed (above)" >&2
  exit "$check_status"
fi
step "done"
exit "$status"
