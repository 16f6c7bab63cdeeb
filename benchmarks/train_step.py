"""Images/s, achieved FLOP/s and MFU of the full G+D `SMISTrainer` training step.

Usage:

    python -m benchmarks train-step                      # the recorded grid (many minutes)
    python -m benchmarks.train_step --models groupdnet_shapes64 --jit false --policy float32
    python -m benchmarks train-step --tiny               # seconds (tests)

For every model x jit_compile x dtype policy it builds the generator and its discriminator
under the policy, compiles `SMISTrainer` (default losses, TTUR Adam, no perceptual term), and
times `--steps` steps of `fit` on one in-memory batch repeated (median of the per-step times,
after `--warmup` steps that include tracing and compilation), each configuration in a fresh
process (`--isolate`). FLOPs per step are the analytic count of
`benchmarks.flops.train_step_flops` (4 F_G + 9 F_D).

"MFU" divides the achieved FLOP/s by the peak FLOP/s of the policy's compute dtype measured in
the same run by a large matmul and a large convolution (`common.measure_peak_flops`, the better
of a measurement before and one after the grid). "MFU (CPU time)" makes the same comparison
per process CPU-second instead of per wall second, which stays meaningful when other
processes share the cores (see `common.median_times`).

Models: the five *_shapes64 architectures (batch 16) and `groupdnet_deepfashion_small`, the
official 256x256 DeepFashion GroupDNet with every width divided (ngf 160 -> 16, encoder ndf
256 -> 32, CGNorm hidden 128 -> 32; batch 4), see `common.deepfashion_small_config`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import keras
import tensorflow as tf

from benchmarks import common
from smis_layers.metrics.flops import train_step_flops

DEFAULT_MODELS = (*common.SHAPES64, common.DEEPFASHION_SMALL)
DEFAULT_BATCH = {common.DEEPFASHION_SMALL: 4, common.DEEPFASHION: 16}
COLUMNS = [
    "model",
    "size",
    "batch",
    "jit",
    "policy",
    "s/step",
    "images/s",
    "GFLOP/step",
    "GFLOP/s",
    "peak GFLOP/s",
    "MFU",
    "CPU s/step",
    "MFU (CPU time)",
]


class StepTimer(keras.callbacks.Callback):
    """Records the wall time and the process CPU time of every training batch."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []
        self.cpu_times: list[float] = []
        self._start = self._start_cpu = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self._start, self._start_cpu = time.perf_counter(), time.process_time()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self._start)
        self.cpu_times.append(time.process_time() - self._start_cpu)


def in_memory_dataset(batch: dict) -> tf.data.Dataset:
    """One batch, repeated forever: no input pipeline work per step."""
    return tf.data.Dataset.from_tensors(batch).repeat()


def time_fit(trainer, dataset, steps: int, warmup: int) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds) per step of `trainer.fit` on `dataset`, after
    `warmup` untimed steps."""
    timer = StepTimer()
    trainer.fit(
        dataset,
        epochs=1,
        steps_per_epoch=warmup + steps,
        verbose=0,
        callbacks=[timer],
        shuffle=False,
    )
    return statistics.median(timer.times[warmup:]), statistics.median(timer.cpu_times[warmup:])


def measure(name: str, batch_size: int, jit: bool, policy: str, steps: int, warmup: int) -> dict:
    """{"seconds", "cpu_seconds", "flops", "size"} of one configuration, in this process."""
    keras.backend.clear_session()
    with common.dtype_policy(policy):
        generator, discriminator = common.build_models(name)
        flops = train_step_flops(generator, discriminator, batch_size)["total"]
        trainer = common.make_trainer(generator, discriminator, jit)
        dataset = in_memory_dataset(common.make_batch(generator, batch_size))
        seconds, cpu_seconds = time_fit(trainer, dataset, steps, warmup)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "flops": flops,
        "size": "x".join(str(d) for d in generator.image_size),
    }


def measure_config(config: dict, isolate: bool, timeout: float | None) -> dict:
    """`measure(**config)`, in a fresh process if `isolate` ({"error"} on failure/timeout)."""
    if isolate:
        return common.run_isolated("benchmarks.train_step", config, timeout)
    return measure(**config)


def peak_rates(policies, tiny: bool) -> dict[str, dict]:
    """`measure_peak_flops` per compute dtype of `policies`, measured now."""
    dtypes = sorted({common.compute_dtype(p) for p in policies})
    return {dtype: common.measure_peak_flops(dtype, tiny=tiny) for dtype in dtypes}


def best_peaks(*measurements: dict[str, dict]) -> dict[str, dict]:
    """Per dtype, the better wall and CPU-time peaks of several `peak_rates` results."""
    dtypes = measurements[0]
    return {
        dtype: {key: max(m[dtype][key] for m in measurements) for key in ("peak", "peak_cpu")}
        for dtype in dtypes
    }


def add_row(table: common.Table, config: dict, result: dict, peaks: dict) -> None:
    """Appends one configuration's row (its error as a note if it failed)."""
    policy, batch = config["policy"], config["batch_size"]
    row = {"model": config["name"], "batch": batch, "jit": config["jit"], "policy": policy}
    if "error" in result:
        table.add(**row)
        table.notes.append(f"{config['name']} jit={config['jit']} {policy}: {result['error']}")
        return
    seconds, cpu_seconds, flops = result["seconds"], result["cpu_seconds"], result["flops"]
    peak = peaks[common.compute_dtype(policy)]
    table.add(
        **row,
        size=result["size"],
        **{
            "s/step": seconds,
            "images/s": batch / seconds,
            "GFLOP/step": flops / 1e9,
            "GFLOP/s": flops / seconds / 1e9,
            "peak GFLOP/s": peak["peak"] / 1e9,
            "MFU": flops / seconds / peak["peak"],
            "CPU s/step": cpu_seconds,
            "MFU (CPU time)": flops / cpu_seconds / peak["peak_cpu"],
        },
    )


def run(
    models,
    jits,
    policies,
    batch_size: int | None = None,
    steps: int = 5,
    warmup: int = 2,
    tiny: bool = False,
    isolate: bool = False,
    timeout: float | None = None,
) -> common.Table:
    """The train-step table: one row per model x jit x policy.

    Args:
        models: configuration names (`common.build_models`).
        jits: `jit_compile` values.
        policies: Keras dtype policy names.
        batch_size: images per step (default: 16, 4 for the 256x256 models, 2 with `tiny`).
        steps / warmup: timed and untimed steps.
        tiny: small peak measurement (tests).
        isolate: time every configuration in a fresh process, abandoned after `timeout`
            seconds (its row then stays empty and a note gives the error).
    """
    table = common.Table("Training step (G step + D step)", COLUMNS)
    before = peak_rates(policies, tiny)
    measured = []
    for name in models:
        batch = batch_size or DEFAULT_BATCH.get(name, 2 if tiny else 16)
        for jit in jits:
            for policy in policies:
                config = {
                    "name": name,
                    "batch_size": batch,
                    "jit": jit,
                    "policy": policy,
                    "steps": steps,
                    "warmup": warmup,
                }
                result = measure_config(config, isolate, timeout)
                measured.append((config, result))
                print(f"  {json.dumps(config)} -> {json.dumps(result)}", flush=True)
    peaks = best_peaks(before, peak_rates(policies, tiny))
    for config, result in measured:
        add_row(table, config, result, peaks)
    table.notes.append(
        "Peak = the better of a 2048^3 matmul and a (8,64,64,256) 3x3 256->256 convolution in "
        "the policy's compute dtype, measured before and after the grid: "
        + ", ".join(
            f"{dtype} {p['peak'] / 1e9:,.0f} GFLOP/s ({p['peak_cpu'] / 1e9:,.0f} per CPU-s)"
            for dtype, p in peaks.items()
        )
        + ". FLOPs/step = 4 x generator forward + 9 x discriminator forward "
        "(benchmarks/flops.py)."
    )
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options of this part."""
    parser.add_argument("--models", nargs="+", default=None, help="configurations to time")
    parser.add_argument("--batch-size", type=int, default=None, help="default: per model")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument("--jit", nargs="+", default=None, choices=["false", "true"])
    parser.add_argument("--policy", nargs="+", default=None, choices=common.POLICIES)
    common.add_isolate_argument(parser)
    parser.add_argument(
        "--config-timeout", type=float, default=900, help="seconds per isolated configuration"
    )


def run_from_args(args: argparse.Namespace) -> common.Table:
    """Runs this part from parsed arguments.

    `--tiny`: the tiny models, one step, jit off and on in float32 (an XLA compilation of a
    mixed_bfloat16 step takes minutes on the CPU, see docs/benchmarks.md)."""
    tiny = getattr(args, "tiny", False)
    models = args.models or (common.TINY if tiny else DEFAULT_MODELS)
    jits = args.jit or ["false", "true"]
    policies = args.policy or (["float32"] if tiny else ["float32", "mixed_bfloat16"])
    steps, warmup = (1, 1) if tiny else (args.steps, args.warmup)
    table = run(
        models,
        [j == "true" for j in jits],
        policies,
        batch_size=args.batch_size,
        steps=steps,
        warmup=warmup,
        tiny=tiny,
        isolate=common.isolation_wanted(args.isolate, tiny),
        timeout=args.config_timeout,
    )
    table.print()
    return table


def main(argv=None) -> int:
    """`python -m benchmarks.train_step [options]`; returns the exit status."""
    return common.part_main(
        argv, __doc__, "tiny models, one step (tests)", add_arguments, measure, run_from_args
    )


if __name__ == "__main__":
    raise SystemExit(main())
