"""Resumable training runs: `smis train` and `train_run`.

A run folder holds `run.json` (the run's arguments, fixed at creation), checkpoints
`checkpoint-<step>.weights.h5` (the trainer's weights: generator, discriminator, both
optimizers) each with its `checkpoint-<step>.state.json` (the step, the sampling seed state,
the checkpoint's sha256), and `state.json` naming the last complete checkpoint. Every file is
written to a temporary name and renamed, so a kill at any moment leaves the previous checkpoint
and state readable; rerunning the same command resumes from `state.json` with the data stream
positioned at the next unseen sample.

Safety:

- SIGINT (Ctrl+C) or SIGTERM during `fit` saves a checkpoint at the end of the current step
  and raises `TrainingInterrupted` (`smis train` exits with status 130 / 143 naming the
  checkpoint); rerunning resumes at exactly that step, also in the middle of a
  `checkpoint_every` period. A second signal aborts at once (the previous checkpoint stays).
- A NaN/Inf loss or weight stops training without saving (`NonFiniteLossError`), so the last
  checkpoint on disk is the last good one.
- A checkpoint that is missing, truncated or corrupted (sha256 or HDF5 check) raises
  `CheckpointError` naming it and the previous checkpoint, which `resume_from` (`smis train
  --resume-from`) resumes from.
- Before training, the memory a step needs (parameters, gradients, Adam slots, activations at
  the batch size) is estimated and compared with the memory available to the process; a run
  that will not fit gets a warning (`estimate_training_memory`, `available_memory_bytes`).
- An `out` folder that exists and is not a run folder is refused unless `overwrite=True`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np

from smis_layers.data.datasets import DATASETS, dataset_facts, datasets_with_instances
from smis_layers.data.folders import DATASET_CLASSES
from smis_layers.data.labels import data_label_convention
from smis_layers.models.architectures import SHAPES64_CLASSES, complete_architecture_name
from smis_layers.ops.checks import (
    require_loss_weight,
    require_non_negative_int,
    require_positive_int,
)
from smis_layers.presets import (
    SAMPLES_FILE,
    atomic_save_weights,
    atomic_write_bytes,
    save_preset,
)
from smis_layers.training.preflight import check_run_arguments, verify_run_data

STATE_FILE = "state.json"


class ArchitectureFacts(NamedTuple):
    image_size: tuple[int, int]
    num_classes: int
    use_instance_edges: bool


RUN_FILE = "run.json"


class NonFiniteLossError(RuntimeError):
    """Raised when a training loss (or a weight) becomes NaN or infinite."""


class CheckpointError(ValueError):
    """A run's checkpoint is missing, truncated or corrupted; the message names it and the
    previous checkpoint to resume from."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped training after saving a checkpoint at the current step.

    Attributes:
        checkpoint: the checkpoint written (Path).
        step: the completed steps it holds.
        signal_number: the signal received (`signal.SIGINT` or `signal.SIGTERM`).
    """

    def __init__(self, checkpoint: Path, step: int, signal_number: int = signal.SIGINT):
        super().__init__(f"training interrupted; checkpoint {checkpoint} holds step {step}")
        self.checkpoint = Path(checkpoint)
        self.step = int(step)
        self.signal_number = int(signal_number)


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{int(step)}.weights.h5"


def checkpoint_state_name(step: int) -> str:
    return f"checkpoint-{int(step)}.state.json"


def _checkpoint_step(path: Path) -> int:
    return int(path.name.split("-")[1].split(".")[0])


def list_checkpoints(directory: Path) -> list[Path]:
    """The run's checkpoint weight files, oldest first."""
    return sorted(Path(directory).glob("checkpoint-*.weights.h5"), key=_checkpoint_step)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ResumableCheckpoint(keras.callbacks.Callback):
    """Saves the trainer atomically every `steps_per_epoch` steps (at each epoch end), at
    `final_step` (the run's last step, also when it is not a multiple of `steps_per_epoch`), at
    the current step when an interrupt is requested (`request_interrupt`, set by the SIGINT /
    SIGTERM handler of `train_run`), and stops on NaN/Inf losses or weights without saving, so the
    last checkpoint on disk is always a good one to resume from.

    Steps are counted from `initial_step` (the completed steps of a resumed run), so a run
    resumed in the middle of a period saves at the same steps as an uninterrupted one.
    """

    def __init__(
        self,
        directory: Path,
        steps_per_epoch: int,
        keep: int = 2,
        wall_time_before: float = 0.0,
        initial_step: int = 0,
        final_step: int | None = None,
    ):
        super().__init__()
        self.final_step = final_step
        self.directory = Path(directory)
        self.steps_per_epoch = steps_per_epoch
        self.keep = keep
        self.wall_time_before = wall_time_before
        self.started = time.time()
        self.step = int(initial_step)
        self.saved_step = None
        self.bad_loss = None
        self.interrupt_requested = False
        self.interrupt_signal = signal.SIGINT
        self.interrupted = None  # (checkpoint path, step) once an interrupt was honoured

    def request_interrupt(self, signal_number: int = signal.SIGINT) -> None:
        """Stop after the current step, saving a checkpoint (safe to call from a signal
        handler: it only sets flags)."""
        self.interrupt_requested = True
        self.interrupt_signal = int(signal_number)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        for name, value in (logs or {}).items():
            if not math.isfinite(float(value)):
                self.bad_loss = (name, float(value), self.step)
                self.model.stop_training = True
                return
        if self.interrupt_requested and self.interrupted is None:
            path = self.save(logs)
            self.model.stop_training = True
            if path is not None:
                self.interrupted = (path, self.step)

    def on_epoch_end(self, epoch, logs=None):
        if self.bad_loss is not None or self.interrupted is not None:
            return
        if self.step % self.steps_per_epoch == 0 or self.step == self.final_step:
            self.save(logs)

    def save(self, logs=None) -> Path | None:
        """Writes `checkpoint-<step>` (weights and its state) and `state.json`; returns the
        weights' path, or None (and stops training) when a weight is not finite."""
        step = self.step
        if self.saved_step == step:
            return self.directory / checkpoint_name(step)
        bad = _first_non_finite_variable(self.model)
        if bad is not None:
            self.bad_loss = (f"weight {bad}", math.nan, step)
            self.model.stop_training = True
            return None
        path = self.directory / checkpoint_name(step)
        atomic_save_weights(self.model, path)
        state = {
            "completed_steps": step,
            "checkpoint": path.name,
            "sha256": _sha256(path),
            # Keras does not save SeedGenerator states with the weights; the sampling stream
            # must continue where it was for a resumed run to equal an uninterrupted one.
            "seed_state": _seed_state(self.model),
            "wall_time_s": round(self.wall_time_before + time.time() - self.started, 1),
            "logs": {k: float(v) for k, v in (logs or {}).items()},
        }
        data = json.dumps(state, indent=2).encode()
        atomic_write_bytes(self.directory / checkpoint_state_name(step), data)
        atomic_write_bytes(self.directory / STATE_FILE, data)
        self.saved_step = step
        for old in list_checkpoints(self.directory)[: -self.keep]:
            old.unlink(missing_ok=True)
            (self.directory / checkpoint_state_name(_checkpoint_step(old))).unlink(missing_ok=True)
        return path


def fit_parts(completed: int, stop: int, every: int) -> list[tuple[int, int, int]]:
    """The `fit` calls that take a run from step `completed` to step `stop`, checkpointing
    every `every` steps and at `stop`: `(first step, epochs, steps per epoch)` for the rest of
    the current period, the whole periods, and the last, shorter period.

    Example:

    >>> fit_parts(3, 14, 4)  # steps 3, then 4..11 in two periods, then 12..13
    [(3, 1, 1), (4, 2, 4), (12, 1, 2)]
    """
    parts = []
    if completed < stop and completed % every:
        count = min(every - completed % every, stop - completed)
        parts.append((completed, 1, count))
        completed += count
    periods = (stop - completed) // every
    if periods:
        parts.append((completed, periods, every))
        completed += periods * every
    if completed < stop:
        parts.append((completed, 1, stop - completed))
    return parts


def _first_non_finite_variable(trainer) -> str | None:
    """The path of the first trainable variable holding NaN/Inf, or None."""
    for variable in getattr(trainer, "trainable_variables", []):
        value = keras.ops.convert_to_numpy(variable)
        if not np.all(np.isfinite(value)):
            return variable.path
    return None


def _seed_state(trainer) -> list[int]:
    return [int(v) for v in keras.ops.convert_to_numpy(trainer.generator.seed_generator.state)]


def read_state(directory: Path) -> dict | None:
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


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

    Example:

    >>> generator, discriminator, run, state = load_run_models("runs/groupdnet_shapes64")
    >>> state["completed_steps"], generator.generate(masks, seed=0).shape
    """
    out = Path(out)
    if not (out / RUN_FILE).is_file():
        raise FileNotFoundError(f"{out} is not a smis train run folder (no {RUN_FILE})")
    run = json.loads((out / RUN_FILE).read_text())
    state = read_state(out)
    if state is None:
        raise CheckpointError(f"{out} holds no checkpoint yet (no {STATE_FILE})")
    with global_dtype_policy(run.get("dtype_policy", "float32")):
        trainer = _build_trainer(run)
        _load_checkpoint(trainer, out, state)
    return RunModels(
        float32_copy(trainer.generator), float32_copy(trainer.discriminator), run, state
    )


def _build_trainer(run: dict, feature_extractor=None):
    from smis_layers.models import MultiScaleDiscriminator, build_architecture
    from smis_layers.training.schedules import ConstantThenLinearDecay
    from smis_layers.training.trainer import SMISTrainer, ttur_optimizer

    keras.utils.set_random_seed(run["seed"])
    generator = build_architecture(run["model"], seed=run["seed"])
    discriminator = MultiScaleDiscriminator(
        num_scales=run["d_scales"], num_layers=run["d_layers"], base_filters=run["d_filters"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = SMISTrainer(generator, discriminator, feature_extractor=feature_extractor)
    steps = run["steps"]
    constant = steps // 2

    def optimizer(rate):
        return ttur_optimizer(ConstantThenLinearDecay(rate, constant, max(1, steps - constant)))

    trainer.compile(
        g_optimizer=optimizer(run["lr_g"]),
        d_optimizer=optimizer(run["lr_d"]),
        jit_compile=run["jit_compile"],
        reconstruction_weight=run.get("reconstruction_weight", 0.0),
        kl_weight=run.get("kl_weight", 0.05),
        prior_gan_weight=run.get("prior_gan_weight", 0.0),
    )
    return trainer


def _dataset(run: dict, start_sample: int):
    if run["data"] == "synthetic":
        from smis_layers.data.synthetic import (
            SyntheticShapes,
            synthetic_batches,
            synthetic_tf_dataset,
        )

        data = SyntheticShapes(
            image_size=run["image_size"], num_classes=run["num_classes"], seed=run["seed"]
        )
        if keras.backend.backend() != "tensorflow":
            # Keras takes a Python generator's elements as (inputs,) tuples.
            return ((batch,) for batch in synthetic_batches(data, run["batch_size"], start_sample))
        return synthetic_tf_dataset(data, run["batch_size"], start=start_sample)
    if keras.backend.backend() != "tensorflow":
        raise NotImplementedError(
            f"--data {run['data']}: dataset folders are read with tf.data, which needs "
            f"KERAS_BACKEND=tensorflow (current: {keras.backend.backend()}); the synthetic "
            "benchmark trains on every backend of SMISTrainer"
        )
    return _run_folder_dataset(run, run["batch_size"], flip=True, start=start_sample)


@functools.cache
def _architecture(model: str) -> ArchitectureFacts:
    """What a run needs to know of an architecture, from one throwaway build per name."""
    from smis_layers.models import build_architecture

    probe = build_architecture(model)
    return ArchitectureFacts(tuple(probe.image_size), probe.num_classes, probe.use_instance_edges)


def _run_folder_dataset(run: dict, batch_size: int, **kwargs):
    """The run's dataset folder (train split) at the model's image size."""
    from smis_layers.data.folders import folder_dataset

    facts = _architecture(run["model"])
    return folder_dataset(
        run["data"],
        run["data_dir"],
        "train",
        facts.image_size,
        batch_size,
        seed=run["seed"],
        instances=facts.use_instance_edges if dataset_facts(run["data"]).instance_edges else None,
        **kwargs,
    )


def _checked_data_dir(data: str, data_dir: str | Path | None, model: str, probe) -> str | None:
    """The absolute dataset folder for run.json, after checking it fits `data` and the model."""
    if data == "synthetic":
        if data_dir is not None:
            raise ValueError(
                f"--data-dir is read only with --data {' or '.join(DATASETS)}; the synthetic "
                "benchmark is generated"
            )
        return None
    if data not in DATASET_CLASSES:
        raise ValueError(
            f"Unknown --data {data!r}; available: synthetic, {sorted(DATASET_CLASSES)}"
        )
    if data_dir is None:
        raise ValueError(f"--data {data} needs --data-dir, the dataset's root folder")
    classes = DATASET_CLASSES[data]
    if probe.num_classes != classes:
        raise ValueError(
            f"Model {model!r} has {probe.num_classes} classes but {data} label maps have "
            f"{classes}; choose a model built for {classes} classes"
        )
    if probe.use_instance_edges and not dataset_facts(data).instance_edges:
        raise ValueError(
            f"Model {model!r} conditions on instance edges, but {data} has no instance maps "
            f"(only {', '.join(datasets_with_instances())} has them)"
        )
    path = Path(data_dir).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"--data-dir {data_dir}: no such folder")
    return str(path)


def train_run(
    model: str,
    out: str | Path,
    steps: int,
    batch_size: int = 16,
    data: str = "synthetic",
    data_dir: str | Path | None = None,
    checkpoint_every: int = 100,
    seed: int = 0,
    lr_g: float = 1e-4,
    lr_d: float = 4e-4,
    d_scales: int = 2,
    d_layers: int = 4,
    d_filters: int = 32,
    reconstruction_weight: float = 0.0,
    kl_weight: float = 0.05,
    jit_compile: str | bool = "auto",
    vgg_weights: str | None = None,
    command: str | None = None,
    verbose: int = 1,
    log_every: int = 100,
    overwrite: bool = False,
    resume_from: str | None = None,
    handle_sigint: bool = True,
    check_memory: bool = True,
    extend: bool = False,
    stop_at: int | None = None,
    dtype_policy: str = "float32",
    prior_gan_weight: float = 0.0,
    code_prior_samples: int = 2048,
    verify_data: bool = True,
) -> Path | None:
    """Trains (or resumes) a run and exports its generator as a preset folder `out/preset`.

    Returns the preset folder (None when `stop_at` stopped the run before `steps`). Rerunning
    with the same arguments resumes from the last complete checkpoint; different arguments for
    an existing run folder are an error.

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
    out = Path(out)
    for name, value in (
        ("steps", steps),
        ("batch_size", batch_size),
        ("checkpoint_every", checkpoint_every),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer; received {name}={value!r}")
    code_prior_samples = require_non_negative_int("code_prior_samples", code_prior_samples)
    stop = steps if stop_at is None else stop_at
    if isinstance(stop, bool) or not isinstance(stop, int) or not 0 < stop <= steps:
        raise ValueError(
            f"`stop_at` must be an integer in [1, steps={steps}]; received {stop_at!r}"
        )
    if dtype_policy not in DTYPE_POLICIES:
        raise ValueError(
            f"`dtype_policy` must be one of {DTYPE_POLICIES}; received {dtype_policy!r}"
        )
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file, not a folder")
    if stop_at is not None:
        _check_not_past(out, stop)
    model = complete_architecture_name(model, DATASET_CLASSES.get(data, SHAPES64_CLASSES))
    check_run_arguments(model, data, data_dir)  # before any model is built
    probe = _architecture(model)
    run = {
        "model": model,
        "steps": int(steps),
        "batch_size": int(batch_size),
        "data": data,
        "data_dir": _checked_data_dir(data, data_dir, model, probe),
        "checkpoint_every": int(checkpoint_every),
        "seed": int(seed),
        "lr_g": lr_g,
        "lr_d": lr_d,
        "d_scales": d_scales,
        "d_layers": d_layers,
        "d_filters": d_filters,
        "reconstruction_weight": require_loss_weight(
            "reconstruction_weight", reconstruction_weight
        ),
        "kl_weight": require_loss_weight("kl_weight", kl_weight),
        "jit_compile": jit_compile,
        "vgg_weights": vgg_weights,
        "image_size": probe.image_size[0],
        "num_classes": probe.num_classes,
    }
    prior_gan_weight = require_loss_weight("prior_gan_weight", prior_gan_weight)
    if dtype_policy != "float32":  # absent means float32: run folders from before the option
        run["dtype_policy"] = dtype_policy
    if prior_gan_weight:  # absent means 0, likewise
        run["prior_gan_weight"] = prior_gan_weight
    if verify_data and data != "synthetic":
        verify_run_data(data, run["data_dir"], probe.use_instance_edges, progress=verbose > 0)
    run_file = out / RUN_FILE
    if run_file.is_file():
        previous = json.loads(run_file.read_text())
        # Settings recorded only when not at their default (dtype_policy) differ when absent.
        keys = [*run, *(k for k in DEFAULT_OMITTED if k in previous and k not in run)]
        changed = {k: (previous.get(k), run.get(k)) for k in keys if previous.get(k) != run.get(k)}
        if changed and extend and not overwrite:
            run = _extended_run(out, previous, run, changed, command)
            atomic_write_bytes(run_file, json.dumps(run, indent=2).encode())
            changed = {}
        if changed and not overwrite:
            raise ValueError(
                f"{out} holds a run with other arguments {changed} (previous, new); use another "
                "--out folder, the same arguments to resume, --extend to continue it with more "
                "steps or other training settings, or --overwrite to restart it"
            )
        if changed:
            print(f"smis train: --overwrite: restarting the run in {out} from scratch")
            _remove_run_files(out)
            atomic_write_bytes(run_file, json.dumps({**run, "command": command}, indent=2).encode())
    else:
        if out.is_dir() and any(out.iterdir()) and not overwrite:
            shown = ", ".join(sorted(p.name for p in out.iterdir())[:5])
            raise FileExistsError(
                f"--out {out} exists and is not a smis train run folder (no {RUN_FILE}; it holds "
                f"{shown}{', ...' if len(list(out.iterdir())) > 5 else ''}); choose a new or empty "
                "folder, or pass --overwrite to write the run into it"
            )
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(run_file, json.dumps({**run, "command": command}, indent=2).encode())

    with global_dtype_policy(run.get("dtype_policy", "float32")):
        feature_extractor = None
        if vgg_weights:
            from smis_layers.training.perceptual import vgg19_feature_extractor

            feature_extractor = vgg19_feature_extractor(vgg_weights)
        elif verbose:
            print("smis train: no --vgg-weights given; training without the perceptual loss.")
        trainer = _build_trainer(run, feature_extractor)
        if check_memory:
            warning = memory_warning(estimate_training_memory(trainer, batch_size))
            if warning:
                print(f"smis train: warning: {warning}", file=sys.stderr)
        state = _resume_state(out, resume_from)
        completed = 0
        if state is not None:
            _load_checkpoint(trainer, out, state)
            trainer.generator.seed_generator.state.assign(
                np.asarray(state["seed_state"], dtype=trainer.generator.seed_generator.state.dtype)
            )
            completed = int(state["completed_steps"])
            if completed > steps:
                raise CheckpointError(
                    f"{out / state['checkpoint']} holds step {completed}, past --steps {steps}"
                )
            print(f"smis train: resuming {out} at step {completed}/{steps}")
        checkpoint = ResumableCheckpoint(
            out,
            checkpoint_every,
            wall_time_before=(state or {}).get("wall_time_s", 0.0),
            initial_step=completed,
            final_step=stop,
        )
        callbacks = [checkpoint, *_tensorboard_logger(run, out / "logs", log_every, verbose)]
        start = time.time()
        with _signals_save(checkpoint, verbose) if handle_sigint else contextlib.nullcontext():
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
        if checkpoint.bad_loss is not None:
            name, value, step = checkpoint.bad_loss
            last = read_state(out)
            good = (
                f"{out / last['checkpoint']} (step {last['completed_steps']})"
                if last
                else "none (no checkpoint was written before)"
            )
            raise NonFiniteLossError(
                f"{name} became {value} at step {step}; training stopped without saving that step. "
                f"The last good checkpoint is {good}."
            )
        if checkpoint.interrupted is not None:
            path, step = checkpoint.interrupted
            raise TrainingInterrupted(path, step, checkpoint.interrupt_signal)
        if stop < steps:
            return None
        elapsed = time.time() - start
        final = read_state(out) or {}
        preset = out / "preset"
        generator, discriminator = (
            float32_copy(trainer.generator),
            float32_copy(trainer.discriminator),
        )
        if code_prior_samples:
            generator.code_prior = fit_code_prior(generator, run, code_prior_samples)
        save_preset(
            generator,
            preset,
            metadata={
                "label_convention": data_label_convention(run["data"]),
                "training": {
                    **run,
                    "command": command,
                    "phases": json.loads(run_file.read_text()).get("phases", []),
                    "completed_steps": final.get("completed_steps", completed),
                    "wall_time_s": final.get("wall_time_s"),
                    "wall_time_s_this_session": round(elapsed, 1),
                    "keras_backend": keras.backend.backend(),
                    "device": _training_device(),
                    "final_losses": final.get("logs", {}),
                },
            },
            overwrite=True,
            discriminator=discriminator,
        )
        write_sample_sheet(generator, run, out / "samples.png")
        atomic_write_bytes(preset / SAMPLES_FILE, (out / "samples.png").read_bytes())
        return preset


DTYPE_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
#: run.json settings written only when they differ from their default.
DEFAULT_OMITTED = ("dtype_policy", "prior_gan_weight")


@contextlib.contextmanager
def global_dtype_policy(name: str) -> Iterator[None]:
    """Keras' global dtype policy set to `name` for the block (every layer built in it takes
    the policy), the previous one restored after.

    Example:

    >>> with global_dtype_policy("mixed_bfloat16"):
    ...     generator = build_architecture("groupdnet_shapes64")
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def float32_copy(model: keras.Model) -> keras.Model:
    """`model` itself when it is float32, else the same network rebuilt with the float32
    policy holding the same (float32) weights: what a preset ships.

    Example:

    >>> float32_copy(generator).save_to_preset("runs/g64/preset")
    """
    if model.dtype_policy.name == "float32":
        return model
    config = keras.saving.serialize_keras_object(model)
    config["config"]["dtype"] = "float32"
    with global_dtype_policy("float32"):
        copy = keras.saving.deserialize_keras_object(config, safe_mode=True)
    copy.set_weights(model.get_weights())
    return copy


def _training_device() -> str:
    """The accelerator the backend trains on (its name), else the CPU and its core count."""
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    elif backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    elif backend == "jax":
        import jax

        if jax.default_backend() != "cpu":
            return str(jax.devices()[0].device_kind)
    return f"CPU ({os.cpu_count()} logical cores)"


# Settings `train_run(extend=True)` may change in an existing run; the others fix what the
# checkpoints hold (architecture, discriminator) or the data stream they have consumed.
EXTENDABLE = (
    "steps",
    "lr_g",
    "lr_d",
    "reconstruction_weight",
    "kl_weight",
    "prior_gan_weight",
    "jit_compile",
    "vgg_weights",
)


def _extended_run(out: Path, previous: dict, run: dict, changed: dict, command) -> dict:
    """run.json's content for continuing `previous` with `run`'s settings (`extend=True`)."""
    fixed = {k: v for k, v in changed.items() if k not in EXTENDABLE}
    if fixed:
        raise ValueError(
            f"--extend cannot change {fixed} (previous, new) of the run in {out}: only "
            f"{', '.join(EXTENDABLE)} can change; use another --out folder for the others"
        )
    state = read_state(out)
    completed = int(state["completed_steps"]) if state else 0
    if run["steps"] < completed:
        raise ValueError(
            f"--extend: `steps` must be at least the {completed} steps the run in {out} has "
            f"completed; received steps={run['steps']}"
        )
    phases = list(previous.get("phases", []))
    started = phases[-1]["ended_at_step"] if phases else 0
    if completed > started:  # settings replaced before they trained a step leave no phase
        ended = {k: v for k, v in previous.items() if k != "phases"}
        phases.append({**ended, "ended_at_step": completed})
    return {**run, "command": command, "phases": phases}


def _check_not_past(out: Path, stop: int) -> None:
    """Refuses a `stop_at` before the steps the run in `out` has already completed."""
    try:
        state = read_state(out) if out.is_dir() else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return  # reported with its remedy when the run is resumed
    if state and int(state["completed_steps"]) > stop:
        raise ValueError(
            f"`stop_at` ({stop}) is before step {state['completed_steps']}, which the run in "
            f"{out} has already completed"
        )


def _remove_run_files(out: Path) -> None:
    """Deletes what `train_run` wrote in a run folder (for --overwrite of another run)."""
    for path in [*out.glob("checkpoint-*"), out / STATE_FILE, out / "samples.png"]:
        path.unlink(missing_ok=True)
    for folder in (out / "preset", out / "logs"):
        if folder.is_dir():
            shutil.rmtree(folder)


@contextlib.contextmanager
def _signals_save(checkpoint: ResumableCheckpoint, verbose: int) -> Iterator[None]:
    """While active, the first SIGINT or SIGTERM (what schedulers send before killing a job)
    asks `checkpoint` to save and stop after the current step; the handlers then step aside, so
    a second signal acts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.getsignal(number) for number in signals}
    if previous[signal.SIGINT] is None:  # installed from C: Python's default instead
        previous[signal.SIGINT] = signal.default_int_handler
    if previous[signal.SIGTERM] is None:
        previous[signal.SIGTERM] = signal.SIG_DFL

    def restore():
        for number, handler in previous.items():
            signal.signal(number, handler)

    def handler(signum, frame):
        checkpoint.request_interrupt(signum)
        restore()
        print(
            f"\nsmis train: {signal.Signals(signum).name} received; saving a checkpoint after "
            "the current step (send it again to stop at once without saving)",
            file=sys.stderr,
            flush=True,
        )

    for number in signals:
        signal.signal(number, handler)
    try:
        yield
    finally:
        restore()


def _resume_state(out: Path, resume_from: str | None) -> dict | None:
    """The state to resume from: state.json, or the state of the checkpoint `resume_from`."""
    if resume_from is None:
        try:
            return read_state(out)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CheckpointError(
                f"{out / STATE_FILE} is not valid JSON ({error}); {_previous_hint(out, None)}"
            ) from None
    name = Path(resume_from).name
    if not name.endswith(".weights.h5") or not name.startswith("checkpoint-"):
        raise ValueError(
            f"--resume-from must name a checkpoint-<step>.weights.h5 file of {out}; received "
            f"{resume_from!r}"
        )
    state_path = out / checkpoint_state_name(_checkpoint_step(Path(name)))
    if not (out / name).is_file():
        raise CheckpointError(
            f"--resume-from {name}: no such checkpoint in {out}; available: "
            f"{[p.name for p in list_checkpoints(out)] or 'none'}"
        )
    if not state_path.is_file():
        raise CheckpointError(
            f"--resume-from {name}: its state file {state_path} is missing, so the step and the "
            "sampling state it holds are unknown"
        )
    try:
        return json.loads(state_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{state_path} is not valid JSON: {error}") from None


def _previous_hint(out: Path, bad: Path | None) -> str:
    others = [p for p in list_checkpoints(out) if bad is None or p.name != bad.name]
    usable = [p for p in others if (out / checkpoint_state_name(_checkpoint_step(p))).is_file()]
    if bad is not None:
        usable = [p for p in usable if _checkpoint_step(p) < _checkpoint_step(bad)] or usable
    if not usable:
        return (
            "no other checkpoint is left to resume from: start over in a new --out folder "
            "(or pass --overwrite with other arguments)"
        )
    previous = usable[-1]
    return (
        f"the previous checkpoint is {previous.name}: resume from it by rerunning the same "
        f"command with --resume-from {previous.name} (train_run(resume_from=...))"
    )


def _load_checkpoint(trainer, out: Path, state: dict) -> None:
    """Loads the checkpoint `state` names, or raises CheckpointError naming it."""
    path = out / str(state.get("checkpoint", ""))
    if not path.is_file():
        raise CheckpointError(
            f"Checkpoint {path} (named in {out / STATE_FILE}) is missing; "
            f"{_previous_hint(out, path)}"
        )
    expected = state.get("sha256")
    if expected is not None:
        actual = _sha256(path)
        if actual != expected:
            raise CheckpointError(
                f"Checkpoint {path} is corrupted or truncated: its sha256 is {actual}, the state "
                f"recorded {expected}; {_previous_hint(out, path)}"
            )
    try:
        trainer.load_weights(path)
    except Exception as error:  # h5py OSError, Keras ValueError on a mismatched file
        raise CheckpointError(
            f"Checkpoint {path} cannot be read (truncated or corrupted?): "
            f"{type(error).__name__}: {error}; {_previous_hint(out, path)}"
        ) from None


# ---------------------------------------------------------------------------- memory
class MemoryEstimate(NamedTuple):
    """Bytes a training step needs, by part (`estimate_training_memory`)."""

    parameters: int
    gradients: int
    optimizer: int
    activations: int
    batch_size: int

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer + self.activations

    def describe(self) -> str:
        def gib(n):
            return f"{n / 2**30:.2f} GiB"

        return (
            f"about {gib(self.total)} (parameters {gib(self.parameters)}, gradients "
            f"{gib(self.gradients)}, Adam slots {gib(self.optimizer)}, activations at batch "
            f"{self.batch_size} {gib(self.activations)})"
        )


#: Activation memory of a training step per byte of forward outputs: the outputs kept for the
#: backward pass, their gradients and the temporaries of the backward kernels. Calibrated on
#: the shapes64 models against the measured peak RSS (tests/test_reliability.py).
ACTIVATION_FACTOR = 3.0


def _forward_output_bytes(trainer) -> int:
    """Bytes of every layer output (nested layers included) of one sample's generator (encoder
    and decoder) and discriminator forward passes, read from a TensorFlow trace: shapes only,
    nothing is executed, so no state (batch-norm statistics, seeds) changes."""
    import tensorflow as tf

    generator, discriminator = trainer.generator, trainer.discriminator
    height, width = generator.image_size
    total = 0
    original = keras.layers.Layer.__call__

    def recording_call(layer, *args, **kwargs):
        nonlocal total
        outputs = original(layer, *args, **kwargs)
        for tensor in keras.tree.flatten(outputs):
            shape = getattr(tensor, "shape", None)
            if shape is not None and None not in tuple(shape):
                itemsize = np.dtype(keras.backend.standardize_dtype(tensor.dtype)).itemsize
                total += int(np.prod(tuple(shape))) * itemsize
        return outputs

    def forward(images, segmap, z, condition, pair):
        generator.encode_segmap(images, segmap, training=False)
        generator.decode(z, condition, training=False)
        discriminator(pair, training=False)
        return tf.constant(0.0)

    def spec(*shape):
        return tf.TensorSpec((1, *shape), generator.compute_dtype)

    specs = (
        spec(height, width, 3),
        spec(height, width, generator.num_classes),
        spec(*generator.latent_shape),
        spec(height, width, generator.mask_channels),
        spec(height, width, generator.mask_channels + 3),
    )
    keras.layers.Layer.__call__ = recording_call
    try:
        tf.function(forward, autograph=False).get_concrete_function(*specs)
    finally:
        keras.layers.Layer.__call__ = original
    return total


def estimate_training_memory(trainer, batch_size: int) -> MemoryEstimate:
    """An order-of-magnitude estimate of the memory one training step of `trainer` needs.

    Parameters (generator and discriminator), as many bytes of gradients, Adam's two slots per
    trainable parameter, and activations: the bytes of every layer output of one sample's
    forward pass (generator encoder and decoder, discriminator, nested layers included; read
    from a trace, nothing is computed) times the batch size and `ACTIVATION_FACTOR` (outputs
    kept for the backward pass, their gradients, the second discriminator pass). The process's
    own footprint (the framework, the data pipeline) comes on top.
    """
    batch_size = int(batch_size)

    def nbytes(variables):
        return sum(
            int(np.prod(v.shape)) * np.dtype(keras.backend.standardize_dtype(v.dtype)).itemsize
            for v in variables
        )

    models = (trainer.generator, trainer.discriminator)
    weights = sum(nbytes(m.weights) for m in models)
    trainable = sum(nbytes(m.trainable_variables) for m in models)
    try:
        per_sample = _forward_output_bytes(trainer)
    except Exception:  # an architecture the symbolic probe cannot run: count nothing
        per_sample = 0
    if getattr(trainer, "loss_weights", {}).get("prior_gan", 0) > 0:
        per_sample *= 2  # a second decoder and discriminator pass (an upper bound)
    activations = int(per_sample * batch_size * ACTIVATION_FACTOR)
    return MemoryEstimate(weights, trainable, 2 * trainable, activations, batch_size)


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_memory_bytes() -> int | None:
    """Memory this process can still use: the smaller of the host's available memory
    (`MemAvailable` of /proc/meminfo, else sysconf) and the cgroup's limit minus its usage.
    None when unknown. `SMIS_MEMORY_LIMIT_BYTES` overrides it (tests, schedulers)."""
    override = os.environ.get("SMIS_MEMORY_LIMIT_BYTES")
    if override:
        return int(override)
    candidates = []
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    candidates.append(int(line.split()[1]) * 1024)
                    break
    except OSError:
        pass
    if not candidates:
        with contextlib.suppress(ValueError, OSError, AttributeError):
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 2**60:
            candidates.append(max(0, limit - usage))
            break
    return min(candidates) if candidates else None


def memory_warning(estimate: MemoryEstimate, available: int | None = None) -> str | None:
    """A warning when `estimate` exceeds the available memory (None when it fits, or when the
    step runs on a GPU, whose memory this does not read)."""
    available = available_memory_bytes() if available is None else available
    if available is None or estimate.total <= available:
        return None
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.config.list_logical_devices("GPU"):
            return None
    return (
        f"a training step of this configuration needs {estimate.describe()}, but only "
        f"{available / 2**30:.2f} GiB of memory are available: the run will probably be killed "
        "for lack of memory. Reduce --batch-size (activations scale with it) or free memory."
    )


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


def sample_batch(run: dict, count: int = 6) -> dict[str, np.ndarray]:
    """Fixed samples of the run's data for sample sheets: held-out synthetic indices, or the
    first `count` training samples of a dataset folder in file order."""
    if run["data"] == "synthetic":
        from smis_layers.data.synthetic import HELD_OUT_SEED, SyntheticShapes

        data = SyntheticShapes(
            image_size=run["image_size"],
            num_classes=run["num_classes"],
            seed=run["seed"] + HELD_OUT_SEED,
        )
        return data.batch(np.arange(count))
    return _first_folder_samples(run, count)


def _first_folder_samples(run: dict, count: int) -> dict[str, np.ndarray]:
    """The first `count` training samples of the run's dataset folder, in file order."""
    dataset = _run_folder_dataset(run, count, shuffle=False, repeat=False)
    iterator = iter(dataset)
    batch = {k: v.numpy() for k, v in next(iterator).items()}
    del iterator  # a live tf.data iterator over numpy_function can hang interpreter exit
    return batch


def fit_code_prior(generator, run: dict, count: int = 2048):
    """A `FittedCodePrior` of `generator`'s codes of the run's first `count` training samples
    (the synthetic training stream, or a dataset folder's train split in file order)."""
    from smis_layers.models.code_prior import FittedCodePrior

    count = require_positive_int("count", count)
    if run["data"] == "synthetic":
        from smis_layers.data.synthetic import SyntheticShapes

        data = SyntheticShapes(
            image_size=run["image_size"], num_classes=run["num_classes"], seed=run["seed"]
        )
        batch = data.batch(np.arange(count))
    else:
        batch = _first_folder_samples(run, count)
    return FittedCodePrior.fit(generator, batch["images"], batch["masks"])


def write_sample_sheet(generator, run: dict, path: Path, count: int = 6) -> Path:
    """mask | real | generated from the real image's code | two random codes."""
    from smis_layers.utils.images import colourize, image_grid, save_png, to_uint8

    batch = sample_batch(run, count)
    extra = {"instances": batch["instances"]} if "instances" in batch else {}
    mu, _ = generator.encode(batch["images"], batch["masks"])
    rows = [
        colourize(batch["masks"]),
        to_uint8(batch["images"]),
        to_uint8(generator.generate(batch["masks"], z=mu, **extra)),
        to_uint8(generator.generate(batch["masks"], seed=1, **extra)),
        to_uint8(generator.generate(batch["masks"], seed=2, **extra)),
    ]
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    try:
        save_png(image_grid(rows), tmp, scale=2)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
