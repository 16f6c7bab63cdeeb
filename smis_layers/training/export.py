"""The export of a training run: its float32 networks, the code prior fitted to the codes of
its training samples, and its sample sheet.

Examples:
    >>> generator, discriminator, run, state = load_run_models("runs/groupdnet_shapes64")
    >>> generator.code_prior = fit_code_prior(generator, run)
    >>> write_sample_sheet(generator, run, Path("samples.png"))
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np

from smis_layers.training.run_data import first_folder_samples, sample_batch
from smis_layers.utils.machine import cpu_description
from smis_layers.utils.validation import require_positive_int


@contextlib.contextmanager
def global_dtype_policy(name: str) -> Iterator[None]:
    """Keras' global dtype policy set to `name` for the block (every layer built in it takes
    the policy), the previous one restored after.

    Examples:
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

    Examples:
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


def training_device() -> str:
    """The accelerator the backend trains on (its name), else the CPU (model, kernel flags) and
    its core count."""
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
    return f"CPU: {cpu_description()}, {os.cpu_count()} logical cores"


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
        batch = first_folder_samples(run, count)
    return FittedCodePrior.fit(generator, batch["images"], batch["masks"])


def write_sample_sheet(generator, run: dict, path: Path, count: int = 6) -> Path:
    """labels | real | generated from the real image's code | two random codes."""
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
