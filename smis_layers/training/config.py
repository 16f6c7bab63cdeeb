"""The settings of a training run, defined once.

`RunConfig` holds the settings a run folder records in `run.json` (the model, the data, the
schedule, the loss weights, the discriminator, the dtype policy) and `RunOptions` those of one
`smis train` invocation that run.json does not record (logging, export, resume choices). Their
field defaults are the only place the defaults are written: `train_run`'s keyword defaults,
`SMISTrainer.compile`'s loss-weight and learning-rate defaults and the `smis train` options
(`add_train_arguments`) are read from them, and `RunConfig.from_run_json` fills in what a
run.json written by an earlier version lacks.

This module imports only the standard library and the dataset table, so the CLI builds its
parser without starting a deep-learning framework.

Examples:
    >>> config = RunConfig(model="groupdnet_shapes64", steps=2000, kl_weight=0.02)
    >>> config.lr_g, config.checkpoint_every
    (0.0001, 100)
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from smis_layers.data.datasets import DATASETS

DTYPE_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
_JIT_CHOICES = {"auto": "auto", "true": True, "false": False}


def _setting(default: Any = dataclasses.MISSING, help: str = "", **metadata: Any) -> Any:
    """A dataclass field with its `smis train` help text and flags in its metadata (no
    `default`: a required setting).

    metadata keys: `extendable` (`--extend` may change it), `omit_default` (run.json records
    it only when not at its default: run folders from before the setting existed),
    `choices`, `metavar`, `flag` (False: no command-line option).
    """
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What a run folder's `run.json` records: fixed when the run is created (except the
    `extendable` settings, which `--extend` may change).

    Attributes:
        model: architecture name (`build_architecture`).
        steps: training steps; the learning rates are constant for the first half, then decay
            linearly to 0.
        batch_size: samples per step.
        data: "synthetic" or a dataset of the table (`smis_layers.data.datasets`).
        data_dir: the dataset's root folder (None for the synthetic benchmark).
        checkpoint_every: steps between checkpoints (a run also saves at its last step).
        seed: the seed of the weights, the data stream and the sampling.
        lr_g, lr_d: the generator's and discriminator's Adam learning rates (TTUR).
        d_scales, d_layers, d_filters: the multi-scale discriminator.
        reconstruction_weight, kl_weight: loss weights (see `SMISTrainer.compile`).
        jit_compile: "auto" (XLA on GPU only), True or False.
        vgg_weights: a local VGG19 notop weights file for the perceptual loss, or None.
        dtype_policy: the Keras dtype policy of the training step (`DTYPE_POLICIES`).
        prior_gan_weight: weight of the GAN term on images from random codes.
        latent_weight: weight of the latent regression on images from random codes.
        region_colour_weight: weight of the per-class mean-colour L1 of reconstructions.
        region_spectrum_weight: weight of the per-class amplitude-spectrum L1 of reconstructions.
        init_from: a preset a new run starts from (its generator's and discriminator's weights).
    """

    model: str = _setting(
        help="architecture name, e.g. groupdnet_shapes64, or a small model for any dataset: "
        "FAMILY:size=S,width=W (FAMILY groupdnet, groupnet, mulnet, groupenc or vspade; the "
        "class count comes from --data; docs/training.md)"
    )
    steps: int = _setting(help="training steps", extendable=True)
    batch_size: int = _setting(16, "samples per step")
    data: str = _setting(
        "synthetic",
        "the synthetic benchmark, or a real dataset read from --data-dir",
        choices=("synthetic", *DATASETS),
    )
    data_dir: str | None = _setting(
        None,
        f"the dataset's root folder for --data {'|'.join(DATASETS)}, in its standard layout "
        "(see smis_layers.data.datasets)",
    )
    checkpoint_every: int = _setting(
        100, "steps between checkpoints (the run also saves one at its last step)"
    )
    seed: int = _setting(0, "seed of the weights, the data stream and the sampling")
    lr_g: float = _setting(1e-4, "generator learning rate (Adam, TTUR)", extendable=True)
    lr_d: float = _setting(4e-4, "discriminator learning rate (Adam, TTUR)", extendable=True)
    d_scales: int = _setting(2, "discriminator scales")
    d_layers: int = _setting(4, "layers of each discriminator scale")
    d_filters: int = _setting(32, "filters of the discriminator's first layer")
    reconstruction_weight: float = _setting(
        0.0,
        "weight of a pixel L1 reconstruction loss (0, the official recipe; the zoo uses it in "
        "place of the VGG19 perceptual loss)",
        extendable=True,
    )
    kl_weight: float = _setting(
        0.05, "weight of the KL term of the codes (the official recipe's)", extendable=True
    )
    jit_compile: str | bool = _setting(
        "auto", "XLA compilation (auto: on GPU only)", choices=tuple(_JIT_CHOICES), extendable=True
    )
    vgg_weights: str | None = _setting(
        None, "local VGG19 notop weights file for the perceptual loss", extendable=True
    )
    dtype_policy: str = _setting(
        "float32",
        "Keras dtype policy of the training step (fixed for a run; the exported preset is "
        "float32). mixed_bfloat16 is 1.5-3x faster on CPUs with AMX (docs/benchmarks.md)",
        choices=DTYPE_POLICIES,
        omit_default=True,
    )
    prior_gan_weight: float = _setting(
        0.0,
        "weight of a GAN term on images generated from random codes, which the discriminator "
        "also sees as fakes (0, the official recipe; docs/training.md)",
        extendable=True,
        omit_default=True,
    )
    latent_weight: float = _setting(
        0.0,
        "weight of the latent regression: images generated from random codes are encoded "
        "again and must give their codes back (0, the official recipe; docs/training.md)",
        extendable=True,
        omit_default=True,
    )
    region_colour_weight: float = _setting(
        0.0,
        "weight of an L1 between every class's mean colour in the real image and in its "
        "reconstruction, each class present counting alike (0, the official recipe; not in "
        "the paper; docs/training.md)",
        extendable=True,
        omit_default=True,
    )
    region_spectrum_weight: float = _setting(
        0.0,
        "weight of an L1 between the amplitude spectra of every class's region in the real "
        "image and in its reconstruction, which compares textures but not their phase (0, "
        "the official recipe; not in the paper; docs/training.md)",
        extendable=True,
        omit_default=True,
    )
    init_from: str | None = _setting(
        None,
        "fine-tuning: a preset (zoo name or folder) whose generator and discriminator weights "
        "a new run starts from; --model and the --d-* settings must be the preset's "
        "(its metadata.json's training section has them)",
        omit_default=True,
        metavar="PRESET",
    )

    @classmethod
    def from_run_json(cls, run: dict) -> RunConfig:
        """The settings of a run.json, of this version or an earlier one (settings it lacks,
        added since, take their defaults; the derived `image_size`, `num_classes`, `command`
        and `phases` are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in run.items() if k in names})

    def to_run_json(self, image_size: int, num_classes: int) -> dict:
        """run.json's settings: every field (those marked `omit_default` only when not at their
        default, as earlier versions wrote them) and the model's `image_size` and
        `num_classes`."""
        run = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not (f.metadata.get("omit_default") and value == f.default):
                run[f.name] = value
            if f.name == "vgg_weights":  # the order of the earlier run.json files
                run.update(image_size=int(image_size), num_classes=int(num_classes))
        return run


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """The settings of one `smis train` / `train_run` call that run.json does not record.

    Attributes:
        code_prior_samples: the exported preset's code prior is fitted to this many training
            samples (0: none).
        log_every: TensorBoard scalars and image grids every N steps (0: off).
        verbose: Keras' progress verbosity (0, 1, 2).
        overwrite, extend, stop_at, resume_from: see `train_run`.
        verify_data: scan every pair of a dataset folder before training.
    """

    code_prior_samples: int = _setting(
        2048,
        "fit the exported preset's code prior to the codes of N training samples, so random "
        "codes look like the data's (0: none, random codes from N(0, 1); docs/zoo.md)",
        metavar="N",
    )
    log_every: int = _setting(
        100, "TensorBoard scalars and image grids every N steps in OUT/logs (0: off)"
    )
    verbose: int = _setting(1, "progress output", choices=(0, 1, 2))
    overwrite: bool = _setting(
        False,
        "write the run into an existing --out folder that is not a run folder, or restart a run "
        "folder that holds a run with other arguments (a run with the same arguments is always "
        "resumed)",
    )
    extend: bool = _setting(
        False,
        "continue the run in --out from its last checkpoint with more --steps or other learning "
        "rates / loss weights (model, data, batch, seed and discriminator must match; the "
        "previous settings stay in run.json's phases)",
    )
    stop_at: int | None = _setting(
        None,
        "stop after this step with a checkpoint, keeping the learning-rate schedule of --steps; "
        "rerun to continue, e.g. with --extend and a new loss weight for the rest of the "
        "schedule",
        metavar="STEP",
    )
    resume_from: str | None = _setting(
        None,
        "resume from this checkpoint-<step>.weights.h5 of --out instead of the last one (after "
        "a corrupted checkpoint)",
        metavar="CHECKPOINT",
    )
    verify_data: bool = _setting(True, flag=False)


def defaults(cls: type) -> dict[str, Any]:
    """The default of every field of `RunConfig` or `RunOptions` that has one."""
    return {
        f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
    }


#: Settings `train_run(extend=True)` may change in an existing run; the others fix what the
#: checkpoints hold (architecture, discriminator) or the data stream they have consumed.
EXTENDABLE = tuple(f.name for f in dataclasses.fields(RunConfig) if f.metadata.get("extendable"))
#: run.json settings written only when they differ from their default.
DEFAULT_OMITTED = tuple(
    f.name for f in dataclasses.fields(RunConfig) if f.metadata.get("omit_default")
)

_TYPES = {"int": int, "float": float, "str": str, "int | None": int, "str | None": str}


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the `smis train` options of every `RunConfig` and `RunOptions` field to `parser`
    (`--kl-weight` for `kl_weight`, ...), with the fields' defaults and help texts, plus
    `--out` and `--no-verify`. `run_arguments` turns the parsed namespace back into
    `train_run`'s keyword arguments."""
    parser.add_argument("--out", required=True, help="run folder (checkpoints, preset)")
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the scan of every pair of a dataset folder before training",
    )
    for cls in (RunConfig, RunOptions):
        for f in dataclasses.fields(cls):
            meta = f.metadata
            if meta.get("flag", True) is False:
                continue
            flag = "--" + f.name.replace("_", "-")
            kwargs: dict[str, Any] = {"help": meta["help"] or None}
            if f.default is dataclasses.MISSING:
                kwargs["required"] = True
            else:
                kwargs["default"] = f.default
            if f.type == "bool":
                kwargs["action"] = "store_true"
            elif f.type in _TYPES:
                kwargs["type"] = _TYPES[f.type]
            for key in ("choices", "metavar"):
                if key in meta:
                    kwargs[key] = meta[key]
            parser.add_argument(flag, **kwargs)


def run_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """`train_run`'s keyword arguments (all but `model`, `out` and `steps`) from the namespace
    `add_train_arguments` parsed."""
    names = [f.name for cls in (RunConfig, RunOptions) for f in dataclasses.fields(cls)]
    kwargs = {name: getattr(args, name) for name in names if hasattr(args, name)}
    kwargs["jit_compile"] = _JIT_CHOICES.get(kwargs["jit_compile"], kwargs["jit_compile"])
    kwargs["verify_data"] = not args.no_verify
    for name in ("model", "out", "steps"):
        kwargs.pop(name, None)
    return kwargs
