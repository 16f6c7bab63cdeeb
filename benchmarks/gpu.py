"""The suite at the official 256x256 DeepFashion configuration on one GPU, as one table.

Usage (what `benchmarks/gpu.sh` runs):

    bash benchmarks/gpu.sh                      # official GroupDNet, batch 16, 1, 4, 8, 2
    bash benchmarks/gpu.sh --batch-sizes 1 16   # fewer batch sizes
    bash benchmarks/gpu.sh --tiny               # tiny model on the CPU, seconds (tests)

Model: `GroupDNet.official("deepfashion")` (C=8, ngf 160, encoder ndf 256: 96.3M + 12.8M
parameters) with the official discriminator (2 scales, 4 layers, 64 filters).
Rows:

- `train`: the full `SMISTrainer` step (G step + D step) for every batch size x jit_compile x
  dtype policy (float32 -- TF32 matmuls on Ampere and later, TensorFlow's default -- and
  mixed_bfloat16): median ms/step of `--steps` steps after `--warmup`, images/s, achieved
  TFLOP/s (analytic, `benchmarks.flops`) and MFU against the peak measured in the same run by
  a large matmul and convolution in the policy's compute dtype.
- `generate`: `model.generate(masks, z=...)` (eager), at the smallest and largest batch size.
- `decode (tf.function)`: the same decoder traced with `tf.function`, same batch sizes;
  `decode (XLA)`: traced with `jit_compile=True`, largest batch size.

The models are built once per policy, with one trainer each, compiled again when jit_compile
changes; every new batch size retraces (and with XLA recompiles) the step. Order: the training
rows of the largest batch (16), the inference rows, then the training rows of batch 1, 4, 8, 2.
No row starts after `--budget-seconds` (default 300 s; a row already running finishes, so one
command stays under 8 minutes on an H100 with the start-up, the builds and an XLA compilation
of the largest step); the rows left are listed as skipped. A row that fails on the device (out
of memory: ResourceExhausted, or XLA's Internal error) reports the error in its `ms` cell and
the run goes on.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import time
import warnings

import keras

from benchmarks import common
from benchmarks.train_step import in_memory_dataset, time_fit
from smis_layers.metrics.flops import generator_flops, train_step_flops

COLUMNS = [
    "row",
    "batch",
    "jit",
    "policy",
    "ms",
    "images/s",
    "TFLOP/s",
    "peak TFLOP/s",
    "MFU",
]
BATCH_ORDER = (16, 1, 4, 8, 2)


def ordered(batch_sizes) -> list[int]:
    """`batch_sizes` in measurement order: those of BATCH_ORDER first, in its order."""
    first = [b for b in BATCH_ORDER if b in batch_sizes]
    return first + [b for b in batch_sizes if b not in first]


def run(
    model: str = common.DEEPFASHION,
    batch_sizes=BATCH_ORDER,
    jits=(False, True),
    policies=("float32", "mixed_bfloat16"),
    steps: int = 5,
    warmup: int = 2,
    budget_seconds: float = 300.0,
    tiny: bool = False,
) -> common.Table:
    """The GPU table (also runs on a CPU: `tiny` for the tests)."""
    import tensorflow as tf

    start = time.perf_counter()
    on_gpu = bool(tf.config.list_logical_devices("GPU"))
    table = common.Table(f"{model} on {'GPU' if on_gpu else 'CPU'}", COLUMNS)
    peaks = {
        policy: common.measure_peak_flops(common.compute_dtype(policy), tiny=tiny, large=on_gpu)[
            "peak"
        ]
        for policy in policies
    }
    keras.backend.clear_session()
    state = {}
    for policy in policies:
        with common.dtype_policy(policy):
            generator, discriminator = common.build_models(model)
        state[policy] = {"generator": generator, "discriminator": discriminator}

    def train_tasks(batch):
        for policy in policies:
            for jit in jits:
                if tiny and jit and policy != "float32" and not on_gpu:
                    continue  # XLA compiles a bfloat16 step for minutes on a CPU: not in a test
                row = {"row": "train", "batch": batch, "jit": jit, "policy": policy}
                yield (
                    row,
                    functools.partial(
                        train_row, state[policy], batch, jit, policy, steps, warmup, peaks[policy]
                    ),
                )

    def inference_tasks():
        largest, smallest = max(batch_sizes), min(batch_sizes)
        for row_name, batches in (
            ("generate", sorted({smallest, largest})),
            ("decode (tf.function)", sorted({smallest, largest})),
            ("decode (XLA)", [largest]),
        ):
            for policy in policies:
                if tiny and row_name == "decode (XLA)" and policy != "float32" and not on_gpu:
                    continue
                for batch in batches:
                    row = {"row": row_name, "batch": batch, "policy": policy}
                    generator = state[policy]["generator"]
                    yield (
                        row,
                        functools.partial(inference_row, generator, batch, row_name, policy, peaks),
                    )

    # The largest batch's training rows first, then inference, then the other batch sizes.
    order = ordered(batch_sizes)
    tasks = itertools.chain(
        train_tasks(order[0]), inference_tasks(), *(train_tasks(b) for b in order[1:])
    )
    skipped = []
    for row, task in tasks:
        if time.perf_counter() - start > budget_seconds:
            skipped.append(row)
            continue
        table.add(**row, **task())
        print(f"  {table.rows[-1]}", flush=True)
    table.notes.append(
        "Peak = the better of a large matmul and a large 3x3 convolution per compute dtype, "
        "measured at the start: "
        + ", ".join(f"{p} {rate / 1e12:.1f} TFLOP/s" for p, rate in peaks.items())
        + f". Total time {time.perf_counter() - start:.0f} s."
    )
    if skipped:
        table.notes.append(
            f"Skipped after the {budget_seconds:.0f} s budget: "
            + "; ".join(
                f"{r['row']} batch {r['batch']} {r['policy']}"
                + (f" jit={r['jit']}" if "jit" in r else "")
                for r in skipped
            )
        )
    return table


def train_row(models: dict, batch: int, jit: bool, policy: str, steps, warmup, peak) -> dict:
    """One training-step row (or its error) for a built (generator, discriminator) pair."""
    import tensorflow as tf

    generator, discriminator = models["generator"], models["discriminator"]
    try:
        with common.dtype_policy(policy):
            # One trainer per policy (a discriminator is built by one trainer only), compiled
            # again when jit_compile changes.
            if models.get("trainer") is None:
                models["trainer"] = common.make_trainer(generator, discriminator, jit)
            elif models["jit"] != jit:
                models["trainer"].compile(jit_compile=jit)
            models["jit"] = jit
            dataset = in_memory_dataset(common.make_batch(generator, batch))
            seconds, _ = time_fit(models["trainer"], dataset, steps, warmup)
    except tf.errors.OpError as error:  # out of memory (ResourceExhausted, or XLA's Internal)
        return {"ms": f"{type(error).__name__}: {str(error).splitlines()[0][:80]}"}
    flops = train_step_flops(generator, discriminator, batch)["total"]
    return {
        "ms": seconds * 1000,
        "images/s": batch / seconds,
        "TFLOP/s": flops / seconds / 1e12,
        "peak TFLOP/s": peak / 1e12,
        "MFU": flops / seconds / peak,
    }


def inference_row(generator, batch: int, row_name: str, policy: str, peaks: dict) -> dict:
    """One inference row: `generate`, or the decoder under `tf.function` (with/without XLA)."""
    import tensorflow as tf

    data = common.make_batch(generator, batch)
    z = generator.sample_z(batch, seed=0)
    try:
        if row_name == "generate":
            seconds = common.median_seconds(
                lambda: generator.generate(data["masks"], z=z), repeats=5, warmup=1
            )
        else:
            segmap = generator.segmap(data["masks"])
            decode = tf.function(
                lambda codes: generator.decode(codes, segmap, training=False),
                jit_compile=row_name == "decode (XLA)",
            )
            codes = tf.constant(z)
            seconds = common.median_seconds(
                lambda: keras.ops.convert_to_numpy(decode(codes)), repeats=5, warmup=1
            )
    except tf.errors.OpError as error:
        return {"ms": f"{type(error).__name__}: {str(error).splitlines()[0][:80]}"}
    flops = generator_flops(generator, "decoder", batch)
    return {
        "ms": seconds * 1000,
        "images/s": batch / seconds,
        "TFLOP/s": flops / seconds / 1e12,
        "peak TFLOP/s": peaks[policy] / 1e12,
        "MFU": flops / seconds / peaks[policy],
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options of this part."""
    parser.add_argument("--gpu-model", default=None, help=f"default {common.DEEPFASHION}")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    parser.add_argument("--budget-seconds", type=float, default=300.0)
    parser.add_argument("--gpu-steps", type=int, default=5)


def run_from_args(args: argparse.Namespace) -> common.Table:
    """Runs this part from parsed arguments (`--tiny`: the tiny GroupDNet, batch 2, one step,
    and no XLA-compiled bfloat16 function on a CPU)."""
    tiny = getattr(args, "tiny", False)
    table = run(
        model=args.gpu_model or ("groupdnet_tiny" if tiny else common.DEEPFASHION),
        batch_sizes=tuple(args.batch_sizes or ((2,) if tiny else BATCH_ORDER)),
        steps=1 if tiny else args.gpu_steps,
        warmup=1 if tiny else 2,
        budget_seconds=args.budget_seconds,
        tiny=tiny,
    )
    table.print()
    return table


def main(argv=None) -> int:
    """`python -m benchmarks.gpu [options]`; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny model (tests, CPU)")
    add_arguments(parser)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        run_from_args(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
