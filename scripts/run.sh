#!/usr/bin/env bash
# The README's main command: set up, then run the sample chain end to end on the
# embedded default (local Spark, local files and Delta, local MLflow, the simulator).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh local
# shellcheck disable=SC1091
source .venv/bin/activate
fmf run --chain chains/sample.yaml "$@"
