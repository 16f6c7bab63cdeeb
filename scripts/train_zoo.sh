#!/usr/bin/env bash
# Trains the zoo's five *_shapes64 models on the synthetic benchmark with one shared recipe.
# Usage: scripts/train_zoo.sh RUNS_DIR [MODEL ...]. Rerunning resumes each run where it stopped.
#
# One phase, the same for every model (docs/zoo.md says why each setting was chosen):
#  - pixel L1 x 10 and a small KL weight (0.0002): at 0.005-0.02 the posterior collapsed;
#  - the prior GAN term (images decoded from random codes are fakes too);
#  - a slower discriminator (G 4e-4, D 1e-4): with the TTUR rates it won and the colours collapsed;
#  - bfloat16 compute (mixed_bfloat16), which trains like float32 here at half the time.
set -euo pipefail
runs=${1:?usage: scripts/train_zoo.sh RUNS_DIR [MODEL ...]}
shift
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  models=(groupdnet_shapes64 mulnet_shapes64 groupnet_shapes64 groupenc_shapes64 vspade_shapes64)
fi
for model in "${models[@]}"; do
  smis train --model "$model" --out "$runs/$model" --steps 1500 --batch-size 16 --seed 0 \
    --dtype-policy mixed_bfloat16 --reconstruction-weight 10 --kl-weight 0.0002 \
    --prior-gan-weight 1 --lr-g 4e-4 --lr-d 1e-4 --log-every 0 --verbose 2
done
