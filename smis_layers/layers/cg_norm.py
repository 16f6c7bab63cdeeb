from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from smis_layers.layers.group_conv2d import GroupConv2D
from smis_layers.layers.normalization import NORMS, make_normalization
from smis_layers.ops.grouped_conv import LOWERINGS, grouped_conv2d_many
from smis_layers.ops.resize import resize_nearest
from smis_layers.utils.validation import (
    require_choice,
    require_divisible,
    require_float_dtype,
    require_known_spatial_size,
    require_positive_int,
    require_rank,
    require_same_batch,
)


@keras.saving.register_keras_serializable(package="smis_layers")
class CGNorm(keras.layers.Layer):
    """Conditional group normalization: SPADE with grouped convolutions.

    `out = norm(x) * (1 + gamma) + beta`, where `norm` is parameter-free (batch, sync-batch or
    instance), and `gamma`, `beta` are predicted from the segmap (resized, nearest with
    PyTorch's index convention, to x's size) by a grouped conv + ReLU to `hidden_channels`
    channels (`shared_groups` groups) followed by two grouped convs (`groups` groups). With
    `shared_groups == groups`, output group `g` depends only on x's group `g` and on the segmap's
    group `g` of channels.

    The official GroupDNet variants are all expressible:
    DeepFashion `CGNorm(groups=G, hidden_channels=128)`; Cityscapes (a condition of 2C
    channels, each class paired with the instance-edge map) `CGNorm(groups=C, hidden_channels=C * G,
    shared_groups=C)`; ADE20K `CGNorm(groups=G, hidden_channels=2C if C % G == 0 else C * G,
    shared_groups=C)`.

    Args:
        groups: groups of the gamma and beta convolutions; divides x's channels and
            `hidden_channels`.
        hidden_channels: width of the shared hidden layer.
        shared_groups: groups of the shared convolution; divides the segmap's channels and
            `hidden_channels`. Defaults to `groups`.
        norm: parameter-free normalization of x: "batch", "sync_batch" or "instance".
        kernel_size: odd kernel size of the three convolutions.
        lowering: grouped-convolution lowering, see `GroupConv2D`.
        kernel_initializer: initializer of the three convolutions' kernels.
        **kwargs: base layer keyword arguments.

    Call arguments:
        x: (B, H, W, channels) features.
        segmap: (B, h, w, condition_channels) the decoder's condition: the one-hot segmap,
            optionally with extra per-class channels such as instance edges; resized to (H, W).

    Examples:
        >>> x = np.random.rand(2, 8, 8, 16).astype("float32")
        >>> segmap = np.eye(4, dtype="float32")[np.random.randint(0, 4, (2, 32, 32))]
        >>> CGNorm(groups=4, hidden_channels=32)(x, segmap).shape
        (2, 8, 8, 16)

    Reference:
        Zhu et al., "Semantically Multi-modal Image Synthesis", CVPR 2020, Sec. 3.3;
        Park et al., "Semantic Image Synthesis with Spatially-Adaptive Normalization", CVPR 2019.
    """

    def __init__(
        self,
        groups: int,
        hidden_channels: int,
        shared_groups: int | None = None,
        norm: str = "batch",
        kernel_size: int = 3,
        lowering: str = "auto",
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.groups = require_positive_int("groups", groups)
        self.hidden_channels = require_positive_int("hidden_channels", hidden_channels)
        self.shared_groups = require_positive_int(
            "shared_groups", groups if shared_groups is None else shared_groups
        )
        require_divisible("hidden_channels", hidden_channels, self.shared_groups, "shared_groups")
        require_divisible("hidden_channels", hidden_channels, self.groups, "groups")
        require_choice("norm", norm, NORMS)
        self.norm = norm
        self.kernel_size = require_positive_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"`kernel_size` must be odd; received kernel_size={kernel_size}")
        require_choice("lowering", lowering, LOWERINGS)
        self.lowering = lowering
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _check_shapes(self, x_shape, segmap_shape):
        require_rank("x", x_shape, 4, "(batch, height, width, channels)")
        require_rank("segmap", segmap_shape, 4, "(batch, height, width, condition_channels)")
        require_same_batch("x", x_shape, "segmap", segmap_shape)
        channels, condition_channels = x_shape[-1], segmap_shape[-1]
        for name, shape in (("x", x_shape), ("segmap", segmap_shape)):
            if shape[-1] is None:
                raise ValueError(
                    f"The channel dimension of `{name}` must be known; received shape "
                    f"{tuple(shape)}"
                )
        require_divisible("x channels", channels, self.groups, "groups")
        require_divisible(
            "segmap channels", condition_channels, self.shared_groups, "shared_groups"
        )
        if self.built:
            built_x, built_segmap = self._built_channels
            if (channels, condition_channels) != (built_x, built_segmap):
                raise ValueError(
                    f"CGNorm {self.name!r} was built for x with {built_x} channels and a segmap "
                    f"with {built_segmap} channels; received x of shape {tuple(x_shape)} and "
                    f"segmap of shape {tuple(segmap_shape)}"
                )
        return channels, condition_channels

    def build(self, x_shape, segmap_shape):
        channels, condition_channels = self._check_shapes(x_shape, segmap_shape)
        self._built_channels = (channels, condition_channels)
        self.param_free_norm = make_normalization(self.norm, affine=False, name="param_free_norm")
        self.param_free_norm.build(x_shape)
        conv_args = {
            "kernel_size": self.kernel_size,
            "padding": "same",
            "lowering": self.lowering,
            "kernel_initializer": keras.initializers.get(
                keras.initializers.serialize(self.kernel_initializer)
            ),
        }
        self.shared = GroupConv2D(
            self.hidden_channels, groups=self.shared_groups, name="shared", **conv_args
        )
        self.gamma = GroupConv2D(channels, groups=self.groups, name="gamma", **conv_args)
        self.beta = GroupConv2D(channels, groups=self.groups, name="beta", **conv_args)
        hidden_shape = (*tuple(x_shape[:3]), self.hidden_channels)
        self.shared.build((*tuple(x_shape[:3]), condition_channels))
        self.gamma.build(hidden_shape)
        self.beta.build(hidden_shape)

    def call(self, x, segmap):
        # Keras builds a layer once: later calls are checked here, so that another batch size
        # or channel count is an error rather than a silent broadcast or a backend crash.
        self._check_shapes(x.shape, segmap.shape)
        require_float_dtype("x", x.dtype)
        size = require_known_spatial_size("x", x.shape, "the segmap is resized to it")
        require_known_spatial_size("segmap", segmap.shape, "it is resized to x's size")
        return self.modulate(x, self.hidden_features(segmap, size))

    def hidden_features(self, segmap, size: tuple[int, int]):
        """The shared layer's output: `relu(shared(segmap resized to size))`.

        `CGBlock` computes this for its norms together (they read the same segmap at the same
        size); `call` is `modulate(x, hidden_features(segmap, x's size))`.

        Examples:
            >>> norm = CGNorm(groups=4, hidden_channels=32)
            >>> x = np.random.rand(2, 8, 8, 16).astype("float32")
            >>> segmap = np.eye(4, dtype="float32")[np.random.randint(0, 4, (2, 32, 32))]
            >>> _ = norm(x, segmap)  # builds the layer
            >>> hidden = norm.hidden_features(segmap, (8, 8))
            >>> hidden.shape
            (2, 8, 8, 32)
            >>> norm.modulate(x, hidden).shape
            (2, 8, 8, 16)
        """
        return shared_hidden_features([self], segmap, size)[0]

    def modulate(self, x, hidden):
        """`norm(x) * (1 + gamma(hidden)) + beta(hidden)`; gamma and beta run as one grouped
        convolution (`grouped_conv2d_many`), which computes the same function. See
        `hidden_features` for an example."""
        normalized = self.param_free_norm(x)
        gamma, beta = grouped_conv2d_many(
            hidden,
            [self.gamma.kernel, self.beta.kernel],
            [self.gamma.bias, self.beta.bias],
            self.groups,
            padding="same",
            lowering=self.lowering,
        )
        return normalized * (1.0 + gamma) + beta

    def compute_output_shape(self, x_shape, segmap_shape):
        return tuple(x_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "groups": self.groups,
                "hidden_channels": self.hidden_channels,
                "shared_groups": self.shared_groups,
                "norm": self.norm,
                "kernel_size": self.kernel_size,
                "lowering": self.lowering,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config


def shared_hidden_features(norms: Sequence[CGNorm], segmap, size: tuple[int, int]) -> list:
    """`norm.hidden_features(segmap, size)` of every norm in `norms`, computed together.

    Norms that read the same segmap at the same size (a `CGBlock`'s) resize it once and run their
    shared convolutions as one (`grouped_conv2d_many`, the same function). The norms must have
    equal `shared_groups`, `kernel_size` and segmap channels.
    """
    first = norms[0]
    segmap = resize_nearest(ops.cast(segmap, first.compute_dtype), size)
    convs = [norm.shared for norm in norms]
    hidden = grouped_conv2d_many(
        segmap,
        [conv.kernel for conv in convs],
        [conv.bias for conv in convs],
        first.shared_groups,
        padding="same",
        lowering=first.lowering,
    )
    return [ops.relu(h) for h in hidden]
