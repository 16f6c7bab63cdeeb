#!/usr/bin/env bash
# Trains the zoo on the GPU machine (Python 3.12, JAX with CUDA, numpy, h5py; no Keras, no
# TensorFlow) through the JAX trainer: scripts/train_zoo_gpu.py with --out "$OUT", the recipe
# of scripts/zoo_recipe.py, its arguments passed on (--models, --seeds, --resume, ...).
#
# Keras and the pure-Python dependencies the image lacks are installed from wheels carried in
# benchmarks/wheels/ (an ignored folder). Download them on a machine with network access:
#
#   pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
#       -d benchmarks/wheels keras==3.15.1 namex optree
#
# and carry the folder with the run (the device tool's `carry: ["benchmarks/wheels"]`, plus the
# folder of a previous call's returned parts for --resume; docs/training.md):
#
#   bash scripts/train_zoo_gpu.sh --models groupdnet_shapes64 --seeds 0 1    # on the GPU machine
#   bash scripts/train_zoo_gpu.sh --tiny --runs /tmp/r --out /tmp/o          # tiny, on a CPU
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import keras" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps benchmarks/wheels/*.whl
fi
export KERAS_BACKEND=jax PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-/tmp/smis-jax-cache}"
exec python3 scripts/train_zoo_gpu.py ${OUT:+--out "$OUT"} "$@"
