"""Where the training step's time goes: a TensorFlow-profiler breakdown by layer and op kind.

Usage:

    python -m benchmarks profile                          # groupdnet_shapes64, float32, no XLA
    python -m benchmarks profile --profile-model groupdnet_deepfashion_small --profile-batch-size 4
    python -m benchmarks profile --tiny                   # seconds (tests)

Runs `--profile-steps` `SMISTrainer` steps under `tf.profiler.experimental` (after two
warm-up steps) and reads the trace's per-op self times (the profiler's "framework_op_stats",
converted by the private `_pywrap_profiler_plugin` the TensorBoard profile plugin uses). Rows:
which part of the networks an op belongs to (from its name: discriminator, encoder, CGNorm's
parameter-free normalization, the rest of CGNorm -- its three convolutions, the mask resize and
the modulation --, the decoder's block convolutions and activations, the optimizer and the
rest); columns: convolution forward, convolution input gradient, convolution filter gradient,
other ops. Times are per step and summed over TensorFlow's inter-op threads (so they add up to
about the number of busy threads x the step's wall time).
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import re
import tempfile

import keras

from benchmarks import common
from benchmarks.train_step import in_memory_dataset

KINDS = ("conv forward", "conv input grad", "conv filter grad", "other ops")
PARTS = (
    "discriminator",
    "encoder",
    "CGNorm param-free norm",
    "CGNorm convs + modulation",
    "decoder block convs + activations",
    "optimizer + metrics",
    "other",
)
COLUMNS = ["part", *(f"{k} ms" for k in KINDS), "total ms", "share"]


def op_kind(op_type: str) -> str:
    """The column of an op type."""
    if "Conv" in op_type:
        if "BackpropInput" in op_type:
            return "conv input grad"
        if "BackpropFilter" in op_type:
            return "conv filter grad"
        return "conv forward"
    return "other ops"


def op_part(name: str) -> str:
    """The row of an op, from its name scope."""
    if "discriminator" in name:
        return "discriminator"
    if "/encoder" in name or "class_mask_split" in name:
        return "encoder"
    if "param_free_norm" in name:
        return "CGNorm param-free norm"
    if re.search(r"/norm_[0-9s]", name):
        return "CGNorm convs + modulation"
    if re.search(r"/(head_|G_middle_|up_\d|fc|conv_img)", name):
        return "decoder block convs + activations"
    if re.search(r"adam|tmp_var_accum|AddN|mean/|Assign", name, flags=re.IGNORECASE):
        return "optimizer + metrics"
    return "other"


def op_stats(logdir: str) -> list[dict]:
    """Per-op rows (operation, type, total_self_time in us) of the profile in `logdir`."""
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

    paths = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))
    if not paths:
        raise RuntimeError(f"No profile (*.xplane.pb) written under {logdir}")
    data, ok = plugin.xspace_to_tools_data([paths[-1]], "framework_op_stats", {})
    if not ok:
        raise RuntimeError("The profiler could not convert the trace to framework_op_stats")
    table = json.loads(data)[0]
    columns = [c["id"] for c in table["cols"]]
    rows = []
    for row in table["rows"]:
        values = dict(zip(columns, (cell.get("v") for cell in row["c"]), strict=True))
        if values["type"] != "IDLE":
            rows.append(values)
    return rows


def profile_steps(name: str, batch_size: int, steps: int, policy: str = "float32") -> list[dict]:
    """Profiles `steps` training steps of configuration `name` (no XLA); returns `op_stats`."""
    import tensorflow as tf

    keras.backend.clear_session()
    with common.dtype_policy(policy):
        generator, discriminator = common.build_models(name)
        trainer = common.make_trainer(generator, discriminator, jit=False)
        iterator = iter(in_memory_dataset(common.make_batch(generator, batch_size)))
        trainer.make_train_function()
        step = trainer.train_function
        for _ in range(2):
            keras.ops.convert_to_numpy(step(iterator)["g_loss"])
        with tempfile.TemporaryDirectory(prefix="smis-profile-") as logdir:
            tf.profiler.experimental.start(logdir)
            try:
                for _ in range(steps):
                    keras.ops.convert_to_numpy(step(iterator)["g_loss"])
            finally:
                tf.profiler.experimental.stop()
            return op_stats(logdir)


def run(
    name: str = "groupdnet_shapes64",
    batch_size: int = 16,
    steps: int = 3,
    top: int = 12,
    policy: str = "float32",
) -> tuple[common.Table, common.Table]:
    """(breakdown table by part x kind, table of the `top` ops by self time)."""
    rows = profile_steps(name, batch_size, steps, policy)
    cells = collections.defaultdict(float)
    for row in rows:
        cells[(op_part(row["operation"]), op_kind(row["type"]))] += row["total_self_time"]
    total = sum(cells.values())
    breakdown = common.Table(
        f"Profile of the {name} training step (batch {batch_size}, {policy}, no XLA), "
        f"ms per step summed over threads",
        COLUMNS,
    )
    for part in PARTS:
        times = {kind: cells[(part, kind)] / steps / 1000 for kind in KINDS}
        breakdown.add(
            part=part,
            **{f"{kind} ms": value for kind, value in times.items()},
            **{
                "total ms": sum(times.values()),
                "share": sum(times.values()) * 1000 * steps / total,
            },
        )
    kinds_total = {kind: sum(cells[(p, kind)] for p in PARTS) for kind in KINDS}
    breakdown.add(
        part="total",
        **{f"{kind} ms": value / steps / 1000 for kind, value in kinds_total.items()},
        **{"total ms": total / steps / 1000, "share": 1.0},
    )
    conv_share = 1 - kinds_total["other ops"] / total
    breakdown.notes.append(
        f"Convolutions: {conv_share:.0%} of the op time; the rest is memory-bound work "
        "(normalizations, activations, the modulation, resizes, optimizer updates)."
    )
    ops = common.Table(f"Top {top} ops of the {name} step", ["op", "type", "ms/step", "share"])
    for row in sorted(rows, key=lambda r: -r["total_self_time"])[:top]:
        ops.add(
            op=row["operation"].removeprefix("StatefulPartitionedCall/"),
            type=row["type"],
            **{"ms/step": row["total_self_time"] / steps / 1000},
            share=row["total_self_time"] / total,
        )
    return breakdown, ops


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options of this part."""
    parser.add_argument("--profile-model", default=None, help="default groupdnet_shapes64")
    parser.add_argument("--profile-batch-size", type=int, default=None, help="default 16")
    parser.add_argument("--profile-steps", type=int, default=3)
    parser.add_argument("--profile-policy", default="float32", choices=common.POLICIES)


def run_from_args(args: argparse.Namespace) -> common.Table:
    """Runs this part from parsed arguments (`--tiny`: groupdnet_tiny, batch 2, one step)."""
    tiny = getattr(args, "tiny", False)
    breakdown, ops = run(
        name=args.profile_model or ("groupdnet_tiny" if tiny else "groupdnet_shapes64"),
        batch_size=args.profile_batch_size or (2 if tiny else 16),
        steps=1 if tiny else args.profile_steps,
        policy=args.profile_policy,
    )
    breakdown.print()
    ops.print()
    return breakdown


def main(argv=None) -> int:
    """`python -m benchmarks.op_profile [options]`; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny model (tests)")
    add_arguments(parser)
    run_from_args(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
