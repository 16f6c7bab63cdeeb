"""Subprocess body of tests/training/test_distribution_jax.py (never collected by pytest).

    XLA_FLAGS="--xla_force_host_platform_device_count=2 --xla_dump_to=DUMP \
        --xla_dump_hlo_as_text" KERAS_BACKEND=jax \
        python tests/training/jax_distributed_helper.py OUT.npz LOWERING

Runs one training step of two copies of `tests.helpers.small_trainer(lowering=LOWERING)` (same
initial weights) on
the same global batch: one on a single device, one under
`keras.distribution.DataParallel` over the 2 host devices (the batch sharded across them).
Writes both steps' losses and variables to OUT.npz ("one/..." and "two/...") and the number of
devices used. XLA dumps every compiled program (after optimization) into DUMP, which the test
reads for collectives.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import keras
import numpy as np

from smis_layers.data import SyntheticShapes
from tests.helpers import small_trainer

GLOBAL_BATCH = 4
COMPILE = {"reconstruction_weight": 1.0, "prior_gan_weight": 1.0}


def _step(prefix: str, weights: list | None, lowering: str) -> tuple[dict, list]:
    keras.utils.set_random_seed(0)
    trainer = small_trainer(lowering=lowering)
    trainer.compile(
        g_optimizer=keras.optimizers.SGD(0.1), d_optimizer=keras.optimizers.SGD(0.1), **COMPILE
    )
    if weights is not None:
        trainer.set_weights(weights)
    initial = trainer.get_weights()
    batch = SyntheticShapes(64, num_classes=4, seed=3).batch(np.arange(GLOBAL_BATCH))
    logs = trainer.train_on_batch(batch, return_dict=True)
    arrays = {f"{prefix}/loss/{k}": np.float32(v) for k, v in logs.items()}
    variables = [*trainer.trainable_variables, *trainer.non_trainable_variables]
    for i, v in enumerate(variables):  # by position: the second build's layer names differ
        arrays[f"{prefix}/var/{i}/{v.path.split('/')[-1]}"] = np.array(
            keras.ops.convert_to_numpy(v)
        )
    return arrays, initial


def main(out: Path, lowering: str) -> None:
    devices = jax.devices()
    if len(devices) != 2:
        raise SystemExit(f"expected 2 host devices (XLA_FLAGS), found {len(devices)}")
    one, initial = _step("one", None, lowering)
    distribution = keras.distribution.DataParallel(devices=devices)
    with distribution.scope():
        two, _ = _step("two", initial, lowering)
    np.savez(out, devices=np.int32(len(devices)), **one, **two)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
