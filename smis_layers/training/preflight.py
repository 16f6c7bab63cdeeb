"""Checks of a training run that need no model: its arguments, then every file of its data.

`train_run` calls `check_run_arguments` before anything is built (building an architecture
takes seconds to tens of seconds) and `verify_run_data` before the training step is built, so
that a wrong name, backend or folder, and a bad file anywhere in the dataset, fail at once
rather than after a build or after some steps.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras


def check_run_arguments(model: str, data: str, data_dir: str | os.PathLike | None) -> None:
    """Raises a ValueError (or NotImplementedError for a backend) naming the argument, what
    was expected and what was given: the architecture name, the Keras backend, the data source
    and its folder."""
    from smis_layers.data.folders import DATASET_CLASSES
    from smis_layers.models.architectures import available_architectures, is_architecture
    from smis_layers.training.trainer import TRAINING_BACKENDS

    if not is_architecture(model):
        raise ValueError(
            f"Unknown --model {model!r}; available: {available_architectures()} (or a small "
            "model FAMILY:size=S,width=W for any dataset, see docs/training.md)"
        )
    backend = keras.backend.backend()
    if backend not in TRAINING_BACKENDS:
        raise NotImplementedError(
            f"smis train runs on the Keras backends {', '.join(TRAINING_BACKENDS)}; "
            f"KERAS_BACKEND is {backend!r}"
        )
    sources = ("synthetic", *DATASET_CLASSES)
    if data not in sources:
        raise ValueError(f"Unknown --data {data!r}; available: {', '.join(sources)}")
    if data == "synthetic":
        return
    if backend != "tensorflow":
        raise NotImplementedError(
            f"--data {data}: dataset folders are read with tf.data, which needs "
            f"KERAS_BACKEND=tensorflow (current: {backend}); the synthetic benchmark trains "
            "on every backend of SMISTrainer"
        )
    if data_dir is None:
        raise ValueError(f"--data {data} needs --data-dir, the dataset's root folder")
    if not Path(data_dir).expanduser().is_dir():
        raise FileNotFoundError(f"--data-dir {data_dir}: no such folder")


def verify_run_data(
    data: str,
    data_dir: str | os.PathLike,
    instances: bool | None = None,
    progress: bool = True,
) -> int:
    """Decodes and checks every training pair of a dataset folder (`verify_samples`: sizes,
    modes, label ranges, pairing) and returns how many there are; raises one
    `FolderDatasetError` listing the bad files."""
    from smis_layers.data.folders import list_samples, verify_samples

    samples = list_samples(data, data_dir, "train", instances=instances)
    verify_samples(data, samples, progress=progress)
    return len(samples)
