#!/usr/bin/env bash
# The JAX training step on the GPU machine (Python 3.12, JAX with CUDA, PyTorch, numpy, h5py; no
# Keras, no TensorFlow), against the official-architecture PyTorch step: rows in priority order
# under --budget-seconds (default 300), tables written to $OUT (benchmarks/gpu_jax.py).
#
# Keras and the pure-Python dependencies the image lacks are installed from wheels carried in
# benchmarks/wheels/ (an ignored folder). Download them on a machine with network access:
#
#   pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
#       -d benchmarks/wheels keras==3.15.1 namex optree
#
# and carry the folder with the run (the device tool's `carry: ["benchmarks/wheels"]`):
#
#   bash benchmarks/gpu_jax.sh                       # on the GPU machine
#   bash benchmarks/gpu_jax.sh --tiny --out /tmp/t   # tiny models on a CPU (the tests)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import keras" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps benchmarks/wheels/*.whl
fi
export KERAS_BACKEND=jax PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-/tmp/smis-jax-cache}"
exec python3 -m benchmarks.gpu_jax "$@"
