"""Converters of third-party checkpoints into smis_layers models."""

from smis_layers.convert.official import (
    CheckpointMismatchError,
    ConversionReport,
    assign_official_weights,
    build_model,
    check_state_roles,
    convert_official_checkpoint,
    load_torch_state_dict,
)

__all__ = [
    "CheckpointMismatchError",
    "ConversionReport",
    "assign_official_weights",
    "build_model",
    "check_state_roles",
    "convert_official_checkpoint",
    "load_torch_state_dict",
]
