#!/usr/bin/env bash
# Trains the zoo's five *_shapes64 models on the synthetic benchmark with one shared recipe.
# Usage: scripts/train_zoo.sh RUNS_DIR [MODEL ...]. Rerunning resumes each run where it stopped.
#
# Four phases, the same for every model (docs/zoo.md says what each one changed):
#  1. steps 0-1500: TTUR learning rates (G 1e-4, D 4e-4), KL weight 0.005;
#  2. to 2500: G and D at 2e-4 (the discriminator had won phase 1: d_loss < 0.1) and KL weight
#     0.02 (random codes gave blotchy images: the posterior had drifted from the prior);
#  3. to 4500 of a 5000-step schedule (constant rate to 2500, then linear decay), KL 0.02;
#  4. to 5000 with KL weight 0.001: at 0.02 the encoder's codes carried about 2 nats per image
#     (`smis_layers.metrics.code_information`): the KL term had collapsed the posterior.
set -euo pipefail
runs=${1:?usage: scripts/train_zoo.sh RUNS_DIR [MODEL ...]}
shift
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  models=(groupdnet_shapes64 mulnet_shapes64 groupnet_shapes64 groupenc_shapes64 vspade_shapes64)
fi
common=(--batch-size 16 --reconstruction-weight 10 --seed 0 --log-every 0 --verbose 2)
completed() { python -c "import json,sys; print(json.load(open(sys.argv[1]))['completed_steps'])" \
  "$1/state.json" 2>/dev/null || echo 0; }
for model in "${models[@]}"; do
  out="$runs/$model"
  if ! grep -qs '"phases"' "$out/run.json"; then
    smis train --model "$model" --out "$out" --steps 1500 --kl-weight 0.005 "${common[@]}"
  fi
  if [ "$(completed "$out")" -lt 2500 ]; then
    smis train --model "$model" --out "$out" --extend --steps 2500 --lr-g 2e-4 --lr-d 2e-4 \
      --kl-weight 0.02 "${common[@]}"
  fi
  if [ "$(completed "$out")" -lt 4500 ]; then
    smis train --model "$model" --out "$out" --extend --steps 5000 --lr-g 2e-4 --lr-d 2e-4 \
      --kl-weight 0.02 --stop-at 4500 "${common[@]}"
  fi
  smis train --model "$model" --out "$out" --extend --steps 5000 --lr-g 2e-4 --lr-d 2e-4 \
    --kl-weight 0.001 "${common[@]}"
done
