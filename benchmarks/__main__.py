"""The smis-layers performance suite: `python -m benchmarks PART [options]`.

Parts (each prints Markdown tables; `--tiny` runs any of them in seconds, as the tests do):

    flops        analytic FLOPs and parameters per model (benchmarks/flops.py)
    train-step   images/s, FLOP/s and MFU of the G+D training step; models x jit x policy
    mfu          train-step for the GroupDNet models only, jit off (the MFU headline)
    inference    latency, images/s and peak RSS of model.generate at batch 1 and 16
    demo         milliseconds per action of the demo page's handlers (smis demo)
    scaling      cost vs number of classes and resolution, GroupDNet vs MulNet (+ figure)
    group-conv   grouped-convolution lowerings, forward+backward
    pipeline     the training step fed from memory, synthetic tf.data, JPEG/PNG files
    profile      TensorFlow-profiler breakdown of the training step by layer and op kind
    gpu          the official 256x256 DeepFashion configuration in one table (benchmarks/gpu.sh)
    vs-official  ours vs the official architecture's PyTorch networks, alternated processes
    all          every part above except gpu and vs-official, one after the other

Examples:

    python -m benchmarks flops
    python -m benchmarks train-step --models groupdnet_shapes64 --jit false
    python -m benchmarks all --tiny --output /tmp/bench.md

The machine description (CPU, load, versions) is printed first; `--output FILE` also appends
every table to FILE.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PARTS = {
    "flops": "benchmarks.flops",
    "train-step": "benchmarks.train_step",
    "mfu": "benchmarks.train_step",
    "inference": "benchmarks.inference",
    "demo": "benchmarks.demo",
    "scaling": "benchmarks.scaling",
    "group-conv": "benchmarks.group_conv",
    "pipeline": "benchmarks.pipeline",
    "profile": "benchmarks.op_profile",
    "gpu": "benchmarks.gpu",
    "vs-official": "benchmarks.vs_official",
}
ALL = ("flops", "group-conv", "train-step", "inference", "demo", "scaling", "pipeline", "profile")
MFU_MODELS = ["groupdnet_shapes64", "groupdnet_deepfashion_small"]


def _module(part: str):
    import importlib

    return importlib.import_module(PARTS[part])


def build_parser() -> argparse.ArgumentParser:
    """The suite's argument parser: one subcommand per part, plus `all`."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Parts: " + ", ".join([*PARTS, "all"]),
    )
    subparsers = parser.add_subparsers(dest="part", required=True, metavar="PART")
    for part in [*PARTS, "all"]:
        sub = subparsers.add_parser(part, help=f"run the {part} part")
        sub.add_argument("--tiny", action="store_true", help="tiny sizes: seconds (tests)")
        sub.add_argument("--output", default=None, help="also append the tables to this file")
        if part == "all":
            continue
        _module(part).add_arguments(sub)
        if part == "mfu":
            sub.set_defaults(jit=["false"])
    return parser


def _part_arguments(part: str, tiny: bool) -> argparse.Namespace:
    """The default arguments of one part (for `all`)."""
    parser = build_parser()
    return parser.parse_args([part, *(["--tiny"] if tiny else [])])


def run_part(part: str, args: argparse.Namespace) -> list:
    """Runs one part; returns its tables."""
    if part == "mfu" and not args.models:
        args.models = ["groupdnet_tiny"] if args.tiny else MFU_MODELS
    result = _module(part).run_from_args(args)
    return list(result) if isinstance(result, (list, tuple)) else [result]


def main(argv=None) -> int:
    """Entry point of `python -m benchmarks` (and of `smis bench`); returns the exit status."""
    args = build_parser().parse_args(argv)
    from benchmarks import common

    print(f"Machine: {common.machine_description()}\n", flush=True)
    parts = ALL if args.part == "all" else (args.part,)
    tables = []
    for part in parts:
        part_args = _part_arguments(part, args.tiny) if args.part == "all" else args
        start = time.perf_counter()
        print(f"## {part}\n", flush=True)
        tables.extend(run_part(part, part_args))
        print(f"({part}: {time.perf_counter() - start:.0f} s)\n", flush=True)
    if args.output:
        with open(args.output, "a") as f:
            f.write(f"Command: python -m benchmarks {' '.join(argv or sys.argv[1:])}\n\n")
            for table in tables:
                f.write(table.markdown() + "\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
