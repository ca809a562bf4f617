#!/bin/sh
# Where a served prediction's time goes (issue 9): runs benchmarks/serve_models.py and, during its
# "served" phase, samples the API process and the model's replica with py-spy (15 s, 50 Hz) and
# the whole machine with top. Needs py-spy (`pip install py-spy`); run it alone on the machine.
#   sh benchmarks/profile_serving.sh [OUT_DIR]     # default benchmarks/out/profile_serving
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
SPY=${PY_SPY:-$(dirname "$PY")/py-spy}
OUT=${1:-benchmarks/out/profile_serving}
if [ ! -x "$SPY" ]; then
  echo "profile_serving: py-spy not found at $SPY (pip install py-spy, or set PY_SPY)" >&2
  exit 2
fi
mkdir -p "$OUT"
"$PY" benchmarks/serve_models.py --seconds 40 --out "$OUT/serve.json" > "$OUT/bench.log" 2>&1 &
BENCH=$!
# the replica exists once the model is deployed; the served phase starts right after
while ! pgrep -f "ServeReplica:atnas-model" > /dev/null; do
  kill -0 "$BENCH" 2>/dev/null || { echo "profile_serving: the benchmark stopped, see $OUT/bench.log" >&2; exit 1; }
  sleep 0.5
done
sleep 12
API=$(pgrep -f "atnas_cli.main serve" | head -1)
REPLICA=$(pgrep -f "ServeReplica:atnas-model" | head -1)
"$SPY" record -p "$API" -d 15 -r 50 --format raw --nonblocking -o "$OUT/api.txt" > /dev/null 2>&1 &
"$SPY" record -p "$REPLICA" -d 15 -r 50 --format raw --nonblocking -o "$OUT/replica.txt" > /dev/null 2>&1 &
top -b -n 3 -d 4 -w 200 > "$OUT/top.txt"
wait
echo "profile_serving: collapsed stacks in $OUT/api.txt and $OUT/replica.txt, top in $OUT/top.txt"
