"""`python -m benchmarks flops`: the analytic FLOP counts of every configuration.

The counter itself is `smis_layers.metrics.flops` (its docstring states the convention and the
train-step accounting); this part prints the per-model summary.
"""

from __future__ import annotations

import keras

from benchmarks import common
from smis_layers.metrics.flops import (
    discriminator_input_shape,
    flops_table,
    generator_flops,
    module_flops,
    parameter_count,
    train_step_flops,
)


def category(path: str) -> str:
    """Which part of GroupDNet a counted layer belongs to, from its path."""
    if path.startswith("encoder/") or "/encoder/" in path:
        return "encoder"
    if "/norm_" in path:
        return "CGNorm convs"
    return "decoder convs"


def summary_table(models) -> common.Table:
    """One row per configuration: parameters, forward GFLOPs per image and their split."""
    table = common.Table(
        "Analytic FLOPs per image (1 multiply-add = 2 FLOPs)",
        [
            "model",
            "size",
            "G params",
            "D params",
            "encoder GFLOP",
            "decoder GFLOP",
            "CGNorm share of decoder",
            "D GFLOP",
            "train step GFLOP",
        ],
    )
    for name in models:
        keras.backend.clear_session()
        generator, discriminator = common.build_models(name)
        decoder_rows = [
            row
            for module in (generator.fc, *generator.blocks, generator.conv_img)
            for row in flops_table(module)
        ]
        decoder = sum(row.flops for row in decoder_rows)
        norm = sum(row.flops for row in decoder_rows if category(row.path) == "CGNorm convs")
        d_shape = discriminator_input_shape(generator)
        d_copy = type(discriminator).from_config(discriminator.get_config())
        d_copy.build(d_shape)
        table.add(
            model=name,
            size="x".join(str(d) for d in generator.image_size),
            **{
                "G params": parameter_count(generator),
                "D params": parameter_count(d_copy),
                "encoder GFLOP": generator_flops(generator, "encoder") / 1e9,
                "decoder GFLOP": decoder / 1e9,
                "CGNorm share of decoder": norm / decoder,
                "D GFLOP": module_flops(d_copy) / 1e9,
                "train step GFLOP": train_step_flops(generator, discriminator, 1)["total"] / 1e9,
            },
        )
    table.notes.append(
        "Train step = 4 x (encoder + decoder) + 9 x D, per image "
        "(see smis_layers/metrics/flops.py). "
        "G params: encoder + decoder."
    )
    return table


def add_arguments(parser) -> None:
    """The command-line options of this part."""
    parser.add_argument("--flops-models", nargs="+", default=None)
    parser.add_argument(
        "--layers", default=None, metavar="MODEL", help="also list MODEL's counted layers"
    )


def run_from_args(args) -> common.Table:
    """Runs this part from parsed arguments (`--tiny`: the tiny models)."""
    tiny = getattr(args, "tiny", False)
    default = (
        common.TINY if tiny else (*common.SHAPES64, common.DEEPFASHION_SMALL, common.DEEPFASHION)
    )
    table = summary_table(args.flops_models or default)
    table.print()
    if args.layers:
        generator, _ = common.build_models(args.layers)
        layers = common.Table(
            f"Counted layers of {args.layers} (forward, per image)",
            ["layer", "kind", "output", "kernel", "MFLOP", "share"],
        )
        rows = flops_table(generator)
        total = sum(row.flops for row in rows)
        for row in sorted(rows, key=lambda r: -r.flops):
            layers.add(
                layer=row.path,
                kind=row.kind,
                output="x".join(str(d) for d in row.output_shape[1:]),
                kernel="x".join(str(d) for d in row.kernel_shape),
                MFLOP=row.flops / 1e6,
                share=row.flops / total,
            )
        layers.print()
    return table


def main(argv=None) -> int:
    """`python -m benchmarks.flops [options]`; returns the exit status."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny models (tests)")
    add_arguments(parser)
    run_from_args(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
