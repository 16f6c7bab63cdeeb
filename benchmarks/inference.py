"""Inference: latency, images/s and peak memory of `model.generate(masks, z=...)`.

Usage:

    python -m benchmarks inference                       # every model, batch 1 and 16
    python -m benchmarks.inference --models groupdnet_shapes64 --batch-sizes 1 16
    python -m benchmarks inference --tiny                # seconds (tests)

Every model x batch size runs in a fresh process (`--isolate`, the default outside `--tiny`),
so its peak resident memory (VmHWM, Linux's ru_maxrss) is its own: "RSS built" is the memory
after importing TensorFlow and building the model, "peak RSS" the high-water mark after the
timed `generate` calls (the difference is what generating took on top). Latency is the median
wall time of one `generate` call (codes given, masks as label maps, NumPy in and out) after
one warm-up call. `generate` runs the decoder eagerly (op by op); the "tf.function" column times
the same decoder traced once with `tf.function` (graph mode), to show what the eager dispatch
costs; memory is read before that second measurement.
"""

from __future__ import annotations

import argparse
import json

import keras

from benchmarks import common
from smis_layers.metrics.flops import generator_flops

DEFAULT_MODELS = (*common.SHAPES64, common.DEEPFASHION_SMALL)
COLUMNS = [
    "model",
    "size",
    "batch",
    "policy",
    "latency ms",
    "images/s",
    "GFLOP/image",
    "GFLOP/s",
    "tf.function ms",
    "eager/tf.function",
    "RSS built MB",
    "peak RSS MB",
]


def measure(name: str, batch_size: int, policy: str, repeats: int) -> dict:
    """One configuration, in this process: times `generate` and a traced decoder."""
    import tensorflow as tf

    keras.backend.clear_session()
    with common.dtype_policy(policy):
        generator, _ = common.build_models(name)
        batch = common.make_batch(generator, batch_size)
        masks = batch["masks"]
        z = generator.sample_z(batch_size, seed=0)
        built = common.memory_mb()["current"]
        eager = common.median_seconds(lambda: generator.generate(masks, z=z), repeats, warmup=1)
        peak = common.memory_mb()["peak"]

        segmap = generator.segmap(masks)
        decode = tf.function(lambda codes: generator.decode(codes, segmap, training=False))
        graph = common.median_seconds(
            lambda: keras.ops.convert_to_numpy(decode(tf.constant(z))), repeats, warmup=1
        )
    return {
        "size": "x".join(str(d) for d in generator.image_size),
        "seconds": eager,
        "graph_seconds": graph,
        "flops": generator_flops(generator, "decoder"),
        "rss_built_mb": built,
        "peak_rss_mb": peak,
    }


def run(
    models,
    batch_sizes=(1, 16),
    policies=("float32",),
    repeats: int = 5,
    isolate: bool = True,
    timeout: float | None = None,
) -> common.Table:
    """The inference table: one row per model x batch size x policy."""
    table = common.Table("Inference: model.generate(masks, z=...)", COLUMNS)
    for name in models:
        for batch in batch_sizes:
            for policy in policies:
                config = {
                    "name": name,
                    "batch_size": batch,
                    "policy": policy,
                    "repeats": repeats,
                }
                if isolate:
                    result = common.run_isolated("benchmarks.inference", config, timeout)
                else:
                    result = measure(**config)
                print(f"  {json.dumps(config)} -> {json.dumps(result)}", flush=True)
                row = {"model": name, "batch": batch, "policy": policy}
                if "error" in result:
                    table.add(**row)
                    table.notes.append(f"{name} batch {batch} {policy}: {result['error']}")
                    continue
                seconds = result["seconds"]
                table.add(
                    **row,
                    size=result["size"],
                    **{
                        "latency ms": seconds * 1000,
                        "images/s": batch / seconds,
                        "GFLOP/image": result["flops"] / 1e9,
                        "GFLOP/s": result["flops"] * batch / seconds / 1e9,
                        "tf.function ms": result["graph_seconds"] * 1000,
                        "eager/tf.function": seconds / result["graph_seconds"],
                        "RSS built MB": result["rss_built_mb"],
                        "peak RSS MB": result["peak_rss_mb"],
                    },
                )
    if not isolate:
        table.notes.append(
            "Measured in one process (not isolated): the RSS columns are that process's, "
            "not each configuration's."
        )
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options of this part."""
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--policy", nargs="+", default=["float32"], choices=common.POLICIES)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls (median)")
    common.add_isolate_argument(parser, ", for its own peak RSS")
    parser.add_argument("--config-timeout", type=float, default=600)


def run_from_args(args: argparse.Namespace) -> common.Table:
    """Runs this part from parsed arguments (`--tiny`: tiny models, batch 1 and 2)."""
    tiny = getattr(args, "tiny", False)
    models = args.models or (common.TINY if tiny else DEFAULT_MODELS)
    batch_sizes = [1, 2] if tiny and args.batch_sizes == [1, 16] else args.batch_sizes
    table = run(
        models,
        batch_sizes,
        args.policy,
        repeats=2 if tiny else args.repeats,
        isolate=common.isolation_wanted(args.isolate, tiny),
        timeout=args.config_timeout,
    )
    table.print()
    return table


def main(argv=None) -> int:
    """`python -m benchmarks.inference [options]`; returns the exit status."""
    return common.part_main(
        argv, __doc__, "tiny models (tests)", add_arguments, measure, run_from_args
    )


if __name__ == "__main__":
    raise SystemExit(main())
