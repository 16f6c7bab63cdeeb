"""Parameter-free normalizations shared by CGNorm and the encoder (internal helpers)."""

from __future__ import annotations

import keras

NORMS = ("batch", "sync_batch", "instance")

# PyTorch's defaults (eps 1e-5, running-average momentum 0.1 == Keras momentum 0.9), so that
# converted official checkpoints behave identically.
EPSILON = 1e-5
MOMENTUM = 0.9


def make_normalization(norm: str, affine: bool, name: str) -> keras.layers.Layer:
    """Returns the normalization layer named `norm`; `affine` adds a learned scale and offset."""
    if norm == "instance":
        return keras.layers.GroupNormalization(
            groups=-1, center=affine, scale=affine, epsilon=EPSILON, name=name
        )
    return keras.layers.BatchNormalization(
        center=affine,
        scale=affine,
        epsilon=EPSILON,
        momentum=MOMENTUM,
        synchronized=norm == "sync_batch",
        name=name,
    )


def maybe_spectral_norm(layer: keras.layers.Layer, spectral_norm: bool) -> keras.layers.Layer:
    """Wraps `layer` in `keras.layers.SpectralNormalization` (one power iteration) if asked."""
    if not spectral_norm:
        return layer
    return keras.layers.SpectralNormalization(layer, name=f"{layer.name}_sn")
