from __future__ import annotations

import keras
from keras import ops

from smis_layers.utils.validation import (
    require_channels,
    require_choice,
    require_float_dtype,
    require_positive_int,
    require_rank,
    require_same_batch,
    require_same_spatial_size,
)

MODES = ("mask", "crop_resize")
BOX_SOURCES = ("mask", "masked_image")


@keras.saving.register_keras_serializable(package="smis_layers")
class ClassMaskSplit(keras.layers.Layer):
    """Splits an image into one masked copy per semantic class, stacked on channels.

    For an image `X` (B, H, W, 3) and a one-hot mask `M` (B, H, W, C) the output is
    (B, H, W, 3C) where channels `3c..3c+2` hold `M_c * X`. This is the input of GroupDNet's
    encoder: with group convolutions (groups=C) after it, class `c`'s code depends only on the
    pixels of class `c`.

    `mode="crop_resize"` reproduces the official GroupDNet code: each class's masked image is
    cropped to the class's bounding box and resized (nearest, PyTorch index convention) back to
    H x W, so small regions fill the encoder's field of view; absent classes stay zero. It is
    computed with gathers for the whole batch at once (no loop over samples or classes).

    Args:
        num_classes: C, the number of classes (channels of the one-hot mask).
        mode: "mask" (the paper's equation) or "crop_resize" (the official code).
        box_source: where "crop_resize" reads each class's bounding box from: "mask" (the
            class's pixels) or "masked_image" (exactly as the official code: the first and
            last rows and columns whose sum of `M_c * X` over the row/column and RGB is
            nonzero, so a boundary row whose pixels cancel out is dropped).
        **kwargs: base layer keyword arguments.

    Call arguments:
        images: (B, H, W, 3) float tensor.
        segmap: (B, H, W, C) one-hot (or soft) class mask.

    Examples:
        >>> images = np.random.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
        >>> labels = np.random.randint(0, 4, (2, 32, 32))
        >>> segmap = np.eye(4, dtype="float32")[labels]
        >>> ClassMaskSplit(4)(images, segmap).shape
        (2, 32, 32, 12)

    Reference:
        Zhu et al., "Semantically Multi-modal Image Synthesis", CVPR 2020, Sec. 3.2.
    """

    def __init__(self, num_classes: int, mode: str = "mask", box_source: str = "mask", **kwargs):
        super().__init__(**kwargs)
        self.num_classes = require_positive_int("num_classes", num_classes)
        require_choice("mode", mode, MODES)
        require_choice("box_source", box_source, BOX_SOURCES)
        self.mode = mode
        self.box_source = box_source

    def build(self, images_shape, segmap_shape):
        self._check_shapes(images_shape, segmap_shape)

    def _check_shapes(self, images_shape, segmap_shape):
        require_rank("images", images_shape, 4, "(batch, height, width, 3)")
        require_rank("segmap", segmap_shape, 4, "(batch, height, width, num_classes)")
        require_channels("images", images_shape, 3, "RGB")
        require_channels("segmap", segmap_shape, self.num_classes, "one-hot, num_classes")
        require_same_spatial_size("images", images_shape, "segmap", segmap_shape)
        require_same_batch("images", images_shape, "segmap", segmap_shape)

    def call(self, images, segmap):
        # Keras builds a layer once: later calls are checked here, so that another batch size
        # or mask size is an error rather than a silent broadcast.
        self._check_shapes(images.shape, segmap.shape)
        require_float_dtype("images", images.dtype)
        segmap = ops.cast(segmap, images.dtype)
        # (B, H, W, C, 1) * (B, H, W, 1, 3) -> (B, H, W, C, 3): class-major channel order.
        masked = ops.expand_dims(segmap, -1) * ops.expand_dims(images, -2)
        if self.mode == "crop_resize":
            masked = self._crop_resize(masked, segmap)
        height, width = ops.shape(masked)[1], ops.shape(masked)[2]
        return ops.reshape(masked, (-1, height, width, 3 * self.num_classes))

    def _crop_resize(self, masked, segmap):
        if self.box_source == "mask":
            occupied = ops.greater(segmap, 0)  # (B, H, W, C)
            rows = ops.any(occupied, axis=2)
            cols = ops.any(occupied, axis=1)
        else:
            summed = ops.sum(masked, axis=-1)  # (B, H, W, C): masked image summed over RGB
            rows = ops.not_equal(ops.sum(summed, axis=2), 0)
            cols = ops.not_equal(ops.sum(summed, axis=1), 0)
        # Rows/columns of each class's box: (B, C, H) and (B, C, W). A class without any
        # (absent, or cancelling sums with box_source="masked_image") keeps its masked image
        # uncropped, which is zero for an absent class; the official code does the same.
        rows = ops.transpose(rows, (0, 2, 1))
        cols = ops.transpose(cols, (0, 2, 1))
        row_index = _crop_source_indices(rows)
        col_index = _crop_source_indices(cols)

        shape = ops.shape(masked)
        batch, height, width = shape[0], shape[1], shape[2]
        channels = self.num_classes
        # Gather from a flat (B*H*W*C, 3) view: flat = ((b*H + row)*W + col)*C + c.
        b = ops.reshape(ops.arange(batch, dtype="int32"), (-1, 1, 1, 1))
        c = ops.reshape(ops.arange(channels, dtype="int32"), (1, 1, 1, -1))
        r = ops.expand_dims(ops.transpose(row_index, (0, 2, 1)), 2)  # (B, H, 1, C)
        q = ops.expand_dims(ops.transpose(col_index, (0, 2, 1)), 1)  # (B, 1, W, C)
        flat_index = ((b * height + r) * width + q) * channels + c
        flat = ops.reshape(masked, (-1, 3))
        cropped = ops.take(flat, ops.reshape(flat_index, (-1,)), axis=0)
        return ops.reshape(cropped, (batch, height, width, channels, 3))

    def compute_output_shape(self, images_shape, segmap_shape):
        return (*tuple(images_shape[:3]), 3 * self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_classes": self.num_classes, "mode": self.mode, "box_source": self.box_source}
        )
        return config


def _crop_source_indices(occupied):
    """Per (batch, class) source index along one axis for nearest-resizing the class's box.

    `occupied` is (B, C, L) boolean. For a box [lo, hi] of length n = hi - lo + 1 resized to L,
    output position i reads lo + min(floor(i * (n / L)), n - 1) (PyTorch's convention, float32).
    Returns (B, C, L) int32; where no position is occupied the indices are the identity.
    """
    length = ops.shape(occupied)[-1]
    occupied_int = ops.cast(occupied, "int32")
    low = ops.argmax(occupied_int, axis=-1)
    high = length - 1 - ops.argmax(ops.flip(occupied_int, axis=-1), axis=-1)
    low = ops.cast(low, "int32")
    size = ops.maximum(ops.cast(high, "int32") - low + 1, 1)
    scale = ops.cast(size, "float32") / ops.cast(length, "float32")
    positions = ops.cast(ops.arange(length), "float32")
    offset = ops.floor(positions * ops.expand_dims(scale, -1))
    offset = ops.minimum(ops.cast(offset, "int32"), ops.expand_dims(size - 1, -1))
    return ops.expand_dims(low, -1) + offset
