"""The `smis` command line."""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys
from collections.abc import Sequence

from smis_layers.data.datasets import DATASETS
from smis_layers.training.config import add_train_arguments, run_arguments
from smis_layers.utils.logs import quiet_tensorflow
from smis_layers.version import __version__


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _devices(backend: str) -> list[str]:
    if backend == "tensorflow":
        import tensorflow as tf

        return [f"{d.device_type}:{d.name}" for d in tf.config.list_logical_devices()]
    if backend == "jax":
        import jax

        return [str(d) for d in jax.devices()]
    if backend == "torch":
        import torch

        devices = ["cpu"]
        if torch.cuda.is_available():
            devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        return devices
    return []


def info(args: argparse.Namespace) -> int:
    """Prints versions, the Keras backend, its devices and the grouped-conv lowering it uses."""
    import keras

    from smis_layers.ops.grouped_conv import resolve_lowering
    from smis_layers.utils.machine import cpu_description

    backend = keras.backend.backend()
    print(f"smis-layers  {__version__}")
    print(f"python       {platform.python_version()} ({platform.machine()}, {platform.system()})")
    for name in ("keras", "tensorflow", "jax", "torch", "numpy", "h5py", "pillow"):
        print(f"{name:<12} {_package_version(name)}")
    print(f"backend      {backend} (set KERAS_BACKEND to change)")
    print(f"devices      {', '.join(_devices(backend)) or 'unknown'}")
    print(f"cpu          {cpu_description()}")
    lowerings = ", ".join(
        f"{dtype} {resolve_lowering('auto', groups=8, dtype=dtype)}"
        for dtype in ("float32", "bfloat16", "float16")
    )
    print(f"group conv   lowering='auto' outside XLA on this machine: {lowerings}")
    return 0


def convert_official(args: argparse.Namespace) -> int:
    """Converts official SMIS PyTorch checkpoints into a GroupDNet preset folder."""
    import json

    from smis_layers.convert import CheckpointMismatchError, convert_official_checkpoint

    try:
        if args.model_config is not None:
            with open(args.model_config) as handle:
                config = json.load(handle)
        else:
            config = args.config
        out = convert_official_checkpoint(
            args.generator, args.encoder, config, args.out, overwrite=args.overwrite
        )
    except CheckpointMismatchError as error:
        listing = (
            ("\n  " + "\n  ".join(error.problems))
            if args.verbose
            else (f" (--verbose lists the {len(error.problems)} tensors)")
        )
        print(f"smis convert-official: error: {error.summary}{listing}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, ImportError, OSError) as error:
        print(f"smis convert-official: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote preset {out} (load it with GroupDNet.from_preset)")
    if args.encoder is None:
        print("no --encoder given: the encoder keeps its initial weights (see metadata.json)")
    print(
        "the official SMIS weights are licensed CC BY-NC-SA 4.0; the converted weights keep "
        "that license"
    )
    return 0


def train(args: argparse.Namespace) -> int:
    """Trains (or resumes) a model; exports `OUT/preset` and `OUT/samples.png` at the end.

    Exit status: 0 done, 1 an error (bad arguments, a NaN/Inf loss, an unreadable checkpoint),
    130 / 143 interrupted by SIGINT / SIGTERM (after saving a checkpoint at the current step)."""
    from smis_layers.training.run import (
        CheckpointError,
        NonFiniteLossError,
        TrainingInterrupted,
        read_state,
        train_run,
    )

    command = "smis " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else None
    try:
        preset = train_run(args.model, args.out, args.steps, command=command, **run_arguments(args))
    except TrainingInterrupted as interrupted:
        print(
            f"smis train: interrupted at step {interrupted.step}; saved checkpoint "
            f"{interrupted.checkpoint}. Run the same command to resume.",
            file=sys.stderr,
        )
        return 128 + interrupted.signal_number  # the shell's convention: 130 SIGINT, 143 SIGTERM
    except KeyboardInterrupt:
        try:
            state = read_state(args.out)
        except (OSError, ValueError):
            state = None
        last = state["checkpoint"] if state else "none yet"
        print(
            f"\nsmis train: interrupted; last checkpoint: {last}. Run the same command to resume.",
            file=sys.stderr,
        )
        return 130
    except (
        ValueError,
        NonFiniteLossError,
        CheckpointError,
        NotImplementedError,
        FileNotFoundError,
        FileExistsError,
    ) as error:
        print(f"smis train: error: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        # Data errors raised inside tf.data arrive as TensorFlow errors carrying our message.
        message = getattr(error, "message", None)
        if message is None or not type(error).__module__.startswith("tensorflow"):
            raise
        print(f"smis train: error: {message}", file=sys.stderr)
        return 1
    if preset is None:
        print(
            f"smis train: stopped at step {args.stop_at} of {args.steps} (--stop-at); run the "
            "command without --stop-at (or with --extend and new settings) to continue"
        )
        return 0
    print(f"smis train: preset written to {preset}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smis", description="Semantically multi-modal image synthesis (GroupDNet) in Keras 3."
    )
    parser.add_argument("--version", action="version", version=f"smis-layers {__version__}")
    parser.add_argument(
        "--verbose",
        dest="startup_logs",
        action="store_true",
        help="show the backends' start-up logs (TensorFlow's C++ lines, hidden by default; "
        "TF_CPP_MIN_LOG_LEVEL=0 in the environment shows them too)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    info_parser = commands.add_parser("info", help="versions, backend, devices")
    info_parser.set_defaults(handler=info)

    convert_parser = commands.add_parser(
        "convert-official",
        help="convert official SMIS checkpoints (latest_net_G.pth, latest_net_E.pth) to a preset",
    )
    convert_parser.add_argument(
        "--generator", required=True, help="the official generator checkpoint (latest_net_G.pth)"
    )
    convert_parser.add_argument(
        "--encoder",
        default=None,
        help="the official encoder checkpoint (latest_net_E.pth); without it the encoder keeps "
        "its initial weights",
    )
    architecture = convert_parser.add_mutually_exclusive_group(required=True)
    architecture.add_argument(
        "--config",
        choices=tuple(DATASETS),
        help="the official architecture the checkpoints were trained with",
    )
    # Advanced: a GroupDNet config JSON (get_config() or a preset's config.json) for
    # checkpoints of non-default official-style architectures.
    architecture.add_argument("--model-config", default=None, help=argparse.SUPPRESS)
    convert_parser.add_argument("--out", required=True, help="the preset folder to write")
    convert_parser.add_argument(
        "--verbose", action="store_true", help="list every mismatched tensor on an error"
    )
    convert_parser.add_argument(
        "--overwrite", action="store_true", help="replace existing preset files in --out"
    )
    convert_parser.set_defaults(handler=convert_official)

    train_parser = commands.add_parser(
        "train", help="train a model (rerunning the same command resumes)"
    )
    add_train_arguments(train_parser)  # the fields of RunConfig and RunOptions
    train_parser.set_defaults(handler=train)

    from smis_layers.cli_applications import add_parsers
    from smis_layers.serve.cli import add_parser as add_serve_parser

    add_parsers(commands)
    add_serve_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the `smis` command line with `argv` (default: `sys.argv[1:]`); returns the exit
    status (0 success, 1 bad input or a failed step, 130 interrupted training)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    quiet_tensorflow(verbose=args.startup_logs)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
