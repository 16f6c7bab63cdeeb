"""A/B of CGNorm's batch norm in one process: the library's fused-kernel `BatchNormalization`
against Keras's, on the full training step (process CPU time, interleaved steps).

    python -m benchmarks.batch_norm_ab [--models groupdnet_shapes64 ...] [--batch-size 16]

Each model is built twice, once with each layer class; both traced steps then alternate, so
load changes hit both alike. Prints the median CPU seconds per step and their ratio.
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np

from benchmarks import common
from smis_layers.layers import normalization

BATCH_SIZES = {"groupdnet_deepfashion_small": 4}


def compare(name: str, batch_size: int, repeats: int = 6) -> dict[str, float]:
    """Median CPU s/step of the training step with Keras's and with the fused batch norm."""
    import tensorflow as tf

    fused = normalization.BatchNormalization
    steps = {}
    try:
        for label, layer_class in (("keras", keras.layers.BatchNormalization), ("fused", fused)):
            normalization.BatchNormalization = layer_class  # what make_normalization builds
            generator, discriminator = common.build_models(name)
            trainer = common.make_trainer(generator, discriminator, jit=False)
            batch = {k: tf.constant(v) for k, v in common.make_batch(generator, batch_size).items()}
            step = tf.function(trainer.train_step)
            step(batch)
            step(batch)
            steps[label] = (step, batch)
    finally:
        normalization.BatchNormalization = fused
    times = {label: [] for label in steps}
    for _ in range(repeats):
        for label, (step, batch) in steps.items():
            start = time.process_time()
            step(batch)
            times[label].append(time.process_time() - start)
    return {label: float(np.median(values)) for label, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--models", nargs="+", default=["groupdnet_shapes64", "groupdnet_deepfashion_small"]
    )
    parser.add_argument("--batch-size", type=int, default=None, help="default: 16 (4 at 256x256)")
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args(argv)
    print("| model | batch | Keras BN CPU s/step | fused BN CPU s/step | Keras / fused |")
    print("|---|---|---|---|---|")
    for name in args.models:
        batch_size = args.batch_size or BATCH_SIZES.get(name, 16)
        result = compare(name, batch_size, args.repeats)
        ratio = result["keras"] / result["fused"]
        keras_s, fused_s = result["keras"], result["fused"]
        print(f"| {name} | {batch_size} | {keras_s:.3f} | {fused_s:.3f} | {ratio:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
