"""Side by side on the CPU: our GroupDNet training forward + backward against the official
architecture's PyTorch networks at equal configuration, in alternated fresh processes.

Usage:

    python -m benchmarks vs-official                  # the issue-27 table (~8 min on 2 idle cores)
    python -m benchmarks vs-official --torch-bf16     # + official bf16 autocast (~10 min)
    python -m benchmarks vs-official --official-code DIR   # the official code, via an adapter
    python -m benchmarks vs-official --tiny           # seconds (tests)

Configuration: the official DeepFashion GroupDNet (C=8, 256x256, 7 CGBlocks with groups
8, 8, 4, 4, 2, 2, 1, 'more' upsampling, spectral norm, batch-normalized CGNorm with hidden width
128, the 6-layer grouped encoder of width 256) at generator width `--ngf` (default 32: 6,679,523
generator + 12,835,712 encoder = 19,515,235 parameters), batch `--batch-size` (default 2).
Ours is `GroupDNet.official("deepfashion", **common.deepfashion_small_config(ngf, ndf, hidden))`;
the official side is tests/models/official_reference.py's `official_generator` and
`EncoderRef` (our own reimplementation of the official architecture; see `--official-code` for
the official code itself). Both parameter counts are printed, and the run stops with an error
if they differ.

One step, the same on both sides: the encoder-input split (the official per-class crop and
resize of the masked image), the encoder, reparameterization, the generator, and the gradient
of `mean(generated image) + 0.05 * KL` with respect to every trainable weight (no optimizer
update, no discriminator). Ours runs as one `tf.function` (TensorFlow graph, no XLA: what
`SMISTrainer` compiles on the CPU, where `jit_compile="auto"` means XLA on GPUs only), in
float32 and in mixed_bfloat16; the official side runs eagerly in float32 (as the official
code does), and with `--torch-bf16` also under bfloat16 autocast. Both read the same batch
(blocky random label maps, uniform noise images).

Every (side, dtype) runs `--rounds` times, each time in a fresh process, the sides alternated
within a round (ours, official, ours, official, ...); a process times `--steps` steps after
`--warmup` untimed ones (tracing, first-touch allocation). The table gives the median of all
timed steps of a row, the ratio official float32 / ours, and the MFU: the analytic FLOPs of the
step (3 x the forward FLOPs of encoder + generator, `smis_layers.metrics.flops`) per second over
the peak of the dtype measured by `common.measure_peak_flops` before and after the runs.

`--official-code DIR`: DIR is put first on the official worker's `sys.path`, and the networks
come from `--official-builder MODULE:FUNCTION` (default `smis_official_builder:build`), a small
adapter the user writes next to the official code (not part of this repository):
`build(ngf, encoder_ndf, hidden, size, num_classes) -> (encoder, generator)`, PyTorch modules
called as `encoder(x) -> (mu, logvar)` on the (B, 3C, H, W) split and
`generator(one_hot, z) -> image`.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import statistics
import sys
import time

import numpy as np

from benchmarks import common

NUM_CLASSES = 8
KL_WEIGHT = 0.05
DEFAULT_BUILDER = "smis_official_builder:build"
COLUMNS = [
    "side",
    "dtype",
    "params",
    "s/step",
    "official f32 / this",
    "GFLOP/step",
    "GFLOP/s",
    "MFU",
    "steps timed",
]


@dataclasses.dataclass(frozen=True)
class Config:
    """The compared configuration: generator width, encoder width, CGNorm hidden width, image
    size and batch size."""

    ngf: int = 32
    encoder_ndf: int = 256
    hidden: int = 128
    size: int = 256
    batch_size: int = 2


#: The full configuration (the issue's) and the tiny one (tests).
FULL = Config()
TINY = Config(ngf=2, encoder_ndf=8, hidden=8, size=256, batch_size=1)


def make_inputs(size: int, batch_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(labels (B, H, W) int32, images (B, H, W, 3) float32 in [-1, 1]) shared by both sides."""
    rng = np.random.default_rng(seed)
    labels = common.blocky_labels(rng, batch_size, (size, size), NUM_CLASSES)
    images = rng.uniform(-1, 1, (batch_size, size, size, 3)).astype("float32")
    return labels, images


def timed_steps(step, steps: int, warmup: int) -> list[float]:
    """Wall seconds of `steps` calls of `step()` after `warmup` untimed calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(max(1, steps)):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


# ------------------------------------------------------------------------------------ ours
def ours(dtype: str, config: Config, steps: int, warmup: int) -> dict:
    """Our step in this process: {"times", "params", "flops"}."""
    import keras
    import tensorflow as tf

    from smis_layers.metrics.flops import generator_flops, parameter_count
    from smis_layers.models import GroupDNet

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError("vs-official times the TensorFlow backend (KERAS_BACKEND=tensorflow)")
    keras.backend.clear_session()
    with common.dtype_policy(dtype):
        widths = common.deepfashion_small_config(config.ngf, config.encoder_ndf, config.hidden)
        model = GroupDNet.official("deepfashion", seed=0, image_size=config.size, **widths)
        labels, images = make_inputs(config.size, config.batch_size)
        inputs = {"images": tf.constant(images), "masks": tf.constant(labels)}
        model(inputs, training=True)  # builds every weight
        weights = model.trainable_variables

        @tf.function(jit_compile=False)
        def step(inputs):
            with tf.GradientTape() as tape:
                out = model(inputs, training=True)
                mu, logvar = (tf.cast(out[k], "float32") for k in ("mu", "logvar"))
                kl = -0.5 * tf.reduce_sum(1 + logvar - tf.square(mu) - tf.exp(logvar))
                loss = tf.reduce_mean(tf.cast(out["images"], "float32")) + KL_WEIGHT * kl
            grads = tape.gradient(loss, weights)
            return loss, grads

        times = timed_steps(lambda: step(inputs)[0].numpy(), steps, warmup)
        flops = 3 * generator_flops(model, "train", config.batch_size)
    return {"times": times, "params": int(parameter_count(model)), "flops": int(flops)}


# -------------------------------------------------------------------------------- official
def official_networks(
    config: Config, official_code: str | None = None, builder: str = DEFAULT_BUILDER
):
    """(encoder, generator) of the official architecture: our reimplementation, or the
    user's adapter over the official code in `official_code` (see the module docstring)."""
    if official_code:
        sys.path.insert(0, official_code)
        module, _, function = builder.partition(":")
        build = getattr(importlib.import_module(module), function)
        widths = dataclasses.asdict(config)
        del widths["batch_size"]
        return build(**widths, num_classes=NUM_CLASSES)
    from tests.models.official_reference import EncoderRef, official_generator

    generator = official_generator("deepfashion", config.ngf, deepfashion_hidden=config.hidden)
    layers = 6 if config.size >= 256 else 5
    return EncoderRef(NUM_CLASSES, config.encoder_ndf, layers), generator


def official(
    dtype: str,
    config: Config,
    steps: int,
    warmup: int,
    official_code: str | None = None,
    builder: str = DEFAULT_BUILDER,
) -> dict:
    """The official-architecture PyTorch step in this process: {"times", "params"}."""
    import torch
    from torch.nn import functional as F

    from tests.models.official_reference import crop_resize_classes

    torch.manual_seed(0)
    encoder, generator = official_networks(config, official_code, builder)
    modules = (encoder, generator)
    for module in modules:
        module.train()  # batch-norm statistics and spectral-norm iterations, as in training
    params = sum(p.numel() for m in modules for p in m.parameters() if p.requires_grad)
    labels, images = make_inputs(config.size, config.batch_size)
    one_hot = F.one_hot(torch.from_numpy(labels).long(), NUM_CLASSES).permute(0, 3, 1, 2).float()
    images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()

    def step() -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
            mu, logvar = encoder(crop_resize_classes(one_hot, images))
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            fake = generator(one_hot, z)
            mu, logvar = mu.float(), logvar.float()
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = fake.float().mean() + KL_WEIGHT * kl
        for module in modules:
            module.zero_grad(set_to_none=True)
        loss.backward()
        return float(loss.detach())

    return {"times": timed_steps(step, steps, warmup), "params": int(params)}


# ------------------------------------------------------------------------------- workers
def measure(side: str, dtype: str, config: dict | None = None, **options) -> dict:
    """One worker's measurement (JSON in, JSON out): `side` "ours" or "official" with a
    `Config` as a dict and the options of `ours` / `official`, or "peak" for
    `measure_peak_flops(dtype, **options)`."""
    if side == "peak":
        return common.measure_peak_flops(dtype, **options)
    return {"ours": ours, "official": official}[side](dtype, Config(**config), **options)


def run_worker(payload: dict, isolate: bool, timeout: float | None) -> dict:
    """`measure(**payload)`, in a fresh process if `isolate`; raises on a worker's error."""
    if isolate:
        result = common.run_isolated("benchmarks.vs_official", payload, timeout)
    else:
        result = measure(**payload)
    if "error" in result:
        raise RuntimeError(f"{payload['side']} {payload['dtype']}: {result['error']}")
    return result


def rows_of(torch_bf16: bool) -> list[tuple[str, str]]:
    """(side, dtype) of the table's rows, in the order a round runs them: alternated."""
    rows = [("ours", "float32"), ("official", "float32"), ("ours", "mixed_bfloat16")]
    return [*rows, ("official", "bfloat16")] if torch_bf16 else rows


def check_parameter_counts(params: dict[tuple[str, str], int]) -> None:
    """Raises unless every row measured a network of the same parameter count."""
    if len(set(params.values())) > 1:
        raise RuntimeError(
            "Parameter counts differ, so the comparison is not at equal configuration: "
            + ", ".join(f"{side} {dtype}: {n:,}" for (side, dtype), n in params.items())
        )


def run(
    config: Config,
    rounds: int,
    steps: int,
    warmup: int,
    torch_bf16: bool = False,
    isolate: bool = True,
    timeout: float | None = None,
    official_code: str | None = None,
    builder: str = DEFAULT_BUILDER,
    tiny: bool = False,
) -> common.Table:
    """The side-by-side table (see the module docstring)."""
    rows = rows_of(torch_bf16)
    dtypes = sorted({common.compute_dtype(d) if s == "ours" else d for s, d in rows})
    peaks = {d: [] for d in dtypes}

    def measure_peaks() -> None:
        for dtype in dtypes:
            payload = {"side": "peak", "dtype": dtype, "tiny": tiny}  # measure_peak_flops
            peaks[dtype].append(run_worker(payload, isolate, timeout)["peak"])

    measure_peaks()
    times = {row: [] for row in rows}
    params, flops = {}, None
    for round_index in range(rounds):
        for side, dtype in rows:
            payload = {
                "side": side,
                "dtype": dtype,
                "config": dataclasses.asdict(config),
                "steps": steps,
                "warmup": warmup,
            }
            if side == "official":
                payload.update(official_code=official_code, builder=builder)
            result = run_worker(payload, isolate, timeout)
            times[side, dtype].extend(result["times"])
            params[side, dtype] = result["params"]
            flops = result.get("flops", flops)
            check_parameter_counts(params)
            seconds = statistics.median(result["times"])
            print(f"  round {round_index + 1}: {side} {dtype}: {seconds:.3f} s/step", flush=True)
    measure_peaks()
    title = (
        f"Official DeepFashion GroupDNet, ngf {config.ngf}, {config.size}x{config.size}, batch "
        f"{config.batch_size}: ours vs the official architecture (forward + backward)"
    )
    table = common.Table(title, COLUMNS)
    official_f32 = statistics.median(times["official", "float32"])
    for side, dtype in rows:
        seconds = statistics.median(times[side, dtype])
        peak = max(peaks[common.compute_dtype(dtype) if side == "ours" else dtype])
        table.add(
            **{
                "side": side,
                "dtype": dtype,
                "params": params[side, dtype],
                "s/step": seconds,
                "official f32 / this": official_f32 / seconds,
                "GFLOP/step": flops / 1e9,
                "GFLOP/s": flops / seconds / 1e9,
                "MFU": flops / seconds / peak,
                "steps timed": len(times[side, dtype]),
            }
        )
    source = (
        f"the official code in {official_code} via {builder}"
        if official_code
        else "tests/models/official_reference.py (our reimplementation of the official networks)"
    )
    table.notes.append(
        f"CPU: {common.cpu_description()}. Official side: {source}, eager PyTorch. Ours: one "
        "tf.function, no XLA (SMISTrainer's CPU default). "
        f"{rounds} rounds of fresh processes, sides alternated; median of "
        f"{steps} steps per process after {warmup} warm-up. FLOPs/step = 3 x forward FLOPs of "
        "encoder + generator. Peak per dtype (best of before/after): "
        + ", ".join(f"{d} {max(p) / 1e9:,.0f} GFLOP/s" for d, p in peaks.items())
        + "."
    )
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options of this part."""
    parser.add_argument("--ngf", type=int, default=FULL.ngf, help="generator width")
    parser.add_argument("--encoder-ndf", type=int, default=FULL.encoder_ndf)
    parser.add_argument("--hidden", type=int, default=FULL.hidden, help="CGNorm hidden")
    parser.add_argument("--size", type=int, default=FULL.size, help="image size")
    parser.add_argument("--batch-size", type=int, default=FULL.batch_size)
    parser.add_argument("--rounds", type=int, default=5, help="fresh processes per row")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per process")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument(
        "--torch-bf16", action="store_true", help="also the official side under bf16 autocast"
    )
    parser.add_argument(
        "--official-code", default=None, help="folder with the official code and an adapter"
    )
    parser.add_argument("--official-builder", default=DEFAULT_BUILDER, help="MODULE:FUNCTION")
    common.add_isolate_argument(parser)
    parser.add_argument(
        "--config-timeout", type=float, default=900, help="seconds per worker process"
    )


def run_from_args(args: argparse.Namespace) -> common.Table:
    """Runs this part from parsed arguments. `--tiny`: widths ngf 2, encoder 8, hidden 8 at
    256x256 (the official depth needs 256), batch 1, one round of one step after one warm-up."""
    tiny = getattr(args, "tiny", False)
    if tiny:
        config, rounds, steps, warmup = TINY, 1, 1, 1
    else:
        config = Config(args.ngf, args.encoder_ndf, args.hidden, args.size, args.batch_size)
        rounds, steps, warmup = args.rounds, args.steps, args.warmup
    table = run(
        config,
        rounds,
        steps,
        warmup,
        torch_bf16=args.torch_bf16,
        isolate=common.isolation_wanted(args.isolate, tiny),
        timeout=args.config_timeout,
        official_code=args.official_code,
        builder=args.official_builder,
        tiny=tiny,
    )
    table.print()
    return table


def main(argv=None) -> int:
    """`python -m benchmarks.vs_official [options]`; returns the exit status."""
    return common.part_main(
        argv, __doc__, "tiny widths, one step (tests)", add_arguments, measure, run_from_args
    )


if __name__ == "__main__":
    raise SystemExit(main())
