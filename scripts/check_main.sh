#!/usr/bin/env bash
# The README's main command, run where users run it: a fresh venv (.venv-run) made by
# scripts/setup.sh from the `local` lock only (no test tools), and
# `fmf run --chain chains/sample.yaml` in a scratch copy of what it reads (conf/,
# chains/, prompts/, samples/), so artefacts, mlflow.db and mlruns/ stay out of the
# tree. Fails unless the command exits 0 and ends with its summary, or if it prints an
# Ivy resolution or Spark WARN line.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
rm -rf .venv-run
# the same hashed lock through .venv's uv when there is one (make test: minutes faster
# than pip; step 1 of make test already proves setup.sh's pip path)
if [ -z "${UV:-}" ] && [ -x .venv/bin/uv ]; then export UV="$PWD/.venv/bin/uv"; fi
VENV=.venv-run scripts/setup.sh local
if .venv-run/bin/python -c "import pytest" 2>/dev/null; then
  echo "check_main: .venv-run holds pytest; it must hold only the local extra" >&2
  exit 1
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cp -r conf chains prompts samples "$scratch/"
out="$scratch/output.txt"
set +e
(
  cd "$scratch"
  # the workers must run this venv's Python, not the one the test command exported
  unset PYSPARK_PYTHON PYSPARK_DRIVER_PYTHON VIRTUAL_ENV
  # shellcheck disable=SC1091
  source "$root/.venv-run/bin/activate"
  fmf run --chain chains/sample.yaml
) >"$out" 2>&1
code=$?
set -e
cat "$out"

fail() {
  echo "check_main: FAILED: $*" >&2
  exit 1
}
[ "$code" -eq 0 ] || fail "fmf run exited with $code"
grep -q '^RUN: chain sample' "$out" || fail "no run summary ('RUN: chain sample')"
tail -n 1 "$out" | grep -Eq '^(mlflow run|run record): ' || fail "the output does not end with the summary"
if grep -En ':: (loading settings|resolving dependencies|retrieving) ::|Ivy Default Cache|^\s*found .* in |Host .* not found| WARN ' "$out"; then
  fail "Ivy resolution or Spark WARN lines in the output (above)"
fi
echo "check_main: OK: the main command ended with its summary, quietly, with only the local extra"
