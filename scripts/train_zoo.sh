#!/usr/bin/env bash
# Trains the zoo's five *_shapes64 models on the synthetic benchmark with one shared recipe.
# Usage: scripts/train_zoo.sh RUNS_DIR [MODEL ...]. Rerunning resumes each run where it stopped.
#
# The same for every model (docs/zoo.md says why each setting was chosen):
#  - pixel L1 x 10 and a small KL weight (0.0002): at 0.005-0.02 the posterior collapsed;
#  - the prior GAN term (images decoded from random codes are fakes too);
#  - a slower discriminator (G 4e-4, D 1e-4): with the TTUR rates it won and the colours collapsed;
#  - bfloat16 compute (mixed_bfloat16), which trains like float32 here at half the time;
#  - two phases: 1,500 steps, then `--extend` to 3,000 (the learning rates restart and decay
#    to 0 again over steps 1,500-3,000), which is how the shipped presets were trained.
set -euo pipefail
runs=${1:?usage: scripts/train_zoo.sh RUNS_DIR [MODEL ...]}
shift
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  models=(groupdnet_shapes64 mulnet_shapes64 groupnet_shapes64 groupenc_shapes64 vspade_shapes64)
fi
recipe=(--batch-size 16 --seed 0 --dtype-policy mixed_bfloat16 --reconstruction-weight 10
  --kl-weight 0.0002 --prior-gan-weight 1 --lr-g 4e-4 --lr-d 1e-4 --log-every 0 --verbose 2)
run_steps() {  # the steps in a run folder's run.json (0 when it has none)
  python -c 'import json, sys; print(json.load(open(sys.argv[1]))["steps"])' "$1/run.json" \
    2>/dev/null || echo 0
}
for model in "${models[@]}"; do
  out="$runs/$model"
  if [ "$(run_steps "$out")" -lt 3000 ]; then
    smis train --model "$model" --out "$out" --steps 1500 "${recipe[@]}"
  fi
  smis train --model "$model" --out "$out" --extend --steps 3000 "${recipe[@]}"
done
