"""Nearest-neighbour resizing with PyTorch's index convention.

`F.interpolate(mode="nearest")` picks source index `floor(dst * (in / out))` (float32 scale),
whereas `tf.image.resize(method="nearest")` uses half-pixel centres. The official GroupDNet code
resizes segmaps the PyTorch way, so parity with it needs this convention.
"""

from __future__ import annotations

import numpy as np
from keras import ops


def nearest_source_indices(input_size: int, output_size: int) -> np.ndarray:
    """Source index of every output position, as PyTorch's nearest interpolation computes it."""
    if input_size == output_size:
        return np.arange(output_size, dtype="int32")
    scale = np.float32(input_size) / np.float32(output_size)
    index = np.floor(np.arange(output_size, dtype="float32") * scale).astype("int32")
    return np.minimum(index, input_size - 1)


def resize_nearest(images, size: tuple[int, int]):
    """Resizes channels-last `images` (B, H, W, C) to `size` with PyTorch's nearest convention."""
    height, width = images.shape[1], images.shape[2]
    out_height, out_width = size
    if height != out_height:
        images = ops.take(images, nearest_source_indices(height, out_height), axis=1)
    if width != out_width:
        images = ops.take(images, nearest_source_indices(width, out_width), axis=2)
    return images
