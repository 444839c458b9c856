#!/usr/bin/env bash
# The test command of the README and of CI: set up, lint, type-check, run every test.
# Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
# shellcheck disable=SC1091
source .venv/bin/activate
export PYSPARK_PYTHON="$PWD/.venv/bin/python"
echo "== ruff"; ruff check src tests benchmarks jobs
ruff format --check src tests benchmarks jobs
echo "== import contracts"; lint-imports
echo "== mypy"; mypy
echo "== pytest"; python -m pytest "$@"
