#!/usr/bin/env bash
# `make lock`: compile the lock files (exact versions, with hashes) from pyproject.toml.
#
# A lock set is a folder requirements/<set>/. Each set gets
#   local.lock  the `local` extra: what `make run` installs
#   test.lock   the `test` extra: what `make test` installs
# resolved with uv for the Python in requirements/python-version on Linux x86_64. test.lock is
# compiled with local.lock as constraints, so every package both hold has the same
# version in both: the suite runs what users run. A set may hold overrides.txt, passed
# to uv as --override (e.g. another pyspark/delta-spark line than pyproject.toml's).
# Versions already in a lock are kept unless pyproject.toml no longer allows them;
# --upgrade takes the newest allowed versions.
#
# Usage: scripts/lock.sh [--upgrade] [set ...]      (default: every set)
set -euo pipefail
cd "$(dirname "$0")/.."
python_version="$(cat requirements/python-version)"

upgrade=()
if [ "${1:-}" = "--upgrade" ]; then
  upgrade=(--upgrade)
  shift
fi
uv="${UV:-.venv/bin/uv}"
if [ ! -x "$uv" ]; then
  echo "lock: $uv not found; run scripts/setup.sh test first (the test extra installs uv)" >&2
  exit 1
fi

sets=("$@")
if [ "${#sets[@]}" -eq 0 ]; then
  for dir in requirements/*/; do sets+=("$(basename "$dir")"); done
fi

for set in "${sets[@]}"; do
  dir="requirements/$set"
  mkdir -p "$dir"
  args=(
    --quiet --generate-hashes
    --python-version "$python_version" --python-platform linux
    --custom-compile-command "make lock"
  )
  if [ -f "$dir/overrides.txt" ]; then args+=(--override "$dir/overrides.txt"); fi
  echo "lock: $dir/local.lock"
  "$uv" pip compile pyproject.toml --extra local "${args[@]}" "${upgrade[@]}" -o "$dir/local.lock"
  echo "lock: $dir/test.lock"
  "$uv" pip compile pyproject.toml --extra test -c "$dir/local.lock" "${args[@]}" "${upgrade[@]}" \
    -o "$dir/test.lock"
done
