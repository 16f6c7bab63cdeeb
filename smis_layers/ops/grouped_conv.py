"""Grouped 2D convolution with a lowering chosen per backend, device and compilation.

Keras 3 runs `Conv2D(groups>1)` on TensorFlow inside an XLA-compiled function, and XLA's CPU
backward pass for grouped convolutions is 50-200x slower than TensorFlow's own (oneDNN) kernel.
JAX on CPU hits the same XLA path. Splitting the convolution into one ordinary convolution per
group avoids it at no FLOP cost. `resolve_lowering("auto", ...)` picks:

| backend    | device | XLA-compiled | lowering |
|------------|--------|--------------|----------|
| TensorFlow | GPU    | any          | native (cuDNN grouped kernel) |
| TensorFlow | CPU    | no           | native (oneDNN), split when TF has no CPU grouped gradient |
| TensorFlow | CPU    | yes          | split |
| JAX        | GPU/TPU| always       | native |
| JAX        | CPU    | always       | split |
| PyTorch    | any    | -            | native |

`benchmarks/group_conv.py` measures every cell it can on the current machine.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import keras
from keras import ops

LOWERINGS = ("auto", "native", "split")


def resolve_lowering(lowering: str, groups: int, inputs=None) -> str:
    """Returns the concrete lowering ("native" or "split") used for one call.

    Args:
        lowering: "auto", "native" or "split".
        groups: number of groups of the convolution.
        inputs: the input tensor, used to read its device where the backend exposes it.
    """
    if lowering not in LOWERINGS:
        raise ValueError(f"`lowering` must be one of {LOWERINGS}; received lowering={lowering!r}")
    if groups == 1:
        return "native"
    if lowering != "auto":
        return lowering
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow_auto(inputs)
    if backend == "jax":
        return "split" if _jax_default_platform() == "cpu" else "native"
    return "native"


def grouped_conv2d(
    inputs,
    kernel,
    groups: int,
    strides: Sequence[int] = (1, 1),
    padding: str = "valid",
    lowering: str = "auto",
):
    """Grouped convolution of channels-last `inputs` with a `(kh, kw, cin // groups, cout)` kernel.

    `padding` is "same" or "valid" (explicit zero padding is applied by the caller).
    """
    strides = tuple(strides)
    if resolve_lowering(lowering, groups, inputs) == "split":
        return _split_conv(inputs, kernel, groups, strides, padding)
    return _native_conv(inputs, kernel, strides, padding)


def _split_conv(inputs, kernel, groups, strides, padding):
    input_parts = ops.split(inputs, groups, axis=-1)
    kernel_parts = ops.split(kernel, groups, axis=-1)
    outputs = [
        ops.conv(x, k, strides=strides, padding=padding)
        for x, k in zip(input_parts, kernel_parts, strict=True)
    ]
    return ops.concatenate(outputs, axis=-1)


def _native_conv(inputs, kernel, strides, padding):
    if keras.backend.backend() == "tensorflow":
        # Keras wraps grouped convolutions in `tf.function(jit_compile=True)` on TensorFlow;
        # calling the TensorFlow op directly keeps whatever compilation the caller chose.
        import tensorflow as tf

        return tf.nn.convolution(inputs, kernel, strides=strides, padding=padding.upper())
    return ops.conv(inputs, kernel, strides=strides, padding=padding)


def _tensorflow_auto(inputs) -> str:
    if _tensorflow_on_gpu(inputs):
        return "native"
    if _tensorflow_in_xla_context():
        return "split"
    return "native" if _tensorflow_cpu_has_grouped_gradient() else "split"


def _tensorflow_on_gpu(inputs) -> bool:
    device = getattr(inputs, "device", "") or ""
    if "CPU" in device.upper():
        return False
    if "GPU" in device.upper():
        return True
    return _tensorflow_has_gpu()


@functools.lru_cache(maxsize=1)
def _tensorflow_has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def _tensorflow_in_xla_context() -> bool:
    try:
        from tensorflow.python.framework import ops as tf_ops
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # pragma: no cover - private module moved; assume compiled
        return True
    return bool(control_flow_util.GraphOrParentsInXlaContext(tf_ops.get_default_graph()))


@functools.lru_cache(maxsize=1)
def _tensorflow_cpu_has_grouped_gradient() -> bool:
    """TensorFlow's CPU grouped-conv gradient exists only with oneDNN; probe it once, eagerly."""
    import tensorflow as tf

    with tf.init_scope(), tf.device("/CPU:0"):
        x = tf.ones((1, 3, 3, 2))
        k = tf.ones((1, 1, 1, 2))
        try:
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.nn.convolution(x, k, padding="VALID")
            tape.gradient(y, x)
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
            return False
    return True


def _jax_default_platform() -> str:
    import jax

    return jax.default_backend()
