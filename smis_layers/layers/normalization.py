"""Parameter-free normalizations shared by CGNorm and the encoder (internal helpers)."""

from __future__ import annotations

import keras
from keras import ops

from smis_layers.ops.batch_norm import batch_norm_training

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
    if norm == "sync_batch":  # moments all-reduced across replicas: Keras's own layer
        return keras.layers.BatchNormalization(
            center=affine,
            scale=affine,
            epsilon=EPSILON,
            momentum=MOMENTUM,
            synchronized=True,
            name=name,
        )
    return BatchNormalization(
        center=affine, scale=affine, epsilon=EPSILON, momentum=MOMENTUM, name=name
    )


class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` whose training step runs one fused kernel
    (`smis_layers.ops.batch_norm`) and whose moving variance averages the Bessel-corrected batch
    variance, as PyTorch's `running_var` does (so training continues an official checkpoint as
    the official code would). Inference is Keras's. Falls back to Keras's call for masks and
    batch renormalization."""

    def call(self, inputs, training=None, mask=None):
        if mask is not None or self.renorm or not (training and self.trainable):
            return super().call(inputs, training=training, mask=mask)
        x = ops.cast(inputs, "float32")
        channels = x.shape[-1]
        scale = ops.cast(self.gamma, "float32") if self.scale else ops.ones((channels,))
        offset = ops.cast(self.beta, "float32") if self.center else ops.zeros((channels,))
        y, mean, variance = batch_norm_training(x, scale, offset, self.epsilon)
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            moving.assign(moving * self.momentum + batch * (1.0 - self.momentum))
        return ops.cast(y, self.compute_dtype)


def maybe_spectral_norm(layer: keras.layers.Layer, spectral_norm: bool) -> keras.layers.Layer:
    """Wraps `layer` in `keras.layers.SpectralNormalization` (one power iteration) if asked."""
    if not spectral_norm:
        return layer
    return keras.layers.SpectralNormalization(layer, name=f"{layer.name}_sn")
