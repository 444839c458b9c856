#!/usr/bin/env bash
# `make emr-package`: what an EMR step needs, in dist/emr/:
#   fmf_spark_emr.tar.gz  a packed virtualenv (venv-pack) with the wheel and its runtime
#                         dependencies, minus pyspark and py4j, which EMR provides; shipped
#                         to every node with spark.archives=...#environment
#   fmf_job.py            the spark-submit entry point (jobs/fmf_job.py)
#   step.json             the EMR step (deploy/emr/step.json)
# venv-pack keeps the interpreter as a symlink: build on the Python the nodes run (the
# same version at the same path; docs/deploy/emr.md builds it in an Amazon Linux image).
# Environment: PYTHON (default python3), EXTRAS (default local; ignored with a lock),
# LOCK (default requirements/spark4/local.lock, for an EMR release with Spark 4;
# requirements/spark35/local.lock for EMR 7.x, whose Spark is 3.5).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
extras="${EXTRAS:-local}"
out=dist/emr
work=build/emr
rm -rf "$work" "$out"
mkdir -p "$work" "$out"

"$python" -m pip wheel --quiet --no-deps -w "$work/dist" .
wheel="$(ls "$work"/dist/fmf_spark-*.whl)"
PYTHON="$python" sh deploy/install.sh "$wheel" "$extras" venv "$work/venv"
# EMR's Spark brings pyspark and py4j (on the PYTHONPATH of the driver and executors);
# a second copy would shadow the cluster's and mismatch its JVM side.
"$work/venv/bin/python" -m pip uninstall --quiet --yes pyspark py4j
# venv-pack is a build tool: $python must have it (the `test` extra installs it)
"$python" -m venv_pack --quiet --prefix "$work/venv" --output "$out/fmf_spark_emr.tar.gz" --force
cp jobs/fmf_job.py "$out/fmf_job.py"
cp deploy/emr/step.json "$out/step.json"
ls -la "$out"
