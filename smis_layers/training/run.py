"""Resumable training runs: `smis train` and `train_run`, a short orchestration of

- the run's settings (`smis_layers.training.config`: `RunConfig`, `RunOptions`),
- its data (`smis_layers.training.run_data`),
- its folder: run.json, checkpoints, state, resume, extend and overwrite
  (`smis_layers.training.run_folder`),
- the memory estimate (`smis_layers.training.memory`),
- and the export: float32 networks, the code prior, the sample sheet
  (`smis_layers.training.export`).

The names of those modules that this module has always offered stay importable from it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import keras

from smis_layers.data.datasets import DATASETS, dataset_facts
from smis_layers.data.labels import data_label_convention
from smis_layers.models.architectures import SHAPES64_CLASSES, complete_architecture_name
from smis_layers.presets import SAMPLES_FILE, save_preset
from smis_layers.training.config import (
    DEFAULT_OMITTED,
    DTYPE_POLICIES,
    EXTENDABLE,
    RunConfig,
    RunOptions,
    defaults,
)
from smis_layers.training.export import (
    fit_code_prior,
    float32_copy,
    global_dtype_policy,
    training_device,
    write_sample_sheet,
)
from smis_layers.training.memory import (
    ACTIVATION_FACTOR,
    MemoryEstimate,
    available_memory_bytes,
    estimate_training_memory,
    memory_warning,
)
from smis_layers.training.preflight import check_run_arguments, verify_run_data
from smis_layers.training.run_data import (
    ArchitectureFacts,
    architecture_facts,
    checked_data_dir,
    run_dataset,
    sample_batch,
)
from smis_layers.training.run_folder import (
    RUN_FILE,
    STATE_FILE,
    CheckpointError,
    NonFiniteLossError,
    ResumableCheckpoint,
    TrainingInterrupted,
    check_not_past,
    checkpoint_name,
    checkpoint_state_name,
    fit_parts,
    list_checkpoints,
    load_checkpoint,
    open_run_folder,
    raise_if_stopped,
    read_state,
    restore,
    signals_save,
)
from smis_layers.utils.io import atomic_write_bytes
from smis_layers.utils.machine import cpu_lacks_16bit_kernels
from smis_layers.utils.validation import require_loss_weight, require_non_negative_int

__all__ = [
    "ACTIVATION_FACTOR",
    "DEFAULT_OMITTED",
    "DTYPE_POLICIES",
    "EXTENDABLE",
    "RUN_FILE",
    "STATE_FILE",
    "ArchitectureFacts",
    "CheckpointError",
    "MemoryEstimate",
    "NonFiniteLossError",
    "ResumableCheckpoint",
    "RunConfig",
    "RunModels",
    "RunOptions",
    "TrainingInterrupted",
    "available_memory_bytes",
    "checkpoint_name",
    "checkpoint_state_name",
    "estimate_training_memory",
    "fit_code_prior",
    "fit_parts",
    "float32_copy",
    "global_dtype_policy",
    "list_checkpoints",
    "load_run_models",
    "memory_warning",
    "read_state",
    "sample_batch",
    "train_run",
    "write_sample_sheet",
]

_RUN = defaults(RunConfig)
_OPTIONS = defaults(RunOptions)


def _fields(cls: type) -> list[str]:
    return [field.name for field in dataclasses.fields(cls)]


#: `_architecture(model)`: the facts of an architecture, cached (tests clear the cache).
_architecture = architecture_facts


class RunModels(NamedTuple):
    """A run folder's networks at its last complete checkpoint (`load_run_models`)."""

    generator: keras.Model
    discriminator: keras.Model
    run: dict
    state: dict


def load_run_models(out: str | Path) -> RunModels:
    """The generator and discriminator of a `smis train` folder at its last complete
    checkpoint, float32 as a preset ships them (built under the run's dtype policy, then
    copied), with the contents of its run.json and state.json.

    Raises:
        FileNotFoundError: `out` is not a run folder.
        CheckpointError: the folder holds no checkpoint yet, or it is missing or corrupted.

    Examples:
        >>> generator, discriminator, run, state = load_run_models("runs/groupdnet_shapes64")
        >>> state["completed_steps"], generator.generate(labels, seed=0).shape
    """
    out = Path(out)
    if not (out / RUN_FILE).is_file():
        raise FileNotFoundError(f"{out} is not a smis train run folder (no {RUN_FILE})")
    run = json.loads((out / RUN_FILE).read_text())
    state = read_state(out)
    if state is None:
        raise CheckpointError(f"{out} holds no checkpoint yet (no {STATE_FILE})")
    with global_dtype_policy(RunConfig.from_run_json(run).dtype_policy):
        trainer = _build_trainer(run)
        load_checkpoint(trainer, out, state)
    return RunModels(
        float32_copy(trainer.generator), float32_copy(trainer.discriminator), run, state
    )


def _build_trainer(run: dict, feature_extractor=None):
    """The compiled `SMISTrainer` of the run.json content `run` (of any version)."""
    from smis_layers.models import MultiScaleDiscriminator, build_architecture
    from smis_layers.training.schedules import ConstantThenLinearDecay
    from smis_layers.training.trainer import SMISTrainer, ttur_optimizer

    config = RunConfig.from_run_json(run)
    keras.utils.set_random_seed(config.seed)
    generator = build_architecture(config.model, seed=config.seed)
    discriminator = MultiScaleDiscriminator(
        num_scales=config.d_scales, num_layers=config.d_layers, base_filters=config.d_filters
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = SMISTrainer(generator, discriminator, feature_extractor=feature_extractor)
    constant = config.steps // 2

    def optimizer(rate):
        decay = max(1, config.steps - constant)
        return ttur_optimizer(ConstantThenLinearDecay(rate, constant, decay))

    trainer.compile(
        g_optimizer=optimizer(config.lr_g),
        d_optimizer=optimizer(config.lr_d),
        jit_compile=config.jit_compile,
        reconstruction_weight=config.reconstruction_weight,
        kl_weight=config.kl_weight,
        prior_gan_weight=config.prior_gan_weight,
        latent_weight=config.latent_weight,
        region_colour_weight=config.region_colour_weight,
        region_spectrum_weight=config.region_spectrum_weight,
    )
    return trainer


def _dataset(run: dict, start_sample: int):
    """The run's training stream from sample `start_sample` (`run_dataset`)."""
    return run_dataset(run, start_sample)


def train_run(
    model: str,
    out: str | Path,
    steps: int,
    batch_size: int = _RUN["batch_size"],
    data: str = _RUN["data"],
    data_dir: str | Path | None = _RUN["data_dir"],
    checkpoint_every: int = _RUN["checkpoint_every"],
    seed: int = _RUN["seed"],
    lr_g: float = _RUN["lr_g"],
    lr_d: float = _RUN["lr_d"],
    d_scales: int = _RUN["d_scales"],
    d_layers: int = _RUN["d_layers"],
    d_filters: int = _RUN["d_filters"],
    reconstruction_weight: float = _RUN["reconstruction_weight"],
    kl_weight: float = _RUN["kl_weight"],
    jit_compile: str | bool = _RUN["jit_compile"],
    vgg_weights: str | None = _RUN["vgg_weights"],
    command: str | None = None,
    verbose: int = _OPTIONS["verbose"],
    log_every: int = _OPTIONS["log_every"],
    overwrite: bool = _OPTIONS["overwrite"],
    resume_from: str | None = _OPTIONS["resume_from"],
    handle_sigint: bool = True,
    check_memory: bool = True,
    extend: bool = _OPTIONS["extend"],
    stop_at: int | None = _OPTIONS["stop_at"],
    dtype_policy: str = _RUN["dtype_policy"],
    prior_gan_weight: float = _RUN["prior_gan_weight"],
    latent_weight: float = _RUN["latent_weight"],
    region_colour_weight: float = _RUN["region_colour_weight"],
    region_spectrum_weight: float = _RUN["region_spectrum_weight"],
    init_from: str | None = _RUN["init_from"],
    code_prior_samples: int = _OPTIONS["code_prior_samples"],
    verify_data: bool = _OPTIONS["verify_data"],
) -> Path | None:
    """Trains (or resumes) a run and exports its generator as a preset folder `out/preset`.

    Returns the preset folder (None when `stop_at` stopped the run before `steps`). Rerunning
    with the same arguments resumes from the last complete checkpoint; different arguments for
    an existing run folder are an error.

    The settings and their defaults are those of `RunConfig` (recorded in run.json) and
    `RunOptions` (`smis_layers.training.config`).

    Args (beyond the training hyper-parameters):
        overwrite: use an `out` folder that exists and is not a run folder (files of the run's
            names in it are replaced), or restart from scratch a run folder whose run.json holds
            other arguments (its checkpoints, state and preset are deleted). A run with the same
            arguments is always resumed.
        resume_from: a checkpoint file name of `out` (e.g. "checkpoint-200.weights.h5") to
            resume from instead of the one `state.json` names (after a corrupted checkpoint).
        handle_sigint: while training, SIGINT or SIGTERM saves a checkpoint at the current
            step and raises `TrainingInterrupted` (main thread only).
        check_memory: estimate the memory a training step needs and warn (on stderr) when it
            exceeds what is available.
        extend: continue the run in `out` from its last checkpoint with other settings of
            `EXTENDABLE` (more steps, learning rates, loss weights); the model, data, batch,
            seed and discriminator must match. The previous settings and the step at which
            they ended are kept in run.json's "phases". The learning-rate schedule is that of
            the new `steps` (constant for the first half, then linear decay to 0).
        stop_at: stop after this step (at most `steps`) with its checkpoint, without
            exporting the preset: the run keeps its `steps` and learning-rate schedule, and
            rerunning (or `extend` with new settings) continues it exactly. For changing a
            setting part-way through a schedule.
        dtype_policy: the Keras dtype policy of the training step: "float32", or
            "mixed_bfloat16" / "mixed_float16" (float32 weights, computations in 16 bits; on
            CPUs with AMX, oneDNN runs bfloat16 convolutions several times faster). Fixed for
            a run. The exported preset is float32 whatever the policy.
        prior_gan_weight: weight of the GAN term on images from random codes (0, the
            official recipe; see `SMISTrainer.compile`).
        latent_weight: weight of the latent regression on images from random codes (0, the
            official recipe; see `SMISTrainer.compile`).
        region_colour_weight: weight of the L1 between every class's mean colour in the real
            image and in its reconstruction (0, the official recipe; see
            `SMISTrainer.compile`).
        region_spectrum_weight: weight of the L1 between the amplitude spectra of every
            class's region in the real image and in its reconstruction (0, the official
            recipe; see `SMISTrainer.compile`).
        init_from: fine-tuning: a preset (zoo name or folder, with its discriminator) whose
            generator and discriminator weights a new run starts from instead of random ones
            (the optimizers start afresh); `model` and the `d_*` settings must build the
            preset's networks, or for the generator the preset's with `texture=N` added or
            raised (and `latent=K` for a second wave: the new inputs start at zero,
            `weights_for_texture_code`). Recorded
            in run.json; a resumed run continues from its own checkpoint.
        code_prior_samples: the exported preset ships a `FittedCodePrior` fitted to the
            generator's codes of this many training samples (`fit_code_prior`), which
            `sample_z` then draws from; 0 ships none (random codes from N(0, 1)). An export
            setting: not recorded in run.json, free to change when rerunning.
        verify_data: before building the trainer, decode and check every pair of a dataset
            folder (`smis_layers.training.preflight.verify_run_data`); False skips the scan.

    Raises:
        TrainingInterrupted: SIGINT or SIGTERM; the checkpoint of the current step was saved.
        NonFiniteLossError: a loss or weight became NaN/Inf; nothing was saved for that step.
        CheckpointError: the checkpoint to resume from is missing or unreadable.
        FileExistsError: `out` exists, is not a run folder, and `overwrite` is False.
        ValueError: invalid arguments, or an existing run with other arguments.
    """
    arguments = locals()  # every field of RunConfig and RunOptions is an argument
    out = Path(out)
    config = RunConfig(**{name: arguments[name] for name in _fields(RunConfig)})
    options = RunOptions(**{name: arguments[name] for name in _fields(RunOptions)})
    config, stop = _checked(config, options, out)
    probe = _architecture(config.model)
    config = dataclasses.replace(
        config, data_dir=checked_data_dir(data, data_dir, config.model, probe)
    )
    run = config.to_run_json(probe.image_size[0], probe.num_classes)
    if verify_data and data != "synthetic":
        verify_run_data(data, run["data_dir"], probe.use_instance_edges, progress=verbose > 0)
    run = open_run_folder(out, run, extend, overwrite, command)

    with global_dtype_policy(config.dtype_policy):
        trainer = _build_trainer(run, _feature_extractor(vgg_weights, verbose))
        warnings_ = [_dtype_policy_warning(config.dtype_policy)]
        if check_memory:
            warnings_.append(memory_warning(estimate_training_memory(trainer, batch_size)))
        for warning in filter(None, warnings_):
            print(f"smis train: warning: {warning}", file=sys.stderr)
        state, completed = restore(trainer, out, resume_from, steps)
        if state is None and config.init_from is not None:
            _start_from_preset(trainer, config.init_from)
        checkpoint = ResumableCheckpoint(
            out,
            checkpoint_every,
            wall_time_before=(state or {}).get("wall_time_s", 0.0),
            initial_step=completed,
            final_step=stop,
        )
        callbacks = [checkpoint, *_tensorboard_logger(run, out / "logs", log_every, verbose)]
        start = time.time()
        with signals_save(checkpoint, verbose) if handle_sigint else contextlib.nullcontext():
            # Each part reads the data stream from its own first unseen sample; a run resumed
            # inside a period first completes that period, so that it then saves at the same
            # steps as an uninterrupted run.
            for first, epochs, steps_per_epoch in fit_parts(completed, stop, checkpoint_every):
                if checkpoint.bad_loss is not None or checkpoint.interrupted is not None:
                    break
                initial = first // checkpoint_every if steps_per_epoch == checkpoint_every else 0
                trainer.fit(
                    _dataset(run, first * batch_size),
                    epochs=initial + epochs,
                    initial_epoch=initial,
                    steps_per_epoch=steps_per_epoch,
                    callbacks=callbacks,
                    shuffle=False,
                    verbose=verbose,
                )
        raise_if_stopped(checkpoint, out)
        if stop < steps:
            return None
        return _export(trainer, run, out, command, completed, time.time() - start, options)


def _checked(config: RunConfig, options: RunOptions, out: Path) -> tuple[RunConfig, int]:
    """The settings checked (before any model is built), the model's name completed, the loss
    weights normalized; and the step the run stops at this time."""
    for name in ("steps", "batch_size", "checkpoint_every"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer; received {name}={value!r}")
    require_non_negative_int("code_prior_samples", options.code_prior_samples)
    steps, stop_at = config.steps, options.stop_at
    stop = steps if stop_at is None else stop_at
    if isinstance(stop, bool) or not isinstance(stop, int) or not 0 < stop <= steps:
        raise ValueError(
            f"`stop_at` must be an integer in [1, steps={steps}]; received {stop_at!r}"
        )
    if config.dtype_policy not in DTYPE_POLICIES:
        raise ValueError(
            f"`dtype_policy` must be one of {DTYPE_POLICIES}; received {config.dtype_policy!r}"
        )
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file, not a folder")
    if stop_at is not None:
        check_not_past(out, stop)
    classes = dataset_facts(config.data).num_classes if config.data in DATASETS else None
    model = complete_architecture_name(config.model, classes or SHAPES64_CLASSES)
    check_run_arguments(model, config.data, config.data_dir)
    _check_init_from(config.init_from)
    weights = {
        name: require_loss_weight(name, getattr(config, name))
        for name in _fields(RunConfig)
        if name.endswith("_weight")
    }
    return dataclasses.replace(config, model=model, **weights), stop


def _check_init_from(init_from: str | None) -> None:
    """A clear error, before any model is built, for an `init_from` that is no preset or
    ships no discriminator."""
    if init_from is None:
        return
    from smis_layers.presets import DISCRIMINATOR_WEIGHTS_FILE, resolve_preset

    try:
        directory = resolve_preset(init_from)
    except (FileNotFoundError, ValueError) as error:
        raise ValueError(f"`init_from` must be a preset; {error}") from None
    if not (directory / DISCRIMINATOR_WEIGHTS_FILE).is_file():
        raise ValueError(
            f"`init_from` {init_from!r} ships no discriminator ({directory} has no "
            f"{DISCRIMINATOR_WEIGHTS_FILE}); a run needs both networks"
        )


def _start_from_preset(trainer, init_from: str) -> None:
    """Sets the new run's generator and discriminator weights to the preset's (a generator
    with `region_texture_code` may start from one without it or with fewer waves:
    `weights_for_texture_code`)."""
    from smis_layers.models.region_codes import weights_for_texture_code
    from smis_layers.presets import load_preset, load_preset_discriminator

    networks = (
        ("generator", trainer.generator, load_preset, "--model"),
        ("discriminator", trainer.discriminator, load_preset_discriminator, "--d-*"),
    )
    for name, network, load, settings in networks:
        source = load(init_from)
        weights = source.get_weights()
        if getattr(network, "region_texture_code", 0) > getattr(source, "region_texture_code", 0):
            weights = weights_for_texture_code(source, network)
        shapes = [tuple(w.shape) for w in network.get_weights()]
        if shapes != [tuple(w.shape) for w in weights]:
            raise ValueError(
                f"`init_from` {init_from!r}: the run's {name} ({len(shapes)} weights) is not "
                f"the preset's ({len(weights)} weights, other shapes); give the {settings} "
                "settings of the preset's metadata.json (training section)"
            )
        network.set_weights(weights)


def _dtype_policy_warning(dtype_policy: str) -> str | None:
    """A warning for a 16-bit policy on a CPU that emulates 16-bit arithmetic, else None."""
    device = training_device()
    if dtype_policy == "float32" or not device.startswith("CPU") or not cpu_lacks_16bit_kernels():
        return None
    return (
        f"--dtype-policy {dtype_policy} on {device[len('CPU: ') :]}: without AVX-512 BF16 / FP16 "
        "or AMX, 16-bit convolutions are emulated and the training step runs several times "
        "slower than in float32 (groupdnet_shapes64: 13.5 s against 2.1 s on an AVX2 AMD "
        "EPYC; docs/benchmarks.md). Train in float32 on this machine"
    )


def _feature_extractor(vgg_weights: str | None, verbose: int):
    """The VGG19 feature extractor of the perceptual loss, or None (with a message)."""
    if vgg_weights:
        from smis_layers.training.perceptual import vgg19_feature_extractor

        return vgg19_feature_extractor(vgg_weights)
    if verbose:
        print("smis train: no --vgg-weights given; training without the perceptual loss.")
    return None


def _export(
    trainer, run: dict, out: Path, command, completed: int, elapsed: float, options: RunOptions
) -> Path:
    """Writes `out/preset` (the float32 generator and discriminator, the code prior, the
    training metadata) and `out/samples.png`; returns the preset folder."""
    final = read_state(out) or {}
    preset = out / "preset"
    generator = float32_copy(trainer.generator)
    discriminator = float32_copy(trainer.discriminator)
    if options.code_prior_samples:
        generator.code_prior = fit_code_prior(generator, run, options.code_prior_samples)
    save_preset(
        generator,
        preset,
        metadata={
            "label_convention": data_label_convention(run["data"]),
            "training": {
                **run,
                "command": command,
                "phases": json.loads((out / RUN_FILE).read_text()).get("phases", []),
                "completed_steps": final.get("completed_steps", completed),
                "wall_time_s": final.get("wall_time_s"),
                "wall_time_s_this_session": round(elapsed, 1),
                "keras_backend": keras.backend.backend(),
                "device": training_device(),
                "final_losses": final.get("logs", {}),
            },
        },
        overwrite=True,
        discriminator=discriminator,
    )
    write_sample_sheet(generator, run, out / "samples.png")
    atomic_write_bytes(preset / SAMPLES_FILE, (out / "samples.png").read_bytes())
    return preset


def _tensorboard_logger(run: dict, log_dir: Path, every: int, verbose: int) -> list:
    """The ImageGridLogger callback, or nothing (with a message) without tensorboard."""
    if every <= 0:
        return []
    from smis_layers.training.callbacks import ImageGridLogger

    batch = sample_batch(run, 4)
    try:
        return [ImageGridLogger(log_dir, batch["images"], batch["masks"], every_n_steps=every)]
    except ImportError as error:
        if verbose:
            print(f"smis train: no TensorBoard logging ({error})")
        return []
