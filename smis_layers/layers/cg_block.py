from __future__ import annotations

import keras
from keras import ops

from smis_layers.layers.cg_norm import CGNorm, shared_hidden_features
from smis_layers.layers.group_conv2d import GroupConv2D
from smis_layers.layers.normalization import NORMS, maybe_spectral_norm
from smis_layers.ops.grouped_conv import LOWERINGS
from smis_layers.utils.validation import (
    require_choice,
    require_divisible,
    require_known_spatial_size,
    require_positive_int,
    require_rank,
)


@keras.saving.register_keras_serializable(package="smis_layers")
class CGBlock(keras.layers.Layer):
    """Residual block of GroupDNet's decoder: two CGNorm -> LeakyReLU -> grouped conv stages.

    `out = shortcut(x) + conv_1(act(norm_1(conv_0(act(norm_0(x))))))` with
    `conv_0: in -> min(in, filters)` and `conv_1: -> filters` (3x3, `groups` groups, spectral
    norm optional), LeakyReLU(0.2), and a learned shortcut `conv_s(norm_s(x))` (grouped 1x1
    conv without bias) when the channel count changes, else the identity. Every part is grouped
    with the same `groups` (CGNorm's own groups may differ, as in the official ADE20K and
    Cityscapes decoders), so the block keeps `groups` independent streams.

    Args:
        filters: output channels; divisible by `groups`.
        groups: groups of the block's convolutions.
        norm_hidden_channels: hidden width of the block's CGNorm layers.
        norm_shared_groups: groups of CGNorm's shared convolution (default: `norm_groups`).
        norm_groups: groups of CGNorm's gamma/beta convolutions (default: `groups`).
        norm: parameter-free normalization inside CGNorm: "batch", "sync_batch", "instance".
        spectral_norm: wrap the block's convolutions in `keras.layers.SpectralNormalization`.
        kernel_size: kernel size of the block's and CGNorm's convolutions.
        lowering: grouped-convolution lowering, see `GroupConv2D`.
        kernel_initializer: initializer of every convolution kernel.
        **kwargs: base layer keyword arguments.

    Call arguments:
        x: (B, H, W, in_channels) features.
        segmap: (B, h, w, condition_channels) the decoder's condition (the one-hot segmap,
            or paired with instance edges), resized inside CGNorm.

    Examples:
        >>> x = np.random.rand(2, 8, 8, 32).astype("float32")
        >>> segmap = np.eye(4, dtype="float32")[np.random.randint(0, 4, (2, 32, 32))]
        >>> CGBlock(16, groups=4, norm_hidden_channels=32)(x, segmap).shape
        (2, 8, 8, 16)

    Reference:
        Zhu et al., "Semantically Multi-modal Image Synthesis", CVPR 2020, Sec. 3.3 and Fig. 3.
    """

    def __init__(
        self,
        filters: int,
        groups: int,
        norm_hidden_channels: int = 128,
        norm_shared_groups: int | None = None,
        norm_groups: int | None = None,
        norm: str = "batch",
        spectral_norm: bool = True,
        kernel_size: int = 3,
        lowering: str = "auto",
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = require_positive_int("filters", filters)
        self.groups = require_positive_int("groups", groups)
        require_divisible("filters", filters, groups, "groups")
        self.norm_hidden_channels = require_positive_int(
            "norm_hidden_channels", norm_hidden_channels
        )
        self.norm_groups = require_positive_int(
            "norm_groups", groups if norm_groups is None else norm_groups
        )
        self.norm_shared_groups = require_positive_int(
            "norm_shared_groups",
            self.norm_groups if norm_shared_groups is None else norm_shared_groups,
        )
        require_choice("norm", norm, NORMS)
        self.norm = norm
        self.spectral_norm = bool(spectral_norm)
        self.kernel_size = require_positive_int("kernel_size", kernel_size)
        require_choice("lowering", lowering, LOWERINGS)
        self.lowering = lowering
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, x_shape, segmap_shape):
        require_rank("x", x_shape, 4, "(batch, height, width, channels)")
        in_channels = x_shape[-1]
        require_divisible("x channels", in_channels, self.groups, "groups")
        middle = min(in_channels, self.filters)
        self.learned_shortcut = in_channels != self.filters
        spatial = tuple(x_shape[:3])

        self.norm_0 = self._cg_norm("norm_0")
        self.conv_0 = self._conv(middle, self.kernel_size, "conv_0")
        self.norm_1 = self._cg_norm("norm_1")
        self.conv_1 = self._conv(self.filters, self.kernel_size, "conv_1")
        self.norm_0.build(x_shape, segmap_shape)
        self.conv_0.build(x_shape)
        self.norm_1.build((*spatial, middle), segmap_shape)
        self.conv_1.build((*spatial, middle))
        if self.learned_shortcut:
            self.norm_s = self._cg_norm("norm_s")
            self.conv_s = self._conv(self.filters, 1, "conv_s", use_bias=False)
            self.norm_s.build(x_shape, segmap_shape)
            self.conv_s.build(x_shape)

    def _cg_norm(self, name):
        return CGNorm(
            groups=self.norm_groups,
            hidden_channels=self.norm_hidden_channels,
            shared_groups=self.norm_shared_groups,
            norm=self.norm,
            kernel_size=self.kernel_size,
            lowering=self.lowering,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            name=name,
        )

    def _conv(self, filters, kernel_size, name, use_bias=True):
        conv = GroupConv2D(
            filters,
            kernel_size,
            groups=self.groups,
            padding="same",
            use_bias=use_bias,
            lowering=self.lowering,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            name=name,
        )
        return maybe_spectral_norm(conv, self.spectral_norm)

    def call(self, x, segmap):
        norms = [self.norm_0, self.norm_1]
        if self.learned_shortcut:
            norms.append(self.norm_s)
        hidden = self._hidden_features(norms, x, segmap)
        dx = self.conv_0(_leaky_relu(self.norm_0.modulate(x, hidden[0])))
        dx = self.conv_1(_leaky_relu(self.norm_1.modulate(dx, hidden[1])))
        if not self.learned_shortcut:
            return x + dx
        return self.conv_s(self.norm_s.modulate(x, hidden[2])) + dx

    def _hidden_features(self, norms, x, segmap) -> list:
        """Every norm's `hidden_features`, computed together: the norms read the same segmap at
        the same size (`shared_hidden_features`)."""
        norms[0]._check_shapes(x.shape, segmap.shape)
        size = require_known_spatial_size("x", x.shape, "the segmap is resized to it")
        require_known_spatial_size("segmap", segmap.shape, "it is resized to x's size")
        return shared_hidden_features(norms, segmap, size)

    def compute_output_shape(self, x_shape, segmap_shape):
        return (*tuple(x_shape[:3]), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "groups": self.groups,
                "norm_hidden_channels": self.norm_hidden_channels,
                "norm_shared_groups": self.norm_shared_groups,
                "norm_groups": self.norm_groups,
                "norm": self.norm,
                "spectral_norm": self.spectral_norm,
                "kernel_size": self.kernel_size,
                "lowering": self.lowering,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config


def _leaky_relu(x):
    return ops.leaky_relu(x, negative_slope=0.2)
