"""Shared pieces of the benchmark suite: result tables, timing, the measured peak FLOP/s, the
benchmarked model configurations and their input batches."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

from smis_layers.utils.machine import cpu_description

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


# ---------------------------------------------------------------------------------- tables
@dataclasses.dataclass
class Table:
    """A result table: column names, one dict per row (raw values), free-text notes.

    `markdown()` renders it; tests read `rows` directly.
    """

    title: str
    columns: list[str]
    rows: list[dict] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def add(self, **values) -> dict:
        """Appends a row (keys must be columns); returns it."""
        unknown = set(values) - set(self.columns)
        if unknown:
            raise KeyError(f"Unknown columns {sorted(unknown)} for table {self.title!r}")
        self.rows.append(values)
        return values

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "---|" * len(self.columns))
        for row in self.rows:
            lines.append("| " + " | ".join(format_value(row.get(c)) for c in self.columns) + " |")
        if self.notes:
            lines.append("")
            lines.extend(self.notes)
        return "\n".join(lines)

    def print(self) -> None:
        print(self.markdown() + "\n", flush=True)


def format_value(value) -> str:
    """A table cell: floats with 3-4 significant digits, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        magnitude = abs(value)
        if magnitude >= 100:
            return f"{value:,.0f}"
        if magnitude >= 10:
            return f"{value:.1f}"
        if magnitude >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# ---------------------------------------------------------------------------------- timing
def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of `fn()` over `repeats` calls after `warmup` calls (which may compile).

    `fn` must block until its result is computed (e.g. convert it to NumPy).
    """
    return median_times(fn, repeats, warmup)[0]


def median_times(fn: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[float, float]:
    """(median wall seconds, median process CPU seconds) of `fn()`, as `median_seconds`.

    The CPU time (all threads of this process) does not grow when other processes share the
    cores, so FLOPs per CPU-second compare runs made under different loads; it also counts the
    thread pools' spinning, so it understates the efficiency of an otherwise idle machine.
    """
    wall, cpu = timed_calls(fn, repeats, warmup)
    return statistics.median(wall), statistics.median(cpu)


def timed_calls(
    fn: Callable[[], object], repeats: int, warmup: int = 1
) -> tuple[list[float], list[float]]:
    """(wall seconds, process CPU seconds) of each of `repeats` calls of `fn()` after `warmup`
    untimed calls."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(max(1, repeats)):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def machine_description() -> str:
    """CPU model, logical CPU count, load average, GPUs and versions, in one line."""
    model = cpu_description()
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{model}, {os.cpu_count()} logical CPUs, load average {load:.2f} at start"
        + (f", GPUs: {', '.join(gpus)}" if gpus else "")
        + f"; TensorFlow {tf.__version__}, Keras {keras.__version__}"
    )


# ---------------------------------------------------------------------------------- peak
def measure_peak_flops(
    dtype: str = "float32", tiny: bool = False, repeats: int = 5, large: bool = False
) -> dict:
    """FLOP/s of a large dense matmul and a large 3x3 convolution, measured now.

    The peak that a training step's achieved FLOP/s is compared with ("MFU"): the best this
    machine delivers on the two kernels that dominate the step, in the same run (so under the
    same load). Returns {"matmul", "conv", "peak"} in FLOP per wall second and "peak_cpu" in
    FLOP per process CPU second (see `median_times`), each peak the better of the two kernels.

    Args:
        dtype: "float32", "bfloat16" or "float16" (the compute dtype of the policy).
        tiny: small shapes (tests).
        repeats: timed calls (median).
        large: GPU-sized shapes (8192^3 matmul, (32, 64, 64, 512) convolution).
    """
    import tensorflow as tf

    if tiny:
        n, (batch, size, channels) = 256, (1, 8, 32)
    elif large:
        n, (batch, size, channels) = 8192, (32, 64, 512)
    else:
        n, (batch, size, channels) = 2048, (8, 64, 256)
    rng = np.random.default_rng(0)
    a = tf.cast(tf.constant(rng.normal(size=(n, n)).astype("float32")), dtype)
    x = tf.cast(
        tf.constant(rng.normal(size=(batch, size, size, channels)).astype("float32")), dtype
    )
    k = tf.cast(tf.constant(rng.normal(size=(3, 3, channels, channels)).astype("float32")), dtype)
    matmul = tf.function(lambda: tf.reduce_sum(tf.cast(tf.linalg.matmul(a, a)[:1, :1], "float32")))
    conv = tf.function(
        lambda: tf.reduce_sum(tf.cast(tf.nn.conv2d(x, k, 1, "SAME")[:1, :1, :1, :1], "float32"))
    )
    matmul_flops = 2 * n**3
    conv_flops = 2 * batch * size * size * 9 * channels * channels
    matmul_wall, matmul_cpu = median_times(lambda: matmul().numpy(), repeats, warmup=2)
    conv_wall, conv_cpu = median_times(lambda: conv().numpy(), repeats, warmup=2)
    return {
        "matmul": matmul_flops / matmul_wall,
        "conv": conv_flops / conv_wall,
        "peak": max(matmul_flops / matmul_wall, conv_flops / conv_wall),
        "peak_cpu": max(matmul_flops / matmul_cpu, conv_flops / conv_cpu),
    }


def compute_dtype(policy: str) -> str:
    """The compute dtype of a Keras dtype policy name."""
    return keras.mixed_precision.DTypePolicy(policy).compute_dtype


@contextlib.contextmanager
def dtype_policy(policy: str) -> Iterator[None]:
    """Sets the global Keras dtype policy (models built inside use it), restores it after."""
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


# ---------------------------------------------------------------------------------- models
#: Benchmarked configurations: the *_shapes64 architectures of the zoo, a reduced-width
#: 256x256 DeepFashion GroupDNet for CPUs, the official DeepFashion GroupDNet (GPU), and tiny
#: models for the tests.
SHAPES64 = (
    "groupdnet_shapes64",
    "groupnet_shapes64",
    "mulnet_shapes64",
    "groupenc_shapes64",
    "vspade_shapes64",
)
#: The reduced-width DeepFashion configuration (see `deepfashion_small`).
DEEPFASHION_SMALL = "groupdnet_deepfashion_small"
DEEPFASHION = "groupdnet_deepfashion"
TINY = ("groupdnet_tiny", "mulnet_tiny")


def deepfashion_small_config(ngf: int = 16, ndf: int = 32, hidden: int = 32) -> dict:
    """`GroupDNet.official("deepfashion")` overrides of the reduced-width 256x256 configuration.

    The official DeepFashion network exactly (C=8, 256x256, crop_resize split, 6-layer grouped
    encoder, 7 CGBlocks with groups 8, 8, 4, 4, 2, 2, 1, 'more' upsampling, widths
    16, 16, 16, 8, 4, 2, 1 x ngf, spectral norm, batch-normalized CGNorm), with every width
    divided: ngf 160 -> 16, encoder ndf 256 -> 32, CGNorm hidden width 128 -> 32.
    """
    from smis_layers.layers.group_decreasing_schedule import GroupDecreasingSchedule

    schedule = GroupDecreasingSchedule.official("deepfashion", ngf=ngf).get_config()
    for block in schedule["blocks"]:
        block["norm_hidden_channels"] = hidden
    return {"schedule": schedule, "encoder_channels": ndf}


def build_models(name: str, seed: int = 0):
    """(generator, discriminator) of a benchmarked configuration, built under the current
    dtype policy.

    A small-architecture spec (`FAMILY:key=value,...`, `build_architecture`) is benchmarked
    like the *_shapes64 models, e.g. `groupdnet_shapes64`'s with an option switched on.

    Discriminators: 2 scales, 4 layers, 32 filters for the *_shapes64 models and specs (what
    `smis train` uses), 16 filters for the reduced DeepFashion model, the official 64 for the
    official model, 2 layers of 8 filters for the tiny models.
    """
    from smis_layers.layers.group_decreasing_schedule import GroupDecreasingSchedule
    from smis_layers.models import GroupDNet, MulNet, MultiScaleDiscriminator, build_architecture

    keras.utils.set_random_seed(seed)
    if name in SHAPES64 or ":" in name:
        return build_architecture(name, seed=seed), MultiScaleDiscriminator(base_filters=32)
    if name == DEEPFASHION_SMALL:
        generator = GroupDNet.official("deepfashion", seed=seed, **deepfashion_small_config())
        return generator, MultiScaleDiscriminator(base_filters=16)
    if name == DEEPFASHION:
        return GroupDNet.official("deepfashion", seed=seed), MultiScaleDiscriminator()
    if name in TINY:
        model_class, rule = {
            "groupdnet_tiny": (GroupDNet, GroupDecreasingSchedule.decreasing),
            "mulnet_tiny": (MulNet, GroupDecreasingSchedule.constant),
        }[name]
        schedule = rule(4, 4, 16, norm_hidden_channels=8)
        generator = model_class(
            num_classes=4, image_size=16, schedule=schedule, encoder_channels=8, seed=seed
        )
        return generator, MultiScaleDiscriminator(num_layers=2, base_filters=8)
    raise ValueError(
        f"Unknown benchmark configuration {name!r}; known: "
        f"{[*SHAPES64, DEEPFASHION_SMALL, DEEPFASHION, *TINY]}"
    )


def make_trainer(generator, discriminator, jit: bool):
    """A compiled `SMISTrainer` (default losses and TTUR optimizers, no perceptual loss)."""
    from smis_layers.training import SMISTrainer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no feature extractor": intended here
        trainer = SMISTrainer(generator, discriminator)
    trainer.compile(jit_compile=jit)
    return trainer


def blocky_labels(
    rng: np.random.Generator, batch: int, size: Sequence[int], classes: int, block: int = 8
) -> np.ndarray:
    """Random label maps of `block` x `block` squares: every class present at any size."""
    height, width = size
    labels = rng.integers(0, classes, (batch, -(-height // block), -(-width // block)))
    return labels.repeat(block, 1).repeat(block, 2)[:, :height, :width].astype("int32")


def make_batch(generator, batch_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A batch {"images", "masks"} for `generator`: the synthetic benchmark's scenes where it
    supports the model's classes and size, random blocky label maps and noise images else."""
    from smis_layers.data.synthetic import SHAPE_FAMILIES, SIZES, SyntheticShapes

    height, width = generator.image_size
    classes = generator.num_classes
    if height == width and height in SIZES and 2 <= classes <= len(SHAPE_FAMILIES) + 1:
        batch = SyntheticShapes(image_size=height, num_classes=classes, seed=seed).batch(
            np.arange(batch_size)
        )
        return {"images": batch["images"], "masks": batch["masks"].astype("int32")}
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (batch_size, height, width, 3)).astype("float32")
    return {"images": images, "masks": blocky_labels(rng, batch_size, (height, width), classes)}


# ---------------------------------------------------------------------------------- isolation
RESULT_PREFIX = "BENCHMARK-RESULT "


def add_isolate_argument(parser, purpose: str = "") -> None:
    """`--isolate auto|yes|no`: one fresh process per configuration; auto = yes unless
    `--tiny` (see `isolation_wanted`)."""
    parser.add_argument(
        "--isolate",
        choices=["auto", "yes", "no"],
        default="auto",
        help=f"one fresh process per configuration{purpose} (auto: yes unless --tiny)",
    )


def isolation_wanted(choice: str, tiny: bool) -> bool:
    """Whether `--isolate CHOICE` runs each configuration in its own process."""
    return choice == "yes" or (choice == "auto" and not tiny)


def run_isolated(module: str, payload: dict, timeout: float | None = None) -> dict:
    """Runs `python -m <module> --worker '<payload as JSON>'` in a fresh process.

    The worker prints one line `BENCHMARK-RESULT <JSON>`; this returns that JSON, or
    {"error": "..."} when the worker fails or runs past `timeout` seconds. A fresh process per
    configuration gives each its own peak memory (ru_maxrss) and an unshared TensorFlow state,
    and lets a configuration that compiles for too long be abandoned.
    """
    import json
    import subprocess
    import sys

    command = [sys.executable, "-m", module, "--worker", json.dumps(payload)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [root, *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return {"error": f"exit code {done.returncode}: " + " / ".join(tail)}


def emit_result(result: dict) -> None:
    """What a `--worker` process prints for `run_isolated`."""
    import json

    print(RESULT_PREFIX + json.dumps(result), flush=True)


def memory_mb() -> dict[str, float]:
    """This process's current and peak resident memory in MB (Linux /proc; else ru_maxrss)."""
    values = {}
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    if "VmHWM" not in values:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
        values = {"VmRSS": float("nan"), "VmHWM": peak}
    return {"current": values["VmRSS"], "peak": values["VmHWM"]}


def part_main(argv, doc: str, tiny_help: str, add_arguments, measure, run_from_args) -> int:
    """The `main` of a benchmark part that measures each configuration in a worker process:
    `--worker JSON` measures one configuration and emits its result; otherwise the part runs
    its table (`run_from_args`). Returns the exit status."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help=tiny_help)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.worker:
        emit_result(measure(**json.loads(args.worker)))
        return 0
    run_from_args(args)
    return 0
