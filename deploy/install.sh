#!/usr/bin/env sh
# Install the fmf_spark wheel and its runtime dependencies: what the container images
# run at build time (deploy/aws_batch/Dockerfile, deploy/lambda/Dockerfile), what
# `make emr-package` packs, and what the tests install to check them.
#
# Usage: deploy/install.sh <wheel> <extras> venv <dir>     a virtualenv at <dir>
#        deploy/install.sh <wheel> <extras> target <dir>   packages into <dir> (Lambda)
#
# pip caches unless PIP_NO_CACHE_DIR=1 (the images set it).
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
    pip="$dest/bin/python -m pip"
    where=""
    ;;
  target)
    pip="$python -m pip"
    where="--target $dest"
    ;;
  *) echo "install.sh: mode must be venv or target, not $mode" >&2; exit 2 ;;
esac

# shellcheck disable=SC2086  # $pip and $where are word lists on purpose
if [ -f "$lock" ]; then
  $pip install --quiet $where --require-hashes -r "$lock"
  $pip install --quiet $where --no-deps "$wheel"
else
  $pip install --quiet $where "${wheel}[${extras}]"
fi
