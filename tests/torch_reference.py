"""Independent PyTorch re-statements of the official GroupDNet layers, for parity tests.

Written from the paper's equations and the facts in DESIGN.md; weights are taken from our Keras
layers and transposed to PyTorch's layout.
"""

from __future__ import annotations

import numpy as np

from tests.helpers import to_numpy


def _torch():
    import torch

    return torch


def conv_weight(kernel):
    """(kh, kw, in/groups, out) -> (out, in/groups, kh, kw)."""
    return _torch().from_numpy(np.ascontiguousarray(to_numpy(kernel).transpose(3, 2, 0, 1)))


def grouped_conv(x, conv_layer, padding):
    torch = _torch()
    bias = None if conv_layer.bias is None else torch.from_numpy(to_numpy(conv_layer.bias))
    return torch.nn.functional.conv2d(
        x,
        conv_weight(conv_layer.kernel),
        bias,
        stride=conv_layer.strides,
        padding=padding,
        groups=conv_layer.groups,
    )


def param_free_norm(x, norm):
    torch = _torch()
    if norm == "instance":
        return torch.nn.functional.instance_norm(x, eps=1e-5)
    return torch.nn.functional.batch_norm(x, None, None, training=True, eps=1e-5)


def cg_norm(x, segmap, layer):
    """GroupDNet's conditional group normalization (official GROUP_SPADE semantics)."""
    torch = _torch()
    pad = layer.kernel_size // 2
    segmap = torch.nn.functional.interpolate(segmap, size=x.shape[2:], mode="nearest")
    hidden = torch.relu(grouped_conv(segmap, layer.shared, pad))
    gamma = grouped_conv(hidden, layer.gamma, pad)
    beta = grouped_conv(hidden, layer.beta, pad)
    return param_free_norm(x, layer.norm) * (1 + gamma) + beta


def cg_block(x, segmap, block):
    """GroupDNet's residual block (official SPADEV2ResnetBlock semantics), no spectral norm."""
    torch = _torch()

    def act(t):
        return torch.nn.functional.leaky_relu(t, 0.2)

    def conv(t, wrapped, pad):
        inner = getattr(wrapped, "layer", wrapped)
        return grouped_conv(t, inner, pad)

    pad = block.kernel_size // 2
    if block.learned_shortcut:
        shortcut = conv(cg_norm(x, segmap, block.norm_s), block.conv_s, 0)
    else:
        shortcut = x
    dx = conv(act(cg_norm(x, segmap, block.norm_0)), block.conv_0, pad)
    dx = conv(act(cg_norm(dx, segmap, block.norm_1)), block.conv_1, pad)
    return shortcut + dx


def nchw(x):
    return _torch().from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


def nhwc(x):
    return x.detach().numpy().transpose(0, 2, 3, 1)
