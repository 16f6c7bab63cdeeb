"""Subprocess body of tests/training/test_parity.py (never collected by pytest): one training
step of `tests.helpers.small_trainer` on the backend KERAS_BACKEND names, fixed at import.

    KERAS_BACKEND=tensorflow python tests/training/parity_helper.py DIR
    KERAS_BACKEND=jax python tests/training/parity_helper.py DIR

The TensorFlow run writes the initial weights to DIR/initial.weights.h5; the other backends load
them. Each run writes DIR/<backend>.npz: the step's losses ("loss/<name>") and every variable
before and after the step
("before/<path>", "var/<path>"). The two backends' random streams differ for the same seed state,
so the noise of z and the prior codes are fixed arrays here (`fixed_noise`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

from smis_layers.data import SyntheticShapes
from tests.helpers import small_trainer

BATCH = 2
# The TensorFlow run draws the initial weights that both backends start from. They are seeded so
# that every run checks the same, well-conditioned start: of 15 unseeded starts measured, one
# (an initial spectral-norm `u` far from the top singular vector, which the first power iteration
# amplifies float32 rounding differences from) gave fakes in the discriminator step that differed
# by 2.6e-4 relative between the backends, the other 14 within 2.4e-6.
INITIAL_WEIGHTS_SEED = 0
LEARNING_RATE = 0.1  # SGD: each update is the gradient, so the check compares gradients
COMPILE = {
    "reconstruction_weight": 1.0,
    "region_colour_weight": 1.0,
    "region_spectrum_weight": 0.1,
    "prior_gan_weight": 1.0,
    "latent_weight": 1.0,
}


def fixed_noise(generator) -> None:
    """Replaces the generator's draws (eps of z, prior codes) by fixed N(0, 1) arrays."""
    shape = (BATCH, *generator.latent_shape)
    rng = np.random.default_rng(7)
    eps, prior = (rng.standard_normal(shape).astype("float32") for _ in range(2))

    def sample(mu, logvar):
        return mu + keras.ops.convert_to_tensor(eps) * keras.ops.exp(0.5 * logvar)

    generator._sample_training_z = sample
    generator.training_prior_z = lambda like, spatially_shared=False: keras.ops.cast(
        prior, like.dtype
    )


def feature_extractor():
    inputs = keras.Input((64, 64, 3))
    conv = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="features")
    features = conv(inputs)
    extractor = keras.Model(inputs, [features] * 5)
    rng = np.random.default_rng(3)
    conv.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in conv.get_weights()])
    extractor.trainable = False
    return extractor


def main(directory: Path) -> None:
    backend = keras.backend.backend()
    keras.utils.set_random_seed(INITIAL_WEIGHTS_SEED)
    # TensorFlow's CPU graph rewrites cannot run the native grouped kernel when a ReLU follows
    # ("Fused conv implementation does not support grouped convolutions"); the lowering changes
    # how a convolution is computed, not its weights.
    trainer = small_trainer(feature_extractor(), "native" if backend == "jax" else "auto")
    trainer.compile(
        g_optimizer=keras.optimizers.SGD(LEARNING_RATE),
        d_optimizer=keras.optimizers.SGD(LEARNING_RATE),
        jit_compile=backend == "jax",  # TensorFlow: graph mode, the CPU default
        **COMPILE,
    )
    initial = directory / "initial.weights.h5"
    if backend == "tensorflow":
        trainer.save_weights(initial)
    else:
        trainer.load_weights(initial)
    fixed_noise(trainer.generator)
    variables = [*trainer.trainable_variables, *trainer.non_trainable_variables]
    arrays = {f"before/{v.path}": np.array(keras.ops.convert_to_numpy(v)) for v in variables}
    batch = SyntheticShapes(64, num_classes=4, seed=11).batch(np.arange(BATCH))
    logs = trainer.train_on_batch(batch, return_dict=True)
    arrays.update({f"loss/{name}": np.float32(value) for name, value in logs.items()})
    for variable in variables:
        arrays[f"var/{variable.path}"] = np.array(keras.ops.convert_to_numpy(variable))
    np.savez(directory / f"{backend}.npz", **arrays)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
