#!/usr/bin/env bash
# The benchmark suite at the official 256x256 DeepFashion configuration on one GPU, one table:
# GroupDNet.official("deepfashion") + the official discriminator, full training step at batch
# 16 x jit on/off x float32/mixed_bfloat16, generate/decode at batch 1 and 16, then the step at
# batch 1, 4, 8, 2. Starts no row after --budget-seconds (default 300) so that it finishes in
# under 8 minutes on one H100. Options are those of `python -m benchmarks gpu --help`;
# `--tiny` runs a tiny model on the CPU in seconds (the tests do).
#
#   bash benchmarks/gpu.sh
#   bash benchmarks/gpu.sh --batch-sizes 1 16 --budget-seconds 300
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
exec python -m benchmarks gpu "$@"
