"""Resumable training runs: `smis train` and `train_run`.

A run folder holds `run.json` (the run's arguments, fixed at creation), checkpoints
`checkpoint-<step>.weights.h5` (the trainer's weights: generator, discriminator, both
optimizers and the sampling seed state) and `state.json` naming the last complete checkpoint.
Every file is written to a temporary name and renamed, so a kill at any moment leaves the
previous checkpoint and state readable; rerunning the same command resumes from `state.json`
with the data stream positioned at the next unseen sample.
"""

from __future__ import annotations

import functools
import json
import math
import shutil
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np

from smis_layers.presets import (
    SAMPLES_FILE,
    atomic_save_weights,
    atomic_write_bytes,
    save_preset,
)

STATE_FILE = "state.json"


class ArchitectureFacts(NamedTuple):
    image_size: tuple[int, int]
    num_classes: int
    use_instance_edges: bool


RUN_FILE = "run.json"


class NonFiniteLossError(RuntimeError):
    """Raised when a training loss becomes NaN or infinite."""


class ResumableCheckpoint(keras.callbacks.Callback):
    """Saves the trainer atomically every epoch (= `steps_per_epoch` steps) and stops on NaN/Inf
    losses without saving, so the last good checkpoint stays the one to resume from."""

    def __init__(
        self, directory: Path, steps_per_epoch: int, keep: int = 2, wall_time_before: float = 0.0
    ):
        super().__init__()
        self.directory = Path(directory)
        self.steps_per_epoch = steps_per_epoch
        self.keep = keep
        self.wall_time_before = wall_time_before
        self.started = time.time()
        self.bad_loss = None

    def on_train_begin(self, logs=None):
        self.started = time.time()

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            if not math.isfinite(float(value)):
                self.bad_loss = (name, float(value), batch)
                self.model.stop_training = True
                return

    def on_epoch_end(self, epoch, logs=None):
        if self.bad_loss is not None:
            return
        step = (epoch + 1) * self.steps_per_epoch
        path = self.directory / f"checkpoint-{step}.weights.h5"
        atomic_save_weights(self.model, path)
        state = {
            "completed_steps": step,
            "checkpoint": path.name,
            # Keras does not save SeedGenerator states with the weights; the sampling stream
            # must continue where it was for a resumed run to equal an uninterrupted one.
            "seed_state": _seed_state(self.model),
            "wall_time_s": round(self.wall_time_before + time.time() - self.started, 1),
            "logs": {k: float(v) for k, v in (logs or {}).items()},
        }
        atomic_write_bytes(self.directory / STATE_FILE, json.dumps(state, indent=2).encode())
        checkpoints = sorted(
            self.directory.glob("checkpoint-*.weights.h5"),
            key=lambda p: int(p.stem.split("-")[1].split(".")[0]),
        )
        for old in checkpoints[: -self.keep]:
            old.unlink(missing_ok=True)


def _seed_state(trainer) -> list[int]:
    return [int(v) for v in keras.ops.convert_to_numpy(trainer.generator.seed_generator.state)]


def read_state(directory: Path) -> dict | None:
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


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
    )
    return trainer


def _dataset(run: dict, start_sample: int):
    if run["data"] == "synthetic":
        from smis_layers.data.synthetic import SyntheticShapes, synthetic_tf_dataset

        model_size = run["image_size"]
        data = SyntheticShapes(
            image_size=model_size, num_classes=run["num_classes"], seed=run["seed"]
        )
        return synthetic_tf_dataset(data, run["batch_size"], start=start_sample)

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
        instances=facts.use_instance_edges if run["data"] == "cityscapes" else None,
        **kwargs,
    )


def _checked_data_dir(data: str, data_dir: str | Path | None, model: str, probe) -> str | None:
    """The absolute dataset folder for run.json, after checking it fits `data` and the model."""
    from smis_layers.data.folders import DATASET_CLASSES

    if data == "synthetic":
        if data_dir is not None:
            raise ValueError(
                "--data-dir is read only with --data deepfashion, cityscapes or ade20k; the "
                "synthetic benchmark is generated"
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
    if probe.use_instance_edges and data != "cityscapes":
        raise ValueError(
            f"Model {model!r} conditions on instance edges, but {data} has no instance maps "
            "(only cityscapes does)"
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
) -> Path:
    """Trains (or resumes) a run and exports its generator as a preset folder `out/preset`.

    Returns the preset folder. Rerunning with the same arguments resumes from the last complete
    checkpoint; different arguments for an existing run folder are an error.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
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
        "reconstruction_weight": float(reconstruction_weight),
        "kl_weight": float(kl_weight),
        "jit_compile": jit_compile,
        "vgg_weights": vgg_weights,
        "image_size": probe.image_size[0],
        "num_classes": probe.num_classes,
    }
    if steps % checkpoint_every:
        raise ValueError(
            f"`steps` ({steps}) must be a multiple of `checkpoint_every` ({checkpoint_every})"
        )
    run_file = out / RUN_FILE
    if run_file.is_file():
        previous = json.loads(run_file.read_text())
        changed = {k: (previous.get(k), v) for k, v in run.items() if previous.get(k) != v}
        if changed:
            raise ValueError(
                f"{out} holds a run with other arguments {changed} (previous, new); use another "
                "--out folder or the same arguments to resume"
            )
    else:
        atomic_write_bytes(run_file, json.dumps({**run, "command": command}, indent=2).encode())

    feature_extractor = None
    if vgg_weights:
        from smis_layers.training.perceptual import vgg19_feature_extractor

        feature_extractor = vgg19_feature_extractor(vgg_weights)
    elif verbose:
        print("smis train: no --vgg-weights given; training without the perceptual loss.")
    trainer = _build_trainer(run, feature_extractor)
    state = read_state(out)
    completed = 0
    if state is not None:
        trainer.load_weights(out / state["checkpoint"])
        trainer.generator.seed_generator.state.assign(
            np.asarray(state["seed_state"], dtype=trainer.generator.seed_generator.state.dtype)
        )
        completed = state["completed_steps"]
        print(f"smis train: resuming {out} at step {completed}/{steps}")
    checkpoint = ResumableCheckpoint(
        out, checkpoint_every, wall_time_before=(state or {}).get("wall_time_s", 0.0)
    )
    callbacks = [checkpoint, *_tensorboard_logger(run, out / "logs", log_every, verbose)]
    start = time.time()
    if completed < steps:
        trainer.fit(
            _dataset(run, completed * batch_size),
            epochs=steps // checkpoint_every,
            initial_epoch=completed // checkpoint_every,
            steps_per_epoch=checkpoint_every,
            callbacks=callbacks,
            shuffle=False,
            verbose=verbose,
        )
    if checkpoint.bad_loss is not None:
        name, value, batch = checkpoint.bad_loss
        last = read_state(out)
        raise NonFiniteLossError(
            f"Loss {name} became {value} at batch {batch} of the current epoch; training "
            f"stopped. The last good checkpoint is {last['checkpoint'] if last else 'none'} "
            f"in {out}."
        )
    elapsed = time.time() - start
    final = read_state(out) or {}
    preset = out / "preset"
    save_preset(
        trainer.generator,
        preset,
        metadata={
            "training": {
                **run,
                "command": command,
                "completed_steps": final.get("completed_steps", completed),
                "wall_time_s": final.get("wall_time_s"),
                "wall_time_s_this_session": round(elapsed, 1),
                "final_losses": final.get("logs", {}),
            }
        },
        overwrite=True,
        discriminator=trainer.discriminator,
    )
    write_sample_sheet(trainer.generator, run, out / "samples.png")
    shutil.copyfile(out / "samples.png", preset / SAMPLES_FILE)
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


def sample_batch(run: dict, count: int = 6) -> dict[str, np.ndarray]:
    """Fixed samples of the run's data for sample sheets: held-out synthetic indices, or the
    first `count` training samples of a dataset folder in file order."""
    if run["data"] == "synthetic":
        from smis_layers.data.synthetic import SyntheticShapes

        data = SyntheticShapes(
            image_size=run["image_size"], num_classes=run["num_classes"], seed=run["seed"] + 1000
        )
        return data.batch(np.arange(count))
    dataset = _run_folder_dataset(run, count, shuffle=False, repeat=False)
    iterator = iter(dataset)
    batch = {k: v.numpy() for k, v in next(iterator).items()}
    del iterator  # a live tf.data iterator over numpy_function can hang interpreter exit
    return batch


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
    return save_png(image_grid(rows), path, scale=2)
