#!/usr/bin/env bash
# Set up fmf_spark on a fresh machine: a virtualenv in .venv with the project installed
# (editable) with the given extra, plus the system packages its tests or OCR need.
# Usage: scripts/setup.sh [local|test]      (default: local)
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-local}"
python="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${extra}]"

# System packages: Java for Spark, tesseract for OCR, PostgreSQL for the Redshift SQL path,
# Chromium (headless) for the test that opens `fmf report`'s HTML in a real browser.
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v tesseract >/dev/null 2>&1 || need+=(tesseract-ocr tesseract-ocr-eng)
if [ "$extra" = "test" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
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
