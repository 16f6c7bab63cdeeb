from __future__ import annotations

import keras
from keras import ops

from smis_layers.ops.grouped_conv import LOWERINGS, grouped_conv2d
from smis_layers.utils.validation import (
    require_choice,
    require_divisible,
    require_float_dtype,
    require_int_pair,
    require_positive_int,
)


@keras.saving.register_keras_serializable(package="smis_layers")
class GroupConv2D(keras.layers.Layer):
    """Grouped 2D convolution whose lowering is chosen for speed per backend and device.

    The input channels and the filters are split into `groups` groups; output group `g` sees
    only input group `g`. Numerically it equals `keras.layers.Conv2D(groups=groups)` with the
    same kernel, but it does not fall into the XLA-on-CPU trap of Keras's grouped convolution
    (whose backward pass is 50-200x slower on TensorFlow and JAX CPUs): `lowering="auto"` uses
    the backend's grouped kernel where it is fast (cuDNN on GPU, oneDNN on TensorFlow CPU outside
    XLA) and one convolution per group where XLA compiles for the CPU.

    The layer has a `kernel` attribute of shape `(kh, kw, in_channels // groups, filters)`, the
    layout of `keras.layers.Conv2D`, so `keras.layers.SpectralNormalization` can wrap it.

    Args:
        filters: number of output channels; divisible by `groups`.
        kernel_size: int or pair of ints.
        groups: number of groups; divides both the input channels and `filters`.
        strides: int or pair of ints.
        padding: "same", "valid", or an int / pair of ints of symmetric zero padding (PyTorch's
            `padding=p`, which differs from "same" for even inputs and strides > 1).
        use_bias: whether to add a bias.
        lowering: "auto", "native" (the backend's grouped kernel, called directly) or "split"
            (one convolution per group, concatenated).
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        kernel_constraint, bias_constraint: as in `keras.layers.Conv2D`.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Input shape: `(batch, height, width, in_channels)`, channels last.
    Output shape: `(batch, new_height, new_width, filters)`.

    Examples:
        >>> x = np.random.rand(2, 16, 16, 8).astype("float32")
        >>> conv = GroupConv2D(16, 3, groups=4)
        >>> conv(x).shape
        (2, 16, 16, 16)

    Reference:
        Zhu et al., "Semantically Multi-modal Image Synthesis", CVPR 2020
        (https://arxiv.org/abs/2003.12697): group convolutions keep each class's features apart.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        groups: int = 1,
        strides: int | tuple[int, int] = 1,
        padding: str | int | tuple[int, int] = "same",
        use_bias: bool = True,
        lowering: str = "auto",
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = require_positive_int("filters", filters)
        self.groups = require_positive_int("groups", groups)
        require_divisible("filters", filters, groups, "groups")
        self.kernel_size = require_int_pair("kernel_size", kernel_size)
        self.strides = require_int_pair("strides", strides)
        if min(self.kernel_size) < 1 or min(self.strides) < 1:
            raise ValueError(
                "`kernel_size` and `strides` must be positive; received "
                f"kernel_size={kernel_size!r}, strides={strides!r}"
            )
        if isinstance(padding, str):
            require_choice("padding", padding.lower(), ("same", "valid"))
            self.padding = padding.lower()
        else:
            self.padding = require_int_pair("padding", padding, minimum=0)
        self.use_bias = bool(use_bias)
        require_choice("lowering", lowering, LOWERINGS)
        self.lowering = lowering
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build(self, input_shape):
        in_channels = input_shape[-1]
        if in_channels is None:
            raise ValueError(
                "The channel dimension of the input of GroupConv2D must be known; "
                f"received input_shape={tuple(input_shape)}"
            )
        require_divisible("input channels", in_channels, self.groups, "groups")
        self._check_output_size(input_shape)
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: in_channels})
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*self.kernel_size, in_channels // self.groups, self.filters),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.filters,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )

    def _check_output_size(self, input_shape) -> None:
        """An input too small for the kernel ("valid" or explicit padding) gives an empty
        output; refuse it here rather than in the backend's convolution."""
        for axis, length in enumerate(tuple(input_shape)[1:3]):
            if length is not None and self._output_length(length, axis) < 1:
                raise ValueError(
                    f"The input of GroupConv2D {self.name!r} is too small: its spatial size "
                    f"{tuple(input_shape)[1:3]} with kernel_size={self.kernel_size}, "
                    f"strides={self.strides} and padding={self.padding!r} gives an empty "
                    f"output; received input shape {tuple(input_shape)}"
                )

    def call(self, inputs):
        require_float_dtype("inputs", inputs.dtype)
        self._check_output_size(inputs.shape)
        padding = self.padding
        if not isinstance(padding, str):
            pad_h, pad_w = padding
            if pad_h or pad_w:
                inputs = ops.pad(inputs, ((0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0)))
            padding = "valid"
        outputs = grouped_conv2d(
            inputs, self.kernel, self.groups, self.strides, padding, self.lowering
        )
        if self.bias is not None:
            outputs = ops.add(outputs, self.bias)
        return outputs

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        return (
            batch,
            self._output_length(height, 0),
            self._output_length(width, 1),
            self.filters,
        )

    def _output_length(self, length, axis):
        if length is None:
            return None
        kernel, stride = self.kernel_size[axis], self.strides[axis]
        if self.padding == "same":
            return -(-length // stride)
        pad = 0 if self.padding == "valid" else 2 * self.padding[axis]
        return (length + pad - kernel) // stride + 1

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "groups": self.groups,
                "strides": self.strides,
                "padding": self.padding,
                "use_bias": self.use_bias,
                "lowering": self.lowering,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
                "bias_constraint": keras.constraints.serialize(self.bias_constraint),
            }
        )
        return config
