#!/usr/bin/env bash
# Trains the zoo's five *_shapes64 models on the synthetic benchmark with one shared recipe.
# Usage: scripts/train_zoo.sh RUNS_DIR [MODEL ...]. Rerunning resumes each run where it stopped.
set -euo pipefail
runs=${1:?usage: scripts/train_zoo.sh RUNS_DIR [MODEL ...]}
shift
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  models=(groupdnet_shapes64 mulnet_shapes64 groupnet_shapes64 groupenc_shapes64 vspade_shapes64)
fi
for model in "${models[@]}"; do
  smis train --model "$model" --out "$runs/$model" --steps 1500 --batch-size 16 \
    --reconstruction-weight 10 --kl-weight 0.005 --seed 0 --log-every 0 --verbose 2
done
