#!/usr/bin/env bash
# Design sweep on the meta-validation alphabets: every arm meta-trains for $SECS seconds, all arms
# at once (one thread each; needs a core per arm), then scores its best (or fixed) encode on the
# same 200 5w1s and 60 5w5s tasks. Prints one JSON line per arm. Run from the repo root:
#   SECS=150 N1=200 N5=60 PYTHON=.venv/bin/python bash benchmarks/sweep/run.sh
SECS=${SECS:-240}
DATA=${DATA:-${ATNAS_DATASETS:-../shared/datasets}/omniglot/images_background.zip}
export PYTHONPATH=$PWD OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1
arm() { ${PYTHON:-python3} benchmarks/sweep/arm.py "$SECS" "$1" "$2" "$DATA" 2>/dev/null & }
arm c64 '{"conv4": 64}'
arm c32 '{"conv4": 32}'
arm c16 '{"conv4": 16}'
arm c64_proto '{"conv4": 64, "inner": {"head": "proto"}}'
arm c64_proto01 '{"conv4": 64, "inner": {"head": "proto", "head_scale": 0.1}}'
arm c64_mlr3 '{"conv4": 64, "meta_lr": 0.003}'
arm at_default '{}'
arm at_nosand '{"sandwich": false}'
arm at_pop6 '{"population": 6, "offspring": 4}'
arm at_slim '{"ops": ["conv3x3"]}'
arm at_3ops '{"ops": ["conv3x3", "dilconv3x3", "sepconv3x3", "identity"]}'
arm at_mem0 '{"fitness_memory": 0.0}'
arm at_mlr3 '{"meta_lr": 0.003}'
arm at_slim_mlr3 '{"ops": ["conv3x3"], "meta_lr": 0.003}'
arm at_proto01 '{"inner": {"head": "proto", "head_scale": 0.1}}'
wait

