#!/usr/bin/env sh
# Install the fmf_spark wheel and its runtime dependencies: what the container images
# run at build time (deploy/aws_batch/Dockerfile, deploy/lambda/Dockerfile), what
# `make emr-package` packs, and what the tests install to check them.
#
# Usage: deploy/install.sh <wheel> <extras> venv <dir>     a virtualenv at <dir>
#        deploy/install.sh <wheel> <extras> target <dir>   packages into <dir> (Lambda)
#
# pip caches unless PIP_NO_CACHE_DIR=1 (the images set it).
# UV (a uv binary): install with `uv pip install` instead, same lock and hashes; a few
# times faster (the tests use it; UV_COMPILE_BYTECODE=1 precompiles as pip does).
#
# With a lock file (requirements/spark4/local.lock; LOCK overrides) the exact locked
# versions are installed with their hashes and the wheel on top without resolving
# anything again; without one, pip resolves <wheel>[<extras>].
set -eu
wheel="$1"; extras="$2"; mode="$3"; dest="$4"
lock="${LOCK:-$(dirname "$0")/../requirements/spark4/local.lock}"
python="${PYTHON:-python3}"

case "$mode" in
  venv)
    [ -x "$dest/bin/python" ] || "$python" -m venv "$dest"
    target_python="$dest/bin/python"
    where=""
    ;;
  target)
    target_python="$python"
    where="--target $dest"
    ;;
  *) echo "install.sh: mode must be venv or target, not $mode" >&2; exit 2 ;;
esac

if [ -n "${UV:-}" ]; then
  pip="$UV pip"
  where="--python $target_python $where"
else
  pip="$target_python -m pip"
fi

# shellcheck disable=SC2086  # $pip and $where are word lists on purpose
if [ -f "$lock" ]; then
  $pip install --quiet $where --require-hashes -r "$lock"
  $pip install --quiet $where --no-deps "$wheel"
else
  $pip install --quiet $where "${wheel}[${extras}]"
fi
