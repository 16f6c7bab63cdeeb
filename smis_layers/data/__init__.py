"""Datasets: the synthetic benchmark and loaders for the real datasets' folder layouts."""

from smis_layers.data.folders import (
    DATASET_CLASSES,
    FolderDatasetError,
    PresetRandomFlip,
    SamplePaths,
    folder_dataset,
    list_samples,
    load_sample,
    verify_samples,
)
from smis_layers.data.synthetic import (
    HELD_OUT_SEED,
    SyntheticShapes,
    export_deepfashion_layout,
    synthetic_batches,
    synthetic_tf_dataset,
)

__all__ = [
    "DATASET_CLASSES",
    "HELD_OUT_SEED",
    "FolderDatasetError",
    "PresetRandomFlip",
    "SamplePaths",
    "SyntheticShapes",
    "export_deepfashion_layout",
    "folder_dataset",
    "list_samples",
    "load_sample",
    "synthetic_batches",
    "synthetic_tf_dataset",
    "verify_samples",
]
