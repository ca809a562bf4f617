#!/usr/bin/env bash
# Runs the whole test suite: sets up .venv if needed, then pytest. Uses the Redis server at
# 127.0.0.1:6379 when it answers (tests on it are skipped otherwise) and an embedded one always.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# Small tensors run faster on one thread per process, and the tests start several processes.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
