#!/usr/bin/env bash
# Runs the whole test suite (needs scripts/setup.sh first; Redis at 127.0.0.1:6379 for the real-Redis path).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pytest -q "$@"
