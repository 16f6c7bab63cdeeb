"""The `smis` command line."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import sys
from collections.abc import Sequence

from smis_layers.data.datasets import DATASETS
from smis_layers.version import __version__


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


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
    _quiet_tensorflow()
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
    _quiet_tensorflow()
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
    _quiet_tensorflow()
    from smis_layers.training.run import (
        CheckpointError,
        NonFiniteLossError,
        TrainingInterrupted,
        read_state,
        train_run,
    )

    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    command = "smis " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else None
    try:
        preset = train_run(
            args.model,
            args.out,
            args.steps,
            batch_size=args.batch_size,
            data=args.data,
            data_dir=args.data_dir,
            checkpoint_every=args.checkpoint_every,
            seed=args.seed,
            lr_g=args.lr_g,
            lr_d=args.lr_d,
            d_scales=args.d_scales,
            d_layers=args.d_layers,
            d_filters=args.d_filters,
            reconstruction_weight=args.reconstruction_weight,
            kl_weight=args.kl_weight,
            prior_gan_weight=args.prior_gan_weight,
            code_prior_samples=args.code_prior_samples,
            jit_compile=jit,
            vgg_weights=args.vgg_weights,
            command=command,
            verbose=args.verbose,
            log_every=args.log_every,
            overwrite=args.overwrite,
            resume_from=args.resume_from,
            extend=args.extend,
            stop_at=args.stop_at,
            dtype_policy=args.dtype_policy,
            verify_data=not args.no_verify,
        )
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
    train_parser.add_argument(
        "--model",
        required=True,
        help="architecture name, e.g. groupdnet_shapes64, or a small model for any dataset: "
        "FAMILY:size=S,width=W (FAMILY groupdnet, groupnet, mulnet, groupenc or vspade; the "
        "class count comes from --data; docs/training.md)",
    )
    train_parser.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the scan of every pair of a dataset folder before training",
    )
    train_parser.add_argument(
        "--data",
        default="synthetic",
        choices=("synthetic", *DATASETS),
        help="the synthetic benchmark, or a real dataset read from --data-dir",
    )
    train_parser.add_argument(
        "--data-dir",
        default=None,
        help=f"the dataset's root folder for --data {'|'.join(DATASETS)}, in its standard "
        "layout (see smis_layers.data.datasets)",
    )
    train_parser.add_argument("--steps", type=int, required=True)
    train_parser.add_argument("--batch-size", type=int, default=16)
    train_parser.add_argument("--out", required=True, help="run folder (checkpoints, preset)")
    train_parser.add_argument("--checkpoint-every", type=int, default=100)
    train_parser.add_argument("--seed", type=int, default=0)
    train_parser.add_argument("--lr-g", type=float, default=1e-4)
    train_parser.add_argument("--lr-d", type=float, default=4e-4)
    train_parser.add_argument("--d-scales", type=int, default=2)
    train_parser.add_argument("--d-layers", type=int, default=4)
    train_parser.add_argument("--d-filters", type=int, default=32)
    train_parser.add_argument(
        "--reconstruction-weight",
        type=float,
        default=0.0,
        help="weight of a pixel L1 reconstruction loss (0, the official recipe; the zoo uses it "
        "in place of the VGG19 perceptual loss)",
    )
    train_parser.add_argument("--kl-weight", type=float, default=0.05)
    train_parser.add_argument(
        "--prior-gan-weight",
        type=float,
        default=0.0,
        help="weight of a GAN term on images generated from random codes, which the "
        "discriminator also sees as fakes (0, the official recipe; docs/training.md)",
    )
    train_parser.add_argument(
        "--code-prior-samples",
        type=int,
        default=2048,
        metavar="N",
        help="fit the exported preset's code prior to the codes of N training samples, so "
        "random codes look like the data's (0: none, random codes from N(0, 1); docs/zoo.md)",
    )
    train_parser.add_argument("--jit-compile", default="auto", choices=("auto", "true", "false"))
    train_parser.add_argument(
        "--dtype-policy",
        default="float32",
        choices=("float32", "mixed_bfloat16", "mixed_float16"),
        help="Keras dtype policy of the training step (fixed for a run; the exported preset is "
        "float32). mixed_bfloat16 is 1.5-3x faster on CPUs with AMX (docs/benchmarks.md)",
    )
    train_parser.add_argument(
        "--vgg-weights", default=None, help="local VGG19 notop weights file for the perceptual loss"
    )
    train_parser.add_argument(
        "--log-every",
        type=int,
        default=100,
        help="TensorBoard scalars and image grids every N steps in OUT/logs (0: off)",
    )
    train_parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write the run into an existing --out folder that is not a run folder, or restart "
        "a run folder that holds a run with other arguments (a run with the same arguments is "
        "always resumed)",
    )
    train_parser.add_argument(
        "--extend",
        action="store_true",
        help="continue the run in --out from its last checkpoint with more --steps or other "
        "learning rates / loss weights (model, data, batch, seed and discriminator must match; "
        "the previous settings stay in run.json's phases)",
    )
    train_parser.add_argument(
        "--stop-at",
        type=int,
        default=None,
        metavar="STEP",
        help="stop after this step with a checkpoint, keeping the learning-rate schedule of "
        "--steps; rerun to continue, e.g. with --extend and a new loss weight for the rest of "
        "the schedule",
    )
    train_parser.add_argument(
        "--resume-from",
        default=None,
        metavar="CHECKPOINT",
        help="resume from this checkpoint-<step>.weights.h5 of --out instead of the last one "
        "(after a corrupted checkpoint)",
    )
    train_parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
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
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
