"""A small U-Net segmenter: the evaluation network of the synthetic benchmark.

Generated images are scored by segmenting them and comparing with the input label maps (mIoU, pixel
accuracy), and their distribution is compared with real images' in the segmenter's feature
space (a domain FID): the protocol of the SMIS/SPADE papers, with a network trained on the
benchmark's own images instead of an ImageNet or DeepLab network, which cannot be downloaded
here. `smis_layers.training.segmenter.train_segmenter` trains it.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from smis_layers.utils.validation import require_positive_int


@keras.saving.register_keras_serializable(package="smis_layers")
class SpaceToDepth(keras.layers.Layer):
    """(B, H, W, C) -> (B, H/p, W/p, p*p*C): each p x p block of pixels becomes one location."""

    def __init__(self, block_size: int, **kwargs):
        super().__init__(**kwargs)
        self.block_size = require_positive_int("block_size", block_size)

    def call(self, x):
        p = self.block_size
        if p == 1:
            return x
        b, h, w, c = ops.shape(x)
        x = ops.reshape(x, (b, h // p, p, w // p, p, c))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (b, h // p, w // p, p * p * c))

    def compute_output_shape(self, shape):
        p = self.block_size
        h, w = (None if d is None else d // p for d in shape[1:3])
        return (shape[0], h, w, shape[3] * p * p)

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@keras.saving.register_keras_serializable(package="smis_layers")
class DepthToSpace(keras.layers.Layer):
    """(B, h, w, p*p*C) -> (B, h*p, w*p, C), the inverse of `SpaceToDepth`."""

    def __init__(self, block_size: int, **kwargs):
        super().__init__(**kwargs)
        self.block_size = require_positive_int("block_size", block_size)

    def call(self, x):
        p = self.block_size
        if p == 1:
            return x
        b, h, w, c = ops.shape(x)
        x = ops.reshape(x, (b, h, w, p, p, c // (p * p)))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (b, h * p, w * p, c // (p * p)))

    def compute_output_shape(self, shape):
        p = self.block_size
        h, w = (None if d is None else d * p for d in shape[1:3])
        return (shape[0], h, w, shape[3] // (p * p))

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@keras.saving.register_keras_serializable(package="smis_layers")
class ShapesSegmenter(keras.Model):
    """U-Net segmenter of (B, H, W, 3) images in [-1, 1] into per-class logits (B, H, W, C).

    The image is first rearranged into `patch_size` x `patch_size` blocks (space-to-depth, so
    the network runs at 1/patch_size resolution for a fraction of the FLOPs, and every output
    pixel still sees its own input pixel). Encoder: `len(filters)` stages of two 3x3 conv +
    BatchNorm + ReLU, a 2x2 max pooling between stages; decoder: nearest x2 upsampling,
    concatenation with the encoder stage of the same size, `decoder_convs` 3x3 conv + BatchNorm
    + ReLU. Back at full resolution (depth-to-space of a 1x1 convolution to
    patch_size**2 * refine_filters channels), the features are concatenated with the image's
    pixels and refined by one 3x3 conv + BatchNorm + ReLU before the 1x1 logits convolution, so
    that boundaries are placed to the pixel (without refinement, `refine_filters=0`, the logits
    are the depth-to-space of patch_size**2 * C channels). Fully convolutional: H and W must be
    divisible by `patch_size * 2 ** (len(filters) - 1)`.

    Args:
        num_classes: C.
        filters: widths of the encoder stages (the decoder mirrors them).
        patch_size: space-to-depth block size (1: a plain U-Net at full resolution).
        decoder_convs: 3x3 convolutions per decoder stage.
        refine_filters: width of the full-resolution refinement (0: none).
        **kwargs: `keras.Model` keyword arguments.

    Examples:
        >>> segmenter = ShapesSegmenter(num_classes=8)
        >>> logits = segmenter(images)                   # (B, 64, 64, 8)
        >>> labels = segmenter.predict_labels(images)    # (B, 64, 64) int
        >>> features = segmenter.features(images)        # (B, 216) for the domain FID

    Reference:
        Ronneberger, Fischer, Brox, "U-Net: Convolutional Networks for Biomedical Image
        Segmentation", MICCAI 2015.
    """

    def __init__(
        self,
        num_classes: int,
        filters: Sequence[int] = (24, 40, 72, 104),
        patch_size: int = 2,
        decoder_convs: int = 1,
        refine_filters: int = 16,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = require_positive_int("num_classes", num_classes)
        self.patch_size = require_positive_int("patch_size", patch_size)
        self.decoder_convs = require_positive_int("decoder_convs", decoder_convs)
        if (
            isinstance(refine_filters, bool)
            or not isinstance(refine_filters, int)
            or (refine_filters < 0)
        ):
            raise ValueError(
                f"`refine_filters` must be a non-negative integer; received {refine_filters!r}"
            )
        self.refine_filters = refine_filters
        filters = tuple(filters)
        if len(filters) < 2:
            raise ValueError(f"`filters` must list at least 2 stages; received {filters!r}")
        for width in filters:
            require_positive_int("filters", width)
        self.filters = filters
        self.network = self._build_network()
        self.built = True

    @property
    def downsampling(self) -> int:
        """H and W must be divisible by this."""
        return self.patch_size * 2 ** (len(self.filters) - 1)

    @property
    def feature_dim(self) -> int:
        """Length of `features`' vectors: the pooled encoder stages after the first."""
        return int(sum(self.filters[1:]))

    def _conv_block(self, x, width: int, name: str, convs: int = 2):
        for i in range(1, convs + 1):
            x = keras.layers.Conv2D(
                width, 3, padding="same", use_bias=False, name=f"{name}_conv{i}"
            )(x)
            x = keras.layers.BatchNormalization(name=f"{name}_bn{i}")(x)
            x = keras.layers.ReLU(name=f"{name}_relu{i}")(x)
        return x

    def _build_network(self) -> keras.Model:
        inputs = keras.Input((None, None, 3), name="images")
        x = SpaceToDepth(self.patch_size, name="space_to_depth")(inputs)
        stages = []
        for i, width in enumerate(self.filters):
            if i > 0:
                x = keras.layers.MaxPooling2D(2, name=f"down{i}")(x)
            x = self._conv_block(x, width, f"enc{i}")
            stages.append(x)
        for i in range(len(self.filters) - 2, -1, -1):
            x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"up{i}")(x)
            x = keras.layers.Concatenate(name=f"skip{i}")([x, stages[i]])
            x = self._conv_block(x, self.filters[i], f"dec{i}", self.decoder_convs)
        p = self.patch_size
        if p > 1 and self.refine_filters:
            x = keras.layers.Conv2D(p * p * self.refine_filters, 1, name="expand")(x)
            x = DepthToSpace(p, name="depth_to_space")(x)
            x = keras.layers.Concatenate(name="with_pixels")([x, inputs])
            x = self._conv_block(x, self.refine_filters, "refine", 1)
            logits = keras.layers.Conv2D(self.num_classes, 1, name="logits")(x)
        else:
            logits = keras.layers.Conv2D(p * p * self.num_classes, 1, name="logits")(x)
            logits = DepthToSpace(p, name="depth_to_space")(logits)
        pooled = keras.layers.Concatenate(name="features")(
            [keras.layers.GlobalAveragePooling2D(name=f"pool{i}")(s) for i, s in enumerate(stages)][
                1:
            ]
        )
        return keras.Model(inputs, [logits, pooled, *stages], name="unet")

    def _check_images(self, images):
        shape = tuple(images.shape)
        if len(shape) != 4 or shape[-1] != 3:
            raise ValueError(f"`images` must be (batch, H, W, 3); received shape {shape}")
        for size in shape[1:3]:
            if size is not None and size % self.downsampling:
                raise ValueError(
                    f"`images` height and width must be divisible by {self.downsampling} "
                    f"(patch_size * 2 ** (len(filters) - 1)); received shape {shape}"
                )

    def call(self, images, training=None):
        """Per-class logits (B, H, W, C)."""
        self._check_images(images)
        return self.network(images, training=training)[0]

    def features(self, images, training=False):
        """Pooled feature vectors (B, `feature_dim`): global average pools of the encoder stages
        after the first, concatenated. The feature extractor of the domain FID."""
        images = ops.convert_to_tensor(np.asarray(images, "float32"))
        self._check_images(images)
        return self.network(images, training=training)[1]

    def feature_maps(self, images, training=False) -> list:
        """The encoder stages' feature maps [(B, H/p, W/p, f0), (B, H/2p, W/2p, f1), ...] (p the
        patch size): the feature extractor of `masked_feature_distance`."""
        images = ops.convert_to_tensor(np.asarray(images, "float32"))
        self._check_images(images)
        return list(self.network(images, training=training)[2:])

    def predict_labels(self, images, batch_size: int = 32) -> np.ndarray:
        """Predicted label maps (B, H, W) int32, in batches (inference mode)."""
        images = np.asarray(images, "float32")
        out = [
            np.argmax(ops.convert_to_numpy(self(images[i : i + batch_size], training=False)), -1)
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(out).astype("int32")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "filters": list(self.filters),
                "patch_size": self.patch_size,
                "decoder_convs": self.decoder_convs,
                "refine_filters": self.refine_filters,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
