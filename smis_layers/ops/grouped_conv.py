"""Grouped 2D convolution with a lowering chosen per backend, device, compilation and dtype.

Keras 3 runs `Conv2D(groups>1)` on TensorFlow inside an XLA-compiled function, and XLA's CPU
backward pass for grouped convolutions is 50-200x slower than TensorFlow's own (oneDNN) kernel.
JAX on CPU hits the same XLA path. Splitting the convolution into one ordinary convolution per
group avoids it at no FLOP cost. `resolve_lowering("auto", ...)` prefers:

| backend    | device | XLA-compiled | lowering |
|------------|--------|--------------|----------|
| TensorFlow | GPU    | any          | native (cuDNN grouped kernel) |
| TensorFlow | CPU    | no           | native (oneDNN) |
| TensorFlow | CPU    | yes          | split |
| JAX        | GPU/TPU| always       | native |
| JAX        | CPU    | always       | split |
| PyTorch    | any    | -            | native |

A preferred "native" is then checked, once per process for each backend, device and dtype, by
a tiny forward and backward pass against a NumPy reference (`native_kernel_works`): a backend
kernel that raises or computes wrong values there is replaced by "split". Machines differ:
TensorFlow's CPU grouped gradient exists only with oneDNN (on by default on some x86 CPUs, off on
others), and on AMD CPUs with oneDNN it fails in float16 ("filter_size does not have enough
elements") while float32 works.

`benchmarks/group_conv.py` measures every cell it can on the current machine.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

LOWERINGS = ("auto", "native", "split")

logger = logging.getLogger(__name__)


def resolve_lowering(lowering: str, groups: int, inputs=None, dtype: str | None = None) -> str:
    """Returns the concrete lowering ("native" or "split") used for one call.

    Args:
        lowering: "auto", "native" or "split".
        groups: number of groups of the convolution.
        inputs: the input tensor, used to read its device and dtype where the backend exposes
            them.
        dtype: the compute dtype; default `inputs.dtype`, or float32 without inputs.
    """
    if lowering not in LOWERINGS:
        raise ValueError(f"`lowering` must be one of {LOWERINGS}; received lowering={lowering!r}")
    if groups == 1:
        return "native"
    if lowering != "auto":
        return lowering
    if dtype is None:
        dtype = inputs.dtype if inputs is not None else "float32"
    dtype = keras.backend.standardize_dtype(dtype)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        device = "GPU" if _tensorflow_on_gpu(inputs) else "CPU"
        if device == "CPU" and _tensorflow_in_xla_context():
            return "split"
    elif backend == "jax":
        device = _jax_default_platform()
        if device == "cpu":
            return "split"
    else:
        device = _torch_device(inputs)
    return "native" if native_kernel_works(dtype, device) else "split"


def native_kernel_works(dtype: str = "float32", device: str | None = None) -> bool:
    """Whether the backend's grouped-convolution kernel computes a forward and backward pass
    correctly for `dtype` on `device`.

    Probed once per process for each backend, device and dtype (cached): a grouped 3x3
    convolution of small integers, forward and gradients with respect to the input and the
    kernel, compared with a NumPy reference (exact in float16 and bfloat16 too). A kernel that
    raises, or returns other values, fails the probe; `resolve_lowering("auto", ...)` then uses
    "split" and says so once at debug level.

    Args:
        dtype: a floating dtype name.
        device: "CPU" or "GPU" on TensorFlow, a JAX platform ("cpu", "gpu", "tpu"), a torch
            device type ("cpu", "cuda"); default: the backend's default device.
    """
    if device is None:
        device = _default_device()
    return _probe_cached(keras.backend.backend(), device, keras.backend.standardize_dtype(dtype))


@functools.cache
def _probe_cached(backend: str, device: str, dtype: str) -> bool:
    try:
        works, detail = _probe_native(backend, device, dtype)
    except Exception as error:  # any failure of the kernel means: do not use it
        works, detail = False, f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    if not works:
        logger.debug(
            "GroupConv2D(lowering='auto'): the %s grouped-convolution kernel failed its probe "
            "on %s in %s (%s); using the 'split' lowering there",
            backend,
            device,
            dtype,
            detail,
        )
    return works


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


def grouped_conv2d_many(
    inputs,
    kernels: Sequence,
    biases: Sequence,
    groups: int,
    padding: str = "same",
    lowering: str = "auto",
) -> list:
    """Several stride-1 grouped convolutions of the same `inputs` (the same `groups`) as one.

    The kernels `(kh, kw, cin // groups, cout_i)` are laid side by side group by group, so that
    group `g` of the one convolution computes group `g` of every kernel; its output is split
    back into one tensor per kernel. The function is the same as separate
    `grouped_conv2d(inputs, kernels[i], groups) + biases[i]` calls (up to the summation order of
    float32 round-off); the one convolution reads the input once and, with the split lowering,
    runs `groups` convolutions instead of `groups * len(kernels)`.

    Args:
        inputs: channels-last input `(B, H, W, cin)`.
        kernels: kernels of equal `(kh, kw, cin // groups)`; each `cout_i` divisible by `groups`.
        biases: one `(cout_i,)` bias or None per kernel.
        groups: number of groups of every convolution.
        padding: "same" or "valid".
        lowering: "auto", "native" or "split", as for `grouped_conv2d`.
    """
    dtype = inputs.dtype
    kernels = [ops.cast(k, dtype) for k in kernels]
    if len(kernels) == 1:
        outputs = [grouped_conv2d(inputs, kernels[0], groups, (1, 1), padding, lowering)]
    else:
        kh, kw, cin_group = tuple(kernels[0].shape[:3])
        per_group = [k.shape[-1] // groups for k in kernels]
        kernel = ops.concatenate(
            [
                ops.reshape(k, (kh, kw, cin_group, groups, n))
                for k, n in zip(kernels, per_group, strict=True)
            ],
            axis=-1,
        )
        kernel = ops.reshape(kernel, (kh, kw, cin_group, groups * sum(per_group)))
        fused = grouped_conv2d(inputs, kernel, groups, (1, 1), padding, lowering)
        spatial = tuple(fused.shape[1:3])
        fused = ops.reshape(fused, (-1, *spatial, groups, sum(per_group)))
        splits = np.cumsum(per_group)[:-1].tolist()
        outputs = [
            ops.reshape(part, (-1, *spatial, n * groups))
            for part, n in zip(ops.split(fused, splits, axis=-1), per_group, strict=True)
        ]
    return [
        y if b is None else ops.add(y, ops.cast(b, dtype))
        for y, b in zip(outputs, biases, strict=True)
    ]


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


# The probe: input (2, 5, 6, 4) and kernel (3, 3, 2, 4), 2 groups, "valid" padding. Every value
# is -1, 0 or 1, so every sum (at most 50 terms) is an integer that float16 and bfloat16 hold.
_PROBE_GROUPS = 2


def _probe_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.integers(-1, 2, size=(2, 5, 6, 4)).astype("float32")
    kernel = rng.integers(-1, 2, size=(3, 3, 2, 4)).astype("float32")
    upstream = rng.integers(-1, 2, size=(2, 3, 4, 4)).astype("float32")
    return x, kernel, upstream


def _reference_grouped_conv(x, kernel, upstream):
    """NumPy forward, input gradient and kernel gradient of a "valid" grouped convolution,
    for the loss sum(outputs * upstream)."""
    kh, kw, cin_group, cout = kernel.shape
    cout_group = cout // _PROBE_GROUPS
    out_h, out_w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    y = np.zeros((x.shape[0], out_h, out_w, cout), "float32")
    dx = np.zeros_like(x)
    dk = np.zeros_like(kernel)
    for g in range(_PROBE_GROUPS):
        cin = slice(g * cin_group, (g + 1) * cin_group)
        co = slice(g * cout_group, (g + 1) * cout_group)
        for i in range(kh):
            for j in range(kw):
                patch = x[:, i : i + out_h, j : j + out_w, cin]
                y[..., co] += patch @ kernel[i, j, :, co]
                dx[:, i : i + out_h, j : j + out_w, cin] += (
                    upstream[..., co] @ kernel[i, j, :, co].T
                )
                dk[i, j, :, co] += np.einsum("bhwc,bhwo->co", patch, upstream[..., co])
    return y, dx, dk


def _probe_native(backend: str, device: str, dtype: str) -> tuple[bool, str]:
    x, kernel, upstream = _probe_arrays()
    run = {"tensorflow": _tensorflow_run, "jax": _jax_run, "torch": _torch_run}[backend]
    actual = run(x, kernel, upstream, device, dtype)
    expected = _reference_grouped_conv(x, kernel, upstream)
    names = ("forward", "input gradient", "kernel gradient")
    for name, a, e in zip(names, actual, expected, strict=True):
        if a.shape != e.shape or not np.allclose(a, e, atol=1e-3):
            return False, f"its {name} differs from the reference"
    return True, "ok"


def _tensorflow_run(x, kernel, upstream, device, dtype):
    import tensorflow as tf

    # `tf.init_scope` leaves any graph being traced, but it also stops every gradient tape, so
    # the backward pass calls the two ops that Conv2D's registered gradient calls.
    with tf.init_scope(), tf.device(f"/{device}:0"):
        x, kernel, upstream = (tf.cast(tf.constant(a), dtype) for a in (x, kernel, upstream))
        strides = [1, 1, 1, 1]
        y = _native_conv(x, kernel, (1, 1), "valid")
        dx = tf.raw_ops.Conv2DBackpropInput(
            input_sizes=tf.shape(x),
            filter=kernel,
            out_backprop=upstream,
            strides=strides,
            padding="VALID",
        )
        dk = tf.raw_ops.Conv2DBackpropFilter(
            input=x,
            filter_sizes=tf.shape(kernel),
            out_backprop=upstream,
            strides=strides,
            padding="VALID",
        )
        return tuple(tf.cast(a, "float32").numpy() for a in (y, dx, dk))


def _jax_run(x, kernel, upstream, device, dtype):
    import jax
    import jax.numpy as jnp

    # Inside a `jax.jit` trace, evaluate eagerly rather than stage the probe into the program.
    with jax.ensure_compile_time_eval(), jax.default_device(jax.devices(device)[0]):
        x, kernel, upstream = (jnp.asarray(a, dtype) for a in (x, kernel, upstream))
        y, pullback = jax.vjp(lambda a, k: _native_conv(a, k, (1, 1), "valid"), x, kernel)
        dx, dk = pullback(upstream)
        return tuple(np.asarray(a.astype("float32")) for a in (y, dx, dk))


def _torch_run(x, kernel, upstream, device, dtype):
    import torch

    with torch.enable_grad():
        x, kernel, upstream = (
            torch.tensor(a, device=device).to(getattr(torch, dtype)) for a in (x, kernel, upstream)
        )
        x.requires_grad_(True)
        kernel.requires_grad_(True)
        y = _native_conv(x, kernel, (1, 1), "valid")
        dx, dk = torch.autograd.grad(y, [x, kernel], grad_outputs=upstream)
        return tuple(a.detach().float().cpu().numpy() for a in (y, dx, dk))


def _default_device() -> str:
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return "GPU" if _tensorflow_has_gpu() else "CPU"
    if backend == "jax":
        return _jax_default_platform()
    return _torch_device(None)


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


def _jax_default_platform() -> str:
    import jax

    return jax.default_backend()


def _torch_device(inputs) -> str:
    device = getattr(inputs, "device", None)
    if device is not None:
        return device.type
    from keras.src.backend.torch.core import get_device

    return str(get_device()).split(":")[0]
