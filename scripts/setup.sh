#!/usr/bin/env bash
# Set up fmf_spark on a fresh machine: a virtualenv with the exact versions of the lock
# (requirements/<set>/<extra>.lock, see scripts/lock.sh), the project installed editable
# on top without resolving anything again, then `pip check`; plus the system packages
# Spark, OCR and the tests need.
# Usage: scripts/setup.sh [local|test]      (default: local)
# Environment: VENV (default .venv), LOCK_SET (default spark4), PYTHON (default python3),
# UV (a uv binary: install the lock with `uv pip install` instead of pip, same hashes;
# scripts/test35.sh uses the one of .venv, whose cache makes a second venv quick).
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-local}"
venv="${VENV:-.venv}"
lock="requirements/${LOCK_SET:-spark4}/${extra}.lock"
python="${PYTHON:-python3}"

if [ ! -f "$lock" ]; then
  echo "setup: no lock file $lock (extras with a lock: local, test)" >&2
  exit 2
fi
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
locked_for="$(cat requirements/python-version)"
actual="$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ "$actual" != "$locked_for" ]; then
  echo "setup: note: the locks were made for Python $locked_for; this is $actual (PYTHON=python$locked_for picks another)" >&2
fi
if [ -n "${UV:-}" ]; then
  "$UV" pip install --quiet --python "$venv/bin/python" --require-hashes -r "$lock"
  "$UV" pip install --quiet --python "$venv/bin/python" --no-deps -e .
else
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet --require-hashes -r "$lock"
  "$venv/bin/python" -m pip install --quiet --no-deps -e .
fi
"$venv/bin/python" -m pip check

# System packages: Java for Spark, tesseract for OCR, PostgreSQL for the Redshift SQL path,
# bubblewrap for the Lambda sandbox, Chromium (headless) for the test that opens
# `fmf report`'s HTML in a real browser.
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v tesseract >/dev/null 2>&1 || need+=(tesseract-ocr tesseract-ocr-eng)
if [ "$extra" = "test" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
# bubblewrap: the Lambda test runs the handler on a read-only file system (tests/deploy)
if [ "$extra" = "test" ] && ! command -v bwrap >/dev/null 2>&1; then
  need+=(bubblewrap)
fi
if [ "$extra" = "test" ] && ! command -v chromium >/dev/null 2>&1; then
  need+=(chromium fonts-dejavu-core)
fi
if [ "${#need[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "installing system packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
