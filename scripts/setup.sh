#!/usr/bin/env bash
# Creates .venv (if missing) and installs atnas with pinned dependencies (CPU torch).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# constraints.txt pins torch to the CPU build (and every other package) so CI never pulls CUDA wheels.
.venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]'
