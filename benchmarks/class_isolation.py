"""How much changing one class's code moves the other classes' pixels, before any training.

Usage:

    python -m benchmarks.class_isolation [--samples 4]

For each *_shapes64 architecture (untrained, inference mode) and each class c of a random
blocky mask, adds 1.0 to class c's code and reports the mean absolute pixel change inside class
c's region and outside it, averaged over classes and samples. The ratio outside/inside is what
the architecture alone guarantees: MulNet is 0 by construction; every model whose decoder mixes
groups leaks until training teaches it not to (the paper's mOCD measures that after training).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

from smis_layers.models import build_architecture
from smis_layers.models.architectures import ARCHITECTURES


def blocky_labels(rng, batch, size, classes, block=16):
    labels = rng.integers(0, classes, (batch, size // block, size // block))
    return labels.repeat(block, 1).repeat(block, 2)


def measure(name: str, samples: int, seed: int = 0) -> tuple[float, float]:
    keras.utils.set_random_seed(seed)  # the weight initializers draw from the global seed
    model = build_architecture(name, seed=seed)
    rng = np.random.default_rng(seed)
    labels = blocky_labels(rng, samples, model.image_size[0], model.num_classes)
    z = model.sample_z(samples, seed=seed)
    base = model.generate(labels, z=z)
    inside, outside = [], []
    for c in range(model.num_classes):
        lo = c * model.schedule.latent_channels
        hi = lo + model.schedule.latent_channels
        changed = model.generate(labels, z=model.with_class_code(z, c, z[..., lo:hi] + 1.0))
        diff = np.abs(changed - base).mean(-1)
        region = labels == c
        if region.any():
            inside.append(diff[region].mean())
            outside.append(diff[~region].mean())
    return float(np.mean(inside)), float(np.mean(outside))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=4)
    args = parser.parse_args(argv)
    print("| model | mean change inside class c | outside | outside / inside |")
    print("|---|---|---|---|")
    rows = {}
    for name in ARCHITECTURES:
        inside, outside = measure(name, args.samples)
        rows[name] = (inside, outside)
        print(f"| {name} | {inside:.4f} | {outside:.4f} | {outside / inside:.3f} |")
    return rows


if __name__ == "__main__":
    main()
