#!/usr/bin/env bash
# The GPU check (issue 8, item 3) in one run, for a lent machine whose Python has torch but
# not this project's other dependencies: install them from a bundle folder (wheels, plus Ray
# as ray.tar.xz: its wheel is larger than a lent machine takes), run the tests marked `gpu`,
# then benchmarks/gpu.py (CPU vs GPU meta-training) for the given presets.
#
#   benchmarks/gpu_check.sh BUNDLE OUT [SECONDS] [PRESETS...]
#
# BUNDLE holds the wheels, ray.tar.xz and images_background.zip; OUT gets pytest-gpu.txt and
# gpu.jsonl (one JSON line per arm, as they end). docs/benchmarks.md says how the bundle was
# made and what the last run gave.
set -u
BUNDLE=${1:?bundle folder}
OUT=${2:?output folder}
SECS=${3:-90}
shift 3 2>/dev/null || shift $#
PRESETS=${*:-paper default}
mkdir -p "$OUT" /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site "$BUNDLE"/*.whl || exit 1
tar xJf "$BUNDLE"/ray.tar.xz -C /tmp/site || exit 1
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import torch, ray; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'ray', ray.__version__)"
timeout 240 python3 -m pytest -m gpu -p no:cacheprovider -q -rs \
  tests/workers/test_gpu.py tests/atnas/test_onnx.py 2>&1 | tee "$OUT/pytest-gpu.txt"
# shellcheck disable=SC2086
timeout $((SECS * 4 + 60)) python3 benchmarks/gpu.py --data "$BUNDLE"/images_background.zip \
  --presets $PRESETS --secs "$SECS" --tasks 40 --search-tasks 0 --cpu-threads 4 \
  2>&1 | tee "$OUT/gpu.jsonl"
