"""The data side of a training run: what a run knows of its architecture, its training
stream (the synthetic benchmark or a dataset folder, positioned at any sample) and the fixed
samples of its sample sheets and code prior.

`run` is the content of a run folder's run.json (`RunConfig.to_run_json`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np

from smis_layers.data.datasets import DATASETS, dataset_facts, datasets_with_instances


class ArchitectureFacts(NamedTuple):
    """What a run needs to know of an architecture (`architecture_facts`)."""

    image_size: tuple[int, int]
    num_classes: int
    use_instance_edges: bool


@functools.cache
def architecture_facts(model: str) -> ArchitectureFacts:
    """What a run needs to know of an architecture, from one throwaway build per name."""
    from smis_layers.models import build_architecture

    probe = build_architecture(model)
    return ArchitectureFacts(tuple(probe.image_size), probe.num_classes, probe.use_instance_edges)


def run_dataset(run: dict, start_sample: int):
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
    return run_folder_dataset(run, run["batch_size"], flip=True, start=start_sample)


def run_folder_dataset(run: dict, batch_size: int, **kwargs):
    """The run's dataset folder (train split) at the model's image size."""
    from smis_layers.data.folders import folder_dataset

    facts = architecture_facts(run["model"])
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


def checked_data_dir(data: str, data_dir: str | Path | None, model: str, probe) -> str | None:
    """The absolute dataset folder for run.json, after checking it fits `data` and the model."""
    if data == "synthetic":
        if data_dir is not None:
            raise ValueError(
                f"--data-dir is read only with --data {' or '.join(DATASETS)}; the synthetic "
                "benchmark is generated"
            )
        return None
    if data not in DATASETS:
        raise ValueError(f"Unknown --data {data!r}; available: synthetic, {sorted(DATASETS)}")
    if data_dir is None:
        raise ValueError(f"--data {data} needs --data-dir, the dataset's root folder")
    classes = dataset_facts(data).num_classes
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
    return first_folder_samples(run, count)


def first_folder_samples(run: dict, count: int) -> dict[str, np.ndarray]:
    """The first `count` training samples of the run's dataset folder, in file order."""
    dataset = run_folder_dataset(run, count, shuffle=False, repeat=False)
    iterator = iter(dataset)
    batch = {k: v.numpy() for k, v in next(iterator).items()}
    del iterator  # a live tf.data iterator over numpy_function can hang interpreter exit
    return batch
