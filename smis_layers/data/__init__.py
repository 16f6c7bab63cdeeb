"""Datasets: the table of dataset facts, the synthetic benchmark and loaders for the real
datasets' folder layouts.

The names are imported on first use, so importing `smis_layers.data.datasets` (the table,
standard library only) from a layer or the CLI does not import the loaders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smis_layers.utils.lazy import lazy_exports

_LAZY_EXPORTS = {
    "DATASETS": "smis_layers.data.datasets",
    "DatasetFacts": "smis_layers.data.datasets",
    "dataset_facts": "smis_layers.data.datasets",
    "DATASET_CLASSES": "smis_layers.data.folders",
    "FolderDatasetError": "smis_layers.data.folders",
    "PresetRandomFlip": "smis_layers.data.folders",
    "SamplePaths": "smis_layers.data.folders",
    "folder_dataset": "smis_layers.data.folders",
    "list_samples": "smis_layers.data.folders",
    "load_sample": "smis_layers.data.folders",
    "verify_samples": "smis_layers.data.folders",
    "HELD_OUT_SEED": "smis_layers.data.synthetic",
    "SyntheticShapes": "smis_layers.data.synthetic",
    "export_deepfashion_layout": "smis_layers.data.synthetic",
    "synthetic_batches": "smis_layers.data.synthetic",
    "synthetic_tf_dataset": "smis_layers.data.synthetic",
}

__all__ = [
    "DATASETS",
    "DATASET_CLASSES",
    "HELD_OUT_SEED",
    "DatasetFacts",
    "FolderDatasetError",
    "PresetRandomFlip",
    "SamplePaths",
    "SyntheticShapes",
    "dataset_facts",
    "export_deepfashion_layout",
    "folder_dataset",
    "list_samples",
    "load_sample",
    "synthetic_batches",
    "synthetic_tf_dataset",
    "verify_samples",
]

if TYPE_CHECKING:
    from smis_layers.data.datasets import DATASETS, DatasetFacts, dataset_facts
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


__getattr__, __dir__ = lazy_exports(__name__, _LAZY_EXPORTS)
