"""Steps/s and images/s of the full G+D training step for each *_shapes64 model on the CPU.

Usage:

    python -m benchmarks.train_step                 # batch 16, jit off and on, all models
    python -m benchmarks.train_step --models groupdnet_shapes64 --steps 5 --jit false

Each measurement builds the model with its discriminator (2 scales, 4 layers, 32 filters, as
`smis train` uses by default), compiles `SMISTrainer`, runs warm-up steps, then times `--steps`
steps of `fit` on in-memory synthetic batches (median of per-step times) and, separately, the
`tf.data` synthetic pipeline alone, to show whether the input pipeline could be the bottleneck.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

from smis_layers.data.synthetic import SyntheticShapes, synthetic_tf_dataset
from smis_layers.models import MultiScaleDiscriminator, build_architecture
from smis_layers.models.architectures import ARCHITECTURES
from smis_layers.training import SMISTrainer


class StepTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def time_model(name: str, batch_size: int, steps: int, jit: bool, warmup: int = 3) -> float:
    keras.utils.set_random_seed(0)
    generator = build_architecture(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = SMISTrainer(generator, MultiScaleDiscriminator(base_filters=32))
    trainer.compile(jit_compile=jit)
    data = SyntheticShapes(image_size=generator.image_size[0], seed=0)
    batch = data.batch(np.arange(batch_size))
    dataset = tf.data.Dataset.from_tensors(
        {"images": batch["images"], "masks": batch["masks"]}
    ).repeat()
    timer = StepTimer()
    trainer.fit(dataset, epochs=1, steps_per_epoch=warmup + steps, verbose=0, callbacks=[timer])
    return statistics.median(timer.times[warmup:])


def time_pipeline(batch_size: int, batches: int = 30) -> float:
    iterator = iter(synthetic_tf_dataset(SyntheticShapes(64, seed=0), batch_size))
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return (time.perf_counter() - start) / batches


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(ARCHITECTURES))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--jit", nargs="+", default=["false", "true"], choices=["false", "true"])
    args = parser.parse_args(argv)
    rows = []
    print(f"batch {args.batch_size}, median of {args.steps} steps, CPU threads: {os.cpu_count()}")
    print("| model | jit_compile | s/step | steps/s | images/s |")
    print("|---|---|---|---|---|")
    for name in args.models:
        for jit in args.jit:
            seconds = time_model(name, args.batch_size, args.steps, jit == "true")
            rows.append((name, jit, seconds))
            print(
                f"| {name} | {jit} | {seconds:.3f} | {1 / seconds:.2f} | "
                f"{args.batch_size / seconds:.1f} |",
                flush=True,
            )
    pipeline = time_pipeline(args.batch_size)
    print(
        f"\nsynthetic tf.data pipeline alone: {pipeline * 1000:.1f} ms per batch of "
        f"{args.batch_size} ({args.batch_size / pipeline:.0f} images/s)"
    )
    return rows, pipeline


if __name__ == "__main__":
    main()
