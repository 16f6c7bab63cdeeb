#!/usr/bin/env bash
# Trains the zoo's five *_shapes64 models on the synthetic benchmark with one shared recipe.
# Usage: scripts/train_zoo.sh RUNS_DIR [MODEL ...]. Rerunning resumes each run where it stopped.
#
# Two phases, the same for every model: 1,500 steps with the TTUR learning rates (G 1e-4,
# D 4e-4) and KL weight 0.005, then `--extend` to 2,500 steps with G and D at 2e-4 (the
# discriminator had won the first phase: d_loss < 0.1) and KL weight 0.02 (random codes gave
# blotchy images: the posterior had drifted from the prior).
set -euo pipefail
runs=${1:?usage: scripts/train_zoo.sh RUNS_DIR [MODEL ...]}
shift
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  models=(groupdnet_shapes64 mulnet_shapes64 groupnet_shapes64 groupenc_shapes64 vspade_shapes64)
fi
common=(--batch-size 16 --reconstruction-weight 10 --seed 0 --log-every 0 --verbose 2)
for model in "${models[@]}"; do
  out="$runs/$model"
  if ! grep -qs '"phases"' "$out/run.json"; then
    smis train --model "$model" --out "$out" --steps 1500 --kl-weight 0.005 "${common[@]}"
  fi
  smis train --model "$model" --out "$out" --extend --steps 2500 --lr-g 2e-4 --lr-d 2e-4 \
    --kl-weight 0.02 "${common[@]}"
done
