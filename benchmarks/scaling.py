"""How the cost of GroupDNet and MulNet grows with the number of classes C and the resolution.

Usage:

    python -m benchmarks scaling                         # table + docs/figures/scaling.png
    python -m benchmarks scaling --plot none             # table only
    python -m benchmarks scaling --tiny                  # seconds (tests)

Classes: C = 4, 8, 16, 35 at 64x64 and **equal per-class capacity**: every width is C times a
per-class width (decoder ngf = 2C, i.e. 32, 16, 8, 4, 2 channels per class from the first
block to the last; CGNorm hidden width 4C; encoder ndf 2C; 8 latent channels per class), so
MulNet is exactly C copies of one fixed per-class generator and GroupDNet has the same channels
per layer with its groups decreasing C, C, C/2, C/2, 1 (`GroupDecreasingSchedule.decreasing`;
at C=35 the halved blocks get 14 groups, whose CGNorm mask convolutions use gcd(14, 35) = 7
groups because the 35 mask channels must split evenly).
Resolution: 64, 128, 256 at C=8 with the C=8 widths above (one more block per doubling).

Measured: forward + backward of the generator's training pass (encoder, reparameterization,
decoder; loss = mean of the squared outputs; gradients for every generator weight) in a
`tf.function` (no XLA, the CPU default), median over `--steps` after one warm-up, per image,
in wall time and in process CPU time (see `common.median_times`). Also the parameters and the
analytic FLOPs (3 x the training forward, `benchmarks.flops`), and the exponent k of a
power-law fit cost ~ C^k (or ~ pixels^k).
"""

from __future__ import annotations

import argparse
import math
import os

import keras
import numpy as np

from benchmarks import common
from smis_layers.metrics.flops import generator_flops, parameter_count

MODELS = ("GroupDNet", "MulNet")
CLASSES = (4, 8, 16, 35)
SIZES = (64, 128, 256)
TINY_CLASSES = (2, 4)
TINY_SIZES = (16, 32)
DEFAULT_PLOT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "figures", "scaling.png"
)
COLUMNS = [
    "sweep",
    "model",
    "C",
    "size",
    "groups",
    "params",
    "GFLOP/image (fwd+bwd)",
    "ms/image",
    "CPU ms/image",
    "GFLOP/CPU-s",
]


def scaling_model(model: str, num_classes: int, size: int, per_class_width: int = 2):
    """A GroupDNet or MulNet at equal per-class capacity (see the module docstring)."""
    from smis_layers.layers.group_decreasing_schedule import GroupDecreasingSchedule
    from smis_layers.models import GroupDNet, MulNet

    c = num_classes
    rule = (
        GroupDecreasingSchedule.decreasing
        if model == "GroupDNet"
        else (GroupDecreasingSchedule.constant)
    )
    schedule = rule(c, per_class_width * c, size, norm_hidden_channels=4 * c).get_config()
    for block in schedule["blocks"]:
        # CGNorm's mask convolution sees the C mask channels: its groups must divide C.
        block["norm_shared_groups"] = math.gcd(block["norm_shared_groups"], c)
    model_class = GroupDNet if model == "GroupDNet" else MulNet
    return model_class(
        num_classes=c,
        image_size=size,
        schedule=schedule,
        encoder_channels=per_class_width * c,
        seed=0,
    )


def time_forward_backward(generator, batch_size: int, steps: int) -> tuple[float, float]:
    """(median wall, median CPU) seconds of one forward+backward of the generator."""
    import tensorflow as tf

    batch = common.make_batch(generator, batch_size)
    data = {"images": tf.constant(batch["images"]), "masks": tf.constant(batch["masks"])}
    weights = generator.trainable_variables

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            out = generator(data, training=True)
            loss = sum(
                tf.reduce_mean(tf.square(tf.cast(out[k], "float32")))
                for k in ("images", "mu", "logvar")
            )
        grads = tape.gradient(loss, weights)
        return tf.add_n([tf.reduce_sum(g) for g in grads])

    return common.median_times(lambda: step().numpy(), steps, warmup=1)


def run(
    classes=CLASSES,
    sizes=SIZES,
    batch_size: int = 2,
    steps: int = 3,
    per_class_width: int = 2,
) -> common.Table:
    """The scaling table: the class sweep at the smallest size, the size sweep at C=8 (or the
    second class count of a tiny sweep)."""
    table = common.Table(
        "Scaling with classes and resolution (generator forward+backward)", COLUMNS
    )
    base_classes = 8 if 8 in classes else classes[-1]
    configs = [("classes", m, c, sizes[0]) for m in MODELS for c in classes]
    configs += [("resolution", m, base_classes, s) for m in MODELS for s in sizes]
    cache = {}
    for sweep, model, c, size in configs:
        key = (model, c, size)
        if key not in cache:
            keras.backend.clear_session()
            generator = scaling_model(model, c, size, per_class_width)
            wall, cpu = time_forward_backward(generator, batch_size, steps)
            cache[key] = {
                "groups": ",".join(str(g) for g in generator.schedule.groups),
                "params": parameter_count(generator),
                "flops": 3 * generator_flops(generator, "train"),
                "wall": wall / batch_size,
                "cpu": cpu / batch_size,
            }
            print(f"  {model} C={c} {size}x{size}: {cache[key]}", flush=True)
        r = cache[key]
        table.add(
            sweep=sweep,
            model=model,
            C=c,
            size=f"{size}x{size}",
            groups=r["groups"],
            params=r["params"],
            **{
                "GFLOP/image (fwd+bwd)": r["flops"] / 1e9,
                "ms/image": r["wall"] * 1000,
                "CPU ms/image": r["cpu"] * 1000,
                "GFLOP/CPU-s": r["flops"] / r["cpu"] / 1e9,
            },
        )
    table.notes.append(
        f"Batch {batch_size}, median of {steps} steps after one warm-up. "
        + " ".join(exponent_notes(table))
    )
    return table


def fit_exponent(x, y) -> float:
    """k of the least-squares fit log y = k log x + b."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def exponent_notes(table: common.Table) -> list[str]:
    """Power-law exponents of params, FLOPs and CPU time in each sweep, per model."""
    notes = []
    for sweep, label in (("classes", "C"), ("resolution", "pixels")):
        for model in MODELS:
            rows = [r for r in table.rows if r["sweep"] == sweep and r["model"] == model]
            if len(rows) < 2:
                continue
            if sweep == "classes":
                x = [r["C"] for r in rows]
            else:
                x = [int(r["size"].split("x")[0]) ** 2 for r in rows]
            parts = [
                f"{name} ~ {label}^{fit_exponent(x, [r[column] for r in rows]):.2f}"
                for name, column in (
                    ("params", "params"),
                    ("FLOPs", "GFLOP/image (fwd+bwd)"),
                    ("CPU time", "CPU ms/image"),
                )
            ]
            notes.append(f"{model} ({sweep}): " + ", ".join(parts) + ".")
    return notes


def plot(table: common.Table, path: str) -> str | None:
    """Writes the scaling figure (PNG); returns its path, or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print('matplotlib is not installed: no figure (pip install -e ".[bench]")')
        return None
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for model, marker, color in zip(MODELS, "os", ("tab:blue", "tab:orange"), strict=True):
        rows = [r for r in table.rows if r["sweep"] == "classes" and r["model"] == model]
        c = [r["C"] for r in rows]
        style = {"marker": marker, "color": color}
        axes[0].plot(c, [r["CPU ms/image"] for r in rows], **style, label=f"{model} time")
        axes[0].plot(
            c,
            [r["GFLOP/image (fwd+bwd)"] * 1000 / rows[0]["GFLOP/CPU-s"] for r in rows],
            **style,
            linestyle=":",
            label=f"{model} FLOPs (scaled to its first time)",
        )
        axes[1].plot(c, [r["params"] for r in rows], **style, label=model)
        rows = [r for r in table.rows if r["sweep"] == "resolution" and r["model"] == model]
        sizes = [int(r["size"].split("x")[0]) for r in rows]
        axes[2].plot(sizes, [r["CPU ms/image"] for r in rows], **style, label=model)
    titles = (
        "fwd+bwd CPU ms / image vs classes",
        "generator parameters vs classes",
        "fwd+bwd CPU ms / image vs resolution",
    )
    for ax, title, xlabel in zip(axes, titles, ("C", "C", "image side"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options of this part."""
    parser.add_argument("--classes", type=int, nargs="+", default=None)
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--scaling-batch-size", type=int, default=2)
    parser.add_argument("--scaling-steps", type=int, default=3)
    parser.add_argument(
        "--plot", default=None, help=f"PNG path, or 'none' (default: {DEFAULT_PLOT})"
    )


def run_from_args(args: argparse.Namespace) -> common.Table:
    """Runs this part from parsed arguments (`--tiny`: C = 2, 4 and sizes 16, 32, batch 1,
    per-class width 1, no figure unless `--plot` names one)."""
    tiny = getattr(args, "tiny", False)
    table = run(
        classes=tuple(args.classes or (TINY_CLASSES if tiny else CLASSES)),
        sizes=tuple(args.sizes or (TINY_SIZES if tiny else SIZES)),
        batch_size=1 if tiny else args.scaling_batch_size,
        steps=1 if tiny else args.scaling_steps,
        per_class_width=1 if tiny else 2,
    )
    table.print()
    path = args.plot or (None if tiny else DEFAULT_PLOT)
    if path and path != "none":
        written = plot(table, path)
        if written:
            print(f"figure: {written}")
    return table


def main(argv=None) -> int:
    """`python -m benchmarks.scaling [options]`; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sweep (tests)")
    add_arguments(parser)
    run_from_args(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
