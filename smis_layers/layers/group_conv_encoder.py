from __future__ import annotations

import keras
from keras import ops

from smis_layers.layers.group_conv2d import GroupConv2D
from smis_layers.layers.normalization import make_normalization, maybe_spectral_norm
from smis_layers.ops.grouped_conv import LOWERINGS
from smis_layers.utils.validation import (
    require_channels,
    require_choice,
    require_divisible,
    require_positive_int,
    require_rank,
)

ENCODER_NORMS = ("instance", "batch", "sync_batch", "none")


@keras.saving.register_keras_serializable(package="smis_layers")
class GroupConvEncoder(keras.layers.Layer):
    """GroupDNet's encoder: grouped stride-2 convolutions to one latent code per class.

    Input: the (B, H, W, 3C) output of `ClassMaskSplit`. `num_layers` stride-2 3x3
    convolutions with `groups=num_classes` (PyTorch-style symmetric padding 1) and widths
    `base_channels * min(2**i, max_multiplier)`, each followed by a normalization (instance norm
    without affine by default; the conv then has no bias, as in the official code) and
    LeakyReLU(0.2), then two grouped 3x3 convolutions give `mu` and `logvar` of
    `latent_channels * num_classes` channels. Class `c` owns latent channels
    `latent_channels * c ... latent_channels * (c + 1) - 1`; because every convolution is
    grouped by class and the normalization is per channel, class `c`'s code depends only on
    class `c`'s input channels.

    Args:
        num_classes: C, the number of classes (= groups).
        base_channels: width of the first layer (official: 256 DeepFashion, 350 Cityscapes,
            604 ADE20K); divisible by `num_classes`.
        num_layers: number of stride-2 layers (official: 6 at crop 256, 5 below).
        latent_channels: latent channels per class (official: 8).
        max_multiplier: cap of the width multiplier (official: 8).
        spectral_norm: wrap the stride-2 convolutions in `keras.layers.SpectralNormalization`.
        norm: "instance", "batch", "sync_batch" (with affine parameters, as the official
            options) or "none". With "instance" (the official default) a class's code is blind
            to scaling that class's pixels around 0: a flat region two shades apart, e.g. a
            darker or paler copy of a colour, gives the same code. "none" (the convolutions
            then have biases) keeps that contrast.
        kernel_size: kernel size of every convolution.
        lowering: grouped-convolution lowering, see `GroupConv2D`.
        kernel_initializer: initializer of every convolution kernel.
        **kwargs: base layer keyword arguments.

    Returns:
        `(mu, logvar)`, each (B, H / 2**num_layers, W / 2**num_layers, latent_channels * C).

    Examples:
        >>> x = np.random.rand(2, 32, 32, 12).astype("float32")
        >>> encoder = GroupConvEncoder(num_classes=4, base_channels=8, num_layers=3)
        >>> mu, logvar = encoder(x)
        >>> mu.shape
        (2, 4, 4, 32)
        >>> z = encoder.reparameterize(mu, logvar, seed=0)

    Reference:
        Zhu et al., "Semantically Multi-modal Image Synthesis", CVPR 2020, Sec. 3.2.
    """

    def __init__(
        self,
        num_classes: int,
        base_channels: int,
        num_layers: int,
        latent_channels: int = 8,
        max_multiplier: int = 8,
        spectral_norm: bool = True,
        norm: str = "instance",
        kernel_size: int = 3,
        lowering: str = "auto",
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = require_positive_int("num_classes", num_classes)
        self.base_channels = require_positive_int("base_channels", base_channels)
        require_divisible("base_channels", base_channels, num_classes, "num_classes")
        self.num_layers = require_positive_int("num_layers", num_layers)
        self.latent_channels = require_positive_int("latent_channels", latent_channels)
        self.max_multiplier = require_positive_int("max_multiplier", max_multiplier)
        self.spectral_norm = bool(spectral_norm)
        require_choice("norm", norm, ENCODER_NORMS)
        self.norm = norm
        self.kernel_size = require_positive_int("kernel_size", kernel_size)
        require_choice("lowering", lowering, LOWERINGS)
        self.lowering = lowering
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    @property
    def layer_channels(self) -> list[int]:
        """Widths of the stride-2 layers."""
        return [self.base_channels * min(2**i, self.max_multiplier) for i in range(self.num_layers)]

    def build(self, input_shape):
        require_rank("inputs", input_shape, 4, "(batch, height, width, 3 * num_classes)")
        require_channels(
            "inputs", input_shape, 3 * self.num_classes, "3 * num_classes, from ClassMaskSplit"
        )
        padding = self.kernel_size // 2
        self.convs, self.norms = [], []
        shape = tuple(input_shape)
        for i, channels in enumerate(self.layer_channels):
            conv = GroupConv2D(
                channels,
                self.kernel_size,
                groups=self.num_classes,
                strides=2,
                padding=padding,
                use_bias=self.norm == "none",
                lowering=self.lowering,
                kernel_initializer=self._initializer(),
                name=f"layer{i + 1}",
            )
            conv = maybe_spectral_norm(conv, self.spectral_norm)
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            self.convs.append(conv)
            if self.norm != "none":
                affine = self.norm != "instance"
                norm = make_normalization(self.norm, affine=affine, name=f"norm{i + 1}")
                norm.build(shape)
                self.norms.append(norm)
        self.fc_mu = self._latent_conv("fc_mu")
        self.fc_var = self._latent_conv("fc_var")
        self.fc_mu.build(shape)
        self.fc_var.build(shape)

    def _initializer(self):
        return keras.initializers.serialize(self.kernel_initializer)

    def _latent_conv(self, name):
        return GroupConv2D(
            self.latent_channels * self.num_classes,
            self.kernel_size,
            groups=self.num_classes,
            padding=self.kernel_size // 2,
            lowering=self.lowering,
            kernel_initializer=self._initializer(),
            name=name,
        )

    def call(self, inputs):
        x = inputs
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if self.norms:
                x = self.norms[i](x)
            x = ops.leaky_relu(x, negative_slope=0.2)
        return self.fc_mu(x), self.fc_var(x)

    @staticmethod
    def reparameterize(mu, logvar, seed=None):
        """Samples `z = mu + eps * exp(0.5 * logvar)` with `eps ~ N(0, 1)`.

        Args:
            mu: mean of the code.
            logvar: log-variance of the code, same shape as `mu`.
            seed: int, `keras.random.SeedGenerator` or None, as in `keras.random.normal`.
        """
        eps = keras.random.normal(ops.shape(mu), dtype=mu.dtype, seed=seed)
        return mu + eps * ops.exp(0.5 * logvar)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        for _ in range(self.num_layers):
            height = None if height is None else (height - 1) // 2 + 1
            width = None if width is None else (width - 1) // 2 + 1
        shape = (batch, height, width, self.latent_channels * self.num_classes)
        return shape, shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "base_channels": self.base_channels,
                "num_layers": self.num_layers,
                "latent_channels": self.latent_channels,
                "max_multiplier": self.max_multiplier,
                "spectral_norm": self.spectral_norm,
                "norm": self.norm,
                "kernel_size": self.kernel_size,
                "lowering": self.lowering,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
