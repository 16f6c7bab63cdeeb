from __future__ import annotations

import keras
from keras import ops

from smis_layers.layers.group_conv2d import GroupConv2D
from smis_layers.layers.normalization import make_normalization, maybe_spectral_norm
from smis_layers.utils.validation import require_choice, require_positive_int

DISCRIMINATOR_NORMS = ("instance", "batch", "sync_batch", "none")


@keras.saving.register_keras_serializable(package="smis_layers")
class MultiScaleDiscriminator(keras.Model):
    """SPADE's multi-scale PatchGAN discriminator, returning every layer's features.

    Each of `num_scales` discriminators is a stack of 4x4 convolutions (PyTorch-style symmetric
    padding 2): `base_filters` (stride 2, bias, no normalization), then widths doubling up to
    `max_filters` (stride 2, the last of them stride 1) with spectral norm + normalization, then a
    1-channel convolution; LeakyReLU(0.2) after every layer but the last. Scale `s + 1` sees the
    input average-pooled (3x3, stride 2, padding 1, padding excluded from the average).

    Args:
        num_scales: number of discriminators (official: 2).
        num_layers: convolutions before the final 1-channel one (official `n_layers_D`: 4).
        base_filters: width of the first convolution (official `ndf`: 64).
        max_filters: width cap (official: 512).
        norm: normalization of the middle layers ("instance" officially).
        spectral_norm: spectral normalization of the middle layers.
        lowering: convolution lowering, see `GroupConv2D`.
        **kwargs: `keras.Model` keyword arguments.

    Call arguments:
        inputs: (B, H, W, condition_channels + 3): the decoder's condition (the one-hot segmap,
            with instance edges where the model has them) concatenated with the image, the
            condition first as in the official code.

    Returns:
        A list (one entry per scale, full resolution first) of lists of feature maps (one per
        layer, the last being the (B, h, w, 1) patch logits).

    Examples:
        >>> d = MultiScaleDiscriminator(num_scales=2, num_layers=3, base_filters=8)
        >>> outputs = d(np.zeros((1, 32, 32, 7), "float32"))
        >>> [tuple(f.shape) for f in outputs[0]]
        [(1, 17, 17, 8), (1, 9, 9, 16), (1, 10, 10, 32), (1, 11, 11, 1)]

    Reference:
        Park et al., "Semantic Image Synthesis with Spatially-Adaptive Normalization", CVPR 2019;
        Wang et al., "High-Resolution Image Synthesis ... with Conditional GANs", CVPR 2018.
    """

    def __init__(
        self,
        num_scales: int = 2,
        num_layers: int = 4,
        base_filters: int = 64,
        max_filters: int = 512,
        norm: str = "instance",
        spectral_norm: bool = True,
        lowering: str = "auto",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_scales = require_positive_int("num_scales", num_scales)
        self.num_layers = require_positive_int("num_layers", num_layers)
        self.base_filters = require_positive_int("base_filters", base_filters)
        self.max_filters = require_positive_int("max_filters", max_filters)
        require_choice("norm", norm, DISCRIMINATOR_NORMS)
        self.norm = norm
        self.spectral_norm = bool(spectral_norm)
        self.lowering = lowering
        self.scales = [self._make_scale(i) for i in range(num_scales)]

    @property
    def layer_filters(self) -> list[int]:
        return [min(self.base_filters * 2**i, self.max_filters) for i in range(self.num_layers)]

    def _make_scale(self, index: int) -> list[list[keras.layers.Layer]]:
        stages = []
        filters = self.layer_filters
        for n, width in enumerate(filters):
            stride = 2 if n < self.num_layers - 1 or n == 0 else 1
            normalized = n > 0 and self.norm != "none"
            conv = GroupConv2D(
                width,
                4,
                strides=stride,
                padding=2,
                use_bias=not normalized,
                lowering=self.lowering,
                name=f"scale{index}_conv{n}",
            )
            stage = [maybe_spectral_norm(conv, self.spectral_norm and n > 0)]
            if normalized:
                affine = self.norm != "instance"
                stage.append(make_normalization(self.norm, affine, name=f"scale{index}_norm{n}"))
            stages.append(stage)
        final = GroupConv2D(
            1, 4, padding=2, lowering=self.lowering, name=f"scale{index}_conv{self.num_layers}"
        )
        stages.append([final])
        return stages

    def build(self, input_shape):
        batch, height, width, channels = input_shape
        for stages in self.scales:
            shape = (batch, height, width, channels)
            for stage in stages:
                for layer in stage:
                    layer.build(shape)
                    shape = layer.compute_output_shape(shape)
            height, width = (height - 1) // 2 + 1, (width - 1) // 2 + 1
        self.built = True

    def call(self, inputs, training=None):
        results = []
        x = inputs
        for scale_index, stages in enumerate(self.scales):
            features, h = [], x
            for n, stage in enumerate(stages):
                for layer in stage:
                    h = layer(h, training=training)
                if n < len(stages) - 1:
                    h = ops.leaky_relu(h, negative_slope=0.2)
                features.append(h)
            results.append(features)
            if scale_index < self.num_scales - 1:
                x = downsample_average(x)
        return results

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_scales": self.num_scales,
                "num_layers": self.num_layers,
                "base_filters": self.base_filters,
                "max_filters": self.max_filters,
                "norm": self.norm,
                "spectral_norm": self.spectral_norm,
                "lowering": self.lowering,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_preset(cls, name_or_path) -> MultiScaleDiscriminator:
        """The discriminator shipped with a generator preset (for fine-tuning), after verifying
        its files' sha256."""
        from smis_layers.presets import load_preset_discriminator

        return load_preset_discriminator(name_or_path)


def downsample_average(x):
    """3x3 average pooling, stride 2, padding 1, padding excluded from the average.

    PyTorch's `avg_pool2d(x, 3, 2, padding=1, count_include_pad=False)`; Keras's "same" pooling
    would place the windows differently on even sizes.
    """
    padding = ((0, 0), (1, 1), (1, 1), (0, 0))
    summed = ops.average_pool(ops.pad(x, padding), 3, strides=2, padding="valid")
    counts = ops.average_pool(
        ops.pad(ops.ones_like(x[..., :1]), padding), 3, strides=2, padding="valid"
    )
    return summed / counts
