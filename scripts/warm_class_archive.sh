#!/usr/bin/env bash
# Write the driver's class archive (fmf_spark.class_archive) of the active venv's Java and
# pyspark, unless it is there: one run of the sample chain (the classes of a whole chain:
# Delta writes, streaming, the Python workers' plumbing) in a scratch folder, waiting for
# the archive to be written and checked. Every later driver of that venv maps it (a chain
# run about 0.9x the CPU, a bare session 0.65x: benchmarks/startup.py). scripts/test.sh
# runs it before the suite, for each venv. Fails only when the chain fails.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if python -c 'import sys; from fmf_spark import class_archive as a; p = a.plan("auto"); sys.exit(0 if p is None or p.part is None else 1)'; then
  echo "class archive: already there (or no Java 17+ here)"
  exit 0
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cp -r "$root/conf" "$root/chains" "$root/prompts" "$root/samples" "$scratch/"
if ! (cd "$scratch" && FMF_CLASS_ARCHIVE_WAIT=1 fmf run --chain chains/sample.yaml --quiet) \
  >"$scratch/output.txt" 2>&1; then
  cat "$scratch/output.txt" >&2
  echo "class archive: the sample chain failed (above)" >&2
  exit 1
fi
python -c 'import sys; from fmf_spark import class_archive as a; p = a.plan("auto"); print("class archive:", p.final if p and p.part is None else "NOT written")'
