"""Forward+backward time of grouped-convolution lowerings on the current Keras backend.

Usage (the backend comes from KERAS_BACKEND, TensorFlow by default):

    python -m benchmarks.group_conv                      # the recorded configuration
    KERAS_BACKEND=jax python -m benchmarks.group_conv
    python -m benchmarks.group_conv --shape 2 16 16 32 --groups 4 --repeats 2   # quick

For each group count and execution mode it times one step = forward, `sum(y**2)`, gradients
with respect to the input and the weights, and reports the median over `--repeats` runs after
warm-up. Candidates: `GroupConv2D(lowering=auto|native|split)`, `keras.layers.Conv2D(groups=G)`
(Keras's own grouped convolution) and a dense `Conv2D` (groups=1, G times the FLOPs).
Modes: TensorFlow `eager`, `graph` (tf.function) and `jit` (tf.function(jit_compile=True));
JAX `eager` and `jit`; PyTorch `eager`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

from benchmarks import common
from smis_layers import GroupConv2D
from smis_layers.ops.grouped_conv import resolve_lowering

BACKEND = keras.backend.backend()
MODES = {"tensorflow": ("eager", "graph", "jit"), "jax": ("eager", "jit"), "torch": ("eager",)}
SLOW_SECONDS = 2.0


def make_layer(name: str, filters: int, groups: int, dtype: str = "float32") -> keras.layers.Layer:
    if name.startswith("GroupConv2D"):
        lowering = name.split("=")[1].rstrip(")")
        return GroupConv2D(filters, 3, groups=groups, lowering=lowering, dtype=dtype)
    if name == "keras Conv2D(groups=G)":
        return keras.layers.Conv2D(filters, 3, padding="same", groups=groups, dtype=dtype)
    return keras.layers.Conv2D(filters, 3, padding="same", dtype=dtype)


CANDIDATES = (
    "GroupConv2D(lowering=auto)",
    "GroupConv2D(lowering=native)",
    "GroupConv2D(lowering=split)",
    "keras Conv2D(groups=G)",
    "dense Conv2D(groups=1)",
)


def make_step(layer, mode):
    """Returns a no-argument function running one forward+backward step, blocking on its result."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x)
                loss = tf.reduce_sum(tf.square(y))
            return tape.gradient(loss, [x, *layer.trainable_variables])

        if mode == "graph":
            step = tf.function(step)
        elif mode == "jit":
            step = tf.function(step, jit_compile=True)
        return lambda x: [g.numpy() for g in step(x)]
    if BACKEND == "jax":
        import jax

        def loss_fn(weights, x):
            y, _ = layer.stateless_call(weights, [], x)
            return jax.numpy.sum(y * y)

        grad = jax.grad(loss_fn, argnums=(0, 1))
        if mode == "jit":
            grad = jax.jit(grad)
        weights = [v.value for v in layer.trainable_variables]
        return lambda x: jax.block_until_ready(grad(weights, x))
    import torch

    def torch_step(x):
        x = x.detach().requires_grad_(True)
        loss = torch.sum(layer(x) ** 2)
        loss.backward()
        return x.grad

    return torch_step


def time_step(step, x, repeats):
    """Median ms of `step(x)` after a warm-up; NaN where the backend's kernel fails (some
    CPUs have no grouped gradient in some dtypes: `smis_layers.ops.native_kernel_works`)."""
    start = time.perf_counter()
    try:
        step(x)  # warm-up (tracing, compilation)
    except Exception as error:
        print(f"  fails: {type(error).__name__}: {str(error).splitlines()[0][:120]}")
        return float("nan")
    first = time.perf_counter() - start
    times = []
    for _ in range(1 if first > 10 * SLOW_SECONDS else repeats):
        start = time.perf_counter()
        step(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def resolved_auto(mode, groups, dtype="float32"):
    """What lowering="auto" picks in `mode` (recorded during tracing)."""
    if BACKEND != "tensorflow" or mode != "jit":
        return resolve_lowering("auto", groups, dtype=dtype)
    import tensorflow as tf

    seen = []

    def probe():
        seen.append(resolve_lowering("auto", groups, dtype=dtype))
        return tf.constant(0.0)

    tf.function(probe, jit_compile=True)()
    return seen[0]


def run(shape, groups_list, repeats, dtypes=("float32",)):
    channels = shape[-1]
    rows = []
    for dtype in dtypes:
        x = keras.ops.cast(np.random.default_rng(0).normal(size=shape).astype("float32"), dtype)
        for groups in groups_list:
            for mode in MODES[BACKEND]:
                results = {}
                for name in CANDIDATES:
                    layer = make_layer(name, channels, groups, dtype)
                    layer.build(shape)
                    results[name] = time_step(make_step(layer, mode), x, repeats)
                fastest = np.nanmin(list(results.values()))
                auto = results["GroupConv2D(lowering=auto)"]
                keras_grouped = results["keras Conv2D(groups=G)"]
                rows.append(
                    (
                        dtype,
                        groups,
                        mode,
                        resolved_auto(mode, groups, dtype),
                        results,
                        keras_grouped / auto,
                        auto / fastest,
                    )
                )
    return rows


def to_table(rows, shape) -> common.Table:
    """The rows of `run` as a suite table."""
    table = common.Table(
        f"Grouped convolution lowerings ({BACKEND}, input {tuple(shape)}, 3x3 conv "
        f"{shape[-1]}->{shape[-1]}, forward+backward, median ms; nan: the kernel fails)",
        ["dtype", "G", "mode", "auto ->", *CANDIDATES, "keras/auto", "auto/fastest"],
    )
    for dtype, groups, mode, auto_to, results, speedup, ratio in rows:
        table.add(
            dtype=dtype,
            G=groups,
            mode=mode,
            **{"auto ->": auto_to, "keras/auto": speedup, "auto/fastest": ratio},
            **{name: float(results[name]) for name in CANDIDATES},
        )
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options of this part."""
    parser.add_argument(
        "--shape", type=int, nargs=4, default=(4, 64, 64, 256), metavar=("B", "H", "W", "C")
    )
    parser.add_argument("--groups", type=int, nargs="+", default=(8, 32))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--dtypes",
        nargs="+",
        default=("float32",),
        choices=("float32", "bfloat16", "float16"),
        help="compute dtypes of the layers (each row's kernels may differ per dtype and CPU)",
    )


def run_from_args(args: argparse.Namespace) -> common.Table:
    """Runs this part from parsed arguments (`--tiny`: input (1, 8, 8, 8), G=2, 1 repeat)."""
    dtypes = tuple(getattr(args, "dtypes", ("float32",)))
    if getattr(args, "tiny", False):
        shape, groups, repeats = (1, 8, 8, 8), (2,), 1
    else:
        shape, groups, repeats = tuple(args.shape), args.groups, args.repeats
    table = to_table(run(shape, groups, repeats, dtypes), shape)
    table.print()
    return table


def main(argv=None) -> int:
    """`python -m benchmarks.group_conv [options]`; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny shape (tests)")
    add_arguments(parser)
    run_from_args(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
