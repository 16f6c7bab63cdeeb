"""A/B of CGNorm's normalization + modulation: today's batch norm then `* (1 + gamma) + beta`,
against the two fused into one pass over x (`x * scale + shift`), forward + backward.

    python -m benchmarks.cgnorm_fusion_ab [--repeats 15]
    KERAS_BACKEND=jax python -m benchmarks.cgnorm_fusion_ab

The issue-27 candidate "batch norm's statistics and the modulation fused into one pass":
`norm(x) * (1 + gamma) + beta` equals `x * scale + shift` with
`scale = (1 + gamma) * rsqrt(var + eps)` and `shift = beta - mean * scale` (mean and var the
batch moments). "current" is what `CGNorm.modulate` runs in training (the library's batch norm:
one fused kernel on TensorFlow, `smis_layers.ops.batch_norm`); "one-pass" is the fused form
written with `keras.ops` (fused by XLA under JAX's jit). Shapes: the norms of the two largest
decoder blocks of the official DeepFashion GroupDNet at ngf 32, batch 2: up_2's (128x128, 128
channels) and up_3's (256x256, 64 channels). gamma and beta are inputs (their convolutions are
the same in both variants). Each variant is traced once; the two then alternate, `--repeats`
times; medians of wall and process CPU seconds. The parity columns compare the outputs, the
gradient with respect to x and the unbiased batch variance that feeds the moving average.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from benchmarks import common
from smis_layers.layers.normalization import EPSILON
from smis_layers.ops.batch_norm import batch_norm_training

SHAPES = ((2, 128, 128, 128), (2, 256, 256, 64))
TINY_SHAPES = ((2, 8, 8, 16),)
COLUMNS = [
    "backend",
    "shape",
    "current ms",
    "one-pass ms",
    "current CPU ms",
    "one-pass CPU ms",
    "current / one-pass (CPU)",
    "max abs dy",
    "max rel d grad x",
    "max rel d var",
]


def current(x, gamma, beta):
    """(out, mean, unbiased var): the library's batch norm, then the modulation."""
    channels = x.shape[-1]
    y, mean, variance = batch_norm_training(
        x, ops.ones((channels,)), ops.zeros((channels,)), EPSILON
    )
    return y * (1.0 + gamma) + beta, mean, variance


def one_pass(x, gamma, beta):
    """(out, mean, unbiased var): `x * scale + shift`, the same function in one pass over x."""
    mean, variance = ops.moments(x, axes=(0, 1, 2))
    scale = (1.0 + gamma) * ops.rsqrt(variance + EPSILON)
    count = math.prod(x.shape[:-1])
    return x * scale + (beta - mean * scale), mean, variance * (count / (count - 1))


def value_and_gradients(fn: Callable, upstream) -> Callable:
    """A compiled `(x, gamma, beta) -> (out, unbiased var, d/dx, d/dgamma, d/dbeta)` of
    `sum(fn(...)[0] * upstream)`, on the current backend (TensorFlow: tf.function, no XLA;
    JAX: jax.jit)."""
    if keras.backend.backend() == "jax":
        import jax

        def loss(x, gamma, beta):
            out, _, variance = fn(x, gamma, beta)
            return ops.sum(out * upstream), (out, variance)

        grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2), has_aux=True))

        def step(x, gamma, beta):
            grads, (out, variance) = grad(x, gamma, beta)
            return (out, variance, *grads)

        return step
    import tensorflow as tf

    @tf.function(jit_compile=False)
    def step(x, gamma, beta):
        with tf.GradientTape() as tape:
            tape.watch([x, gamma, beta])
            out, _, variance = fn(x, gamma, beta)
            loss = tf.reduce_sum(out * upstream)
        return (out, variance, *tape.gradient(loss, [x, gamma, beta]))

    return step


def compare(shape: tuple[int, ...], repeats: int) -> dict:
    """One table row: medians of both variants, alternated, and their parity."""
    rng = np.random.default_rng(0)

    def tensor(mean: float, std: float):
        return ops.convert_to_tensor(rng.normal(mean, std, shape).astype("float32"))

    x, gamma, beta, upstream = tensor(0.3, 1.5), tensor(0, 0.3), tensor(0, 0.3), tensor(0, 1)
    steps = {"current": value_and_gradients(current, upstream)}
    steps["one-pass"] = value_and_gradients(one_pass, upstream)
    results = {}
    for name, step in steps.items():
        results[name] = [ops.convert_to_numpy(t) for t in step(x, gamma, beta)]
        step(x, gamma, beta)
    times = {name: [] for name in steps}
    for _ in range(max(1, repeats)):
        for name, step in steps.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            ops.convert_to_numpy(step(x, gamma, beta)[2])
            times[name].append((time.perf_counter() - start, time.process_time() - start_cpu))
    wall = {n: 1e3 * statistics.median(t for t, _ in v) for n, v in times.items()}
    cpu = {n: 1e3 * statistics.median(c for _, c in v) for n, v in times.items()}
    (out, variance, grad_x, *_), (out_1, variance_1, grad_x_1, *_) = results.values()
    return {
        "backend": keras.backend.backend(),
        "shape": "x".join(map(str, shape)),
        "current ms": wall["current"],
        "one-pass ms": wall["one-pass"],
        "current CPU ms": cpu["current"],
        "one-pass CPU ms": cpu["one-pass"],
        "current / one-pass (CPU)": cpu["current"] / cpu["one-pass"],
        "max abs dy": float(np.abs(out - out_1).max()),
        "max rel d grad x": float(np.abs(grad_x - grad_x_1).max() / np.abs(grad_x).max()),
        "max rel d var": float(np.abs(variance / variance_1 - 1).max()),
    }


def main(argv: list[str] | None = None) -> common.Table:
    """Prints and returns the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="alternated timed calls")
    parser.add_argument("--tiny", action="store_true", help="one small shape (tests)")
    args = parser.parse_args(argv)
    table = common.Table("CGNorm: batch norm + modulation, fused or not", COLUMNS)
    for shape in TINY_SHAPES if args.tiny else SHAPES:
        table.add(**compare(shape, args.repeats))
    table.notes.append(f"Machine: {common.cpu_description()}; forward + backward, float32.")
    table.print()
    return table


if __name__ == "__main__":
    main()
