"""Datasets: the synthetic benchmark (and, as they land, the real-data loaders)."""

from smis_layers.data.synthetic import (
    SyntheticShapes,
    export_deepfashion_layout,
    synthetic_tf_dataset,
)

__all__ = ["SyntheticShapes", "export_deepfashion_layout", "synthetic_tf_dataset"]
