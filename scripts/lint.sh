#!/usr/bin/env bash
# `make lint` (and the first step of `make test`): style, types, declared dependencies,
# secrets. Runs the tools of .venv (scripts/setup.sh test), the versions of the lock.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
paths=(src tests benchmarks jobs scripts)
echo "== ruff"
"$bin/ruff" check "${paths[@]}"
"$bin/ruff" format --check "${paths[@]}"
echo "== import contracts (layers import only downward)"
"$bin/lint-imports"
echo "== mypy"
"$bin/mypy"
echo "== deptry (imports of src/ declared in pyproject.toml)"
"$bin/deptry" src
"$bin/python" scripts/check_extras.py
echo "== detect-secrets (against .secrets.baseline)"
git ls-files -z | xargs -0 "$bin/detect-secrets-hook" --baseline .secrets.baseline
