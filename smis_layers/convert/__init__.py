"""Converters of third-party checkpoints into smis_layers models."""

from smis_layers.convert.official import (
    ConversionReport,
    assign_official_weights,
    build_model,
    convert_official_checkpoint,
    load_torch_state_dict,
)

__all__ = [
    "ConversionReport",
    "assign_official_weights",
    "build_model",
    "convert_official_checkpoint",
    "load_torch_state_dict",
]
