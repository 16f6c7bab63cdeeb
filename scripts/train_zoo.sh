#!/usr/bin/env bash
# Trains the zoo's five *_shapes64 models on the synthetic benchmark (the CPU; the GPU's is
# scripts/train_zoo_gpu.sh) with the recipe of scripts/zoo_recipe.py, which says why each
# setting was chosen: the same arguments for every model, phases of 800, 1,600, 2,400 and
# 4,800 steps (each later one `smis train --extend`, the learning rates restarting).
#
# Usage: scripts/train_zoo.sh [--seed S] RUNS_DIR [MODEL ...]
# Each run trains in RUNS_DIR/MODEL-seedS (seed 0 by default); rerunning resumes each run where
# it stopped (mid-phase, or at the next phase).
set -euo pipefail
recipe="$(dirname "$0")/zoo_recipe.py"
seed=0
if [ "${1:-}" = "--seed" ]; then
  seed=${2:?usage: scripts/train_zoo.sh [--seed S] RUNS_DIR [MODEL ...]}
  shift 2
fi
runs=${1:?usage: scripts/train_zoo.sh [--seed S] RUNS_DIR [MODEL ...]}
shift
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  mapfile -t models < <(python3 "$recipe" models)
fi
for model in "${models[@]}"; do
  mapfile -t words < <(python3 "$recipe" args "$model" --seed "$seed")
  [ ${#words[@]} -gt 0 ] || exit 1  # an unknown model (zoo_recipe.py said which)
  out="$runs/$(python3 "$recipe" run-name "$model" --seed "$seed")"
  previous=
  while mapfile -t phase < <(python3 "$recipe" next "$out") && [ ${#phase[@]} -gt 0 ]; do
    if [ "${phase[*]}" = "$previous" ]; then
      echo "train_zoo.sh: $out: ${phase[*]} again after it succeeded; stopping" >&2
      exit 1
    fi
    smis train --out "$out" "${phase[@]}" "${words[@]}"
    previous="${phase[*]}"
  done
done
