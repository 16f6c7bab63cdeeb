"""Backend-aware operations shared by the layers (not part of the public API)."""

from smis_layers.ops.grouped_conv import (
    LOWERINGS,
    grouped_conv2d,
    native_kernel_works,
    resolve_lowering,
)
from smis_layers.ops.resize import nearest_source_indices, resize_nearest

__all__ = [
    "LOWERINGS",
    "grouped_conv2d",
    "native_kernel_works",
    "nearest_source_indices",
    "resize_nearest",
    "resolve_lowering",
]
