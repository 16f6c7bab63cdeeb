"""One training step on TensorFlow and on JAX, from the same weights, batch and noise, gives the
same losses and updated weights (each backend in its own process: KERAS_BACKEND is fixed when
Keras is imported; tests/training/parity_helper.py is the step).

Intrinsic differences between the backends, and how the JAX step handles them:

- Random streams: the same `SeedGenerator` state draws other numbers on each backend (TF's
  stateless Philox against JAX's threefry), so the parity check fixes the noise of z and the
  prior codes; each backend's own stream is threaded through steps and checkpoints.
- Spectral normalization: `keras.layers.SpectralNormalization` assigns `W / sigma` to its
  trainable kernel in every training call. TensorFlow's tape and PyTorch's autograd take the
  gradient at the value read after that assignment, and the optimizer then updates the
  normalized kernel. A plain stateless JAX call would differentiate through `sigma(W)` and keep
  `W` unnormalized (PyTorch's `torch.nn.utils.spectral_norm` semantics). The JAX step's
  `InPlaceScope` reproduces the in-place semantics (test_trainer_jax.py checks the gradient).
- Summation order: convolutions and reductions sum in other orders (oneDNN against XLA CPU):
  measured here, losses within 2.4e-6 relative and updated weights within 3e-6 (absolute;
  weights and `u` vectors of norm <= 1) on 2 CPU cores, over 14 random starts. A fifteenth
  start differed by 2.6e-4, so the helper seeds the start (parity_helper.INITIAL_WEIGHTS_SEED).
  Biases followed by a normalization get a zero gradient in exact arithmetic; both backends
  give them ~1e-8 noise that differs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import BACKEND

# The TF run is the default suite's; the JAX process is started from it.
pytestmark = pytest.mark.skipif(BACKEND != "tensorflow", reason="runs from the default suite")

HELPER = Path(__file__).with_name("parity_helper.py")
ROOT = HELPER.parents[2]


def _step(backend: str, directory: Path) -> dict[str, np.ndarray]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": path}
    result = subprocess.run(
        [sys.executable, str(HELPER), str(directory)],
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(directory / f"{backend}.npz") as arrays:
        return dict(arrays)


def test_one_jax_step_equals_one_tensorflow_step(tmp_path):
    tf_step = _step("tensorflow", tmp_path)
    jax_step = _step("jax", tmp_path)
    assert sorted(tf_step) == sorted(jax_step)
    losses = [k for k in tf_step if k.startswith("loss/")]
    assert len(losses) == 13  # every term on, the latent regression and region terms included
    for name in losses:
        assert tf_step[name] != 0.0, name
        np.testing.assert_allclose(jax_step[name], tf_step[name], rtol=1e-5, err_msg=name)
    moved = 0
    for name in tf_step:
        if not name.startswith("var/") or name.endswith("seed_generator_state"):
            continue
        before = tf_step[name.replace("var/", "before/", 1)]
        np.testing.assert_array_equal(jax_step[name.replace("var/", "before/", 1)], before)
        # A moving variance is a mean of squares (209 for some channels of the seeded start),
        # summed in another order by each backend: measured within 1.4e-5 relative.
        rtol = 5e-5 if name.endswith("moving_variance") else 1e-5
        np.testing.assert_allclose(
            jax_step[name], tf_step[name], rtol=rtol, atol=5e-6, err_msg=name
        )
        moved += bool(np.abs(tf_step[name] - before).max() > 1e-4)
    # Kernels, normalization statistics and u vectors (95 of 179 variables measured) moved by
    # far more than the tolerance; biases before a normalization do not move.
    assert moved > 80
