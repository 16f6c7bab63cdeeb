"""The batch norm inside CGNorm: Keras's results (outputs, gradients, inference) with a fused
training kernel and PyTorch's Bessel-corrected moving variance, on every backend."""

import keras
import numpy as np
import pytest

from smis_layers.layers.normalization import BatchNormalization, make_normalization
from tests.helpers import loss_gradients, to_numpy


def pair(affine: bool, shape):
    kwargs = {"center": affine, "scale": affine, "epsilon": 1e-5, "momentum": 0.9}
    ours, reference = BatchNormalization(**kwargs), keras.layers.BatchNormalization(**kwargs)
    for layer in (ours, reference):
        layer.build(shape)
    if affine:
        rng = np.random.default_rng(3)
        for layer in (ours, reference):
            layer.gamma.assign(rng.uniform(0.5, 1.5, shape[-1]).astype("float32"))
            layer.beta.assign(np.linspace(-1, 1, shape[-1]).astype("float32"))
            rng = np.random.default_rng(3)
    return ours, reference


@pytest.mark.parametrize("affine", [False, True])
def test_training_step_equals_keras_with_the_bessel_corrected_moving_variance(affine):
    shape = (3, 5, 6, 4)
    x = np.random.default_rng(0).normal(2.0, 3.0, shape).astype("float32")
    ours, reference = pair(affine, shape)
    np.testing.assert_allclose(
        to_numpy(ours(x, training=True)), to_numpy(reference(x, training=True)), atol=2e-5
    )
    np.testing.assert_allclose(
        to_numpy(ours.moving_mean), to_numpy(reference.moving_mean), rtol=1e-5, atol=1e-6
    )
    n = 3 * 5 * 6
    batch_variance = x.reshape(-1, 4).var(axis=0)
    np.testing.assert_allclose(
        to_numpy(ours.moving_variance), 0.9 + 0.1 * batch_variance * n / (n - 1), rtol=1e-5
    )
    np.testing.assert_allclose(
        to_numpy(reference.moving_variance), 0.9 + 0.1 * batch_variance, rtol=1e-5
    )
    (ours_dx,), ours_dw = loss_gradients(ours, [x], training=True)
    (ref_dx,), ref_dw = loss_gradients(reference, [x], training=True)
    np.testing.assert_allclose(ours_dx, ref_dx, atol=2e-5)
    for a, b in zip(ours_dw, ref_dw, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_inference_uses_the_moving_statistics_like_keras():
    shape = (2, 4, 4, 3)
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    ours, reference = pair(False, shape)
    for layer in (ours, reference):
        layer.moving_mean.assign(np.array([0.5, -1.0, 2.0], "float32"))
        layer.moving_variance.assign(np.array([4.0, 0.25, 1.0], "float32"))
    np.testing.assert_array_equal(
        to_numpy(ours(x, training=False)), to_numpy(reference(x, training=False))
    )


def test_make_normalization_picks_the_fused_layer_for_batch_only():
    assert type(make_normalization("batch", False, "n")) is BatchNormalization
    if keras.backend.backend() == "tensorflow":  # Keras supports synchronized=True there only
        synced = make_normalization("sync_batch", False, "n")
        assert type(synced) is keras.layers.BatchNormalization and synced.synchronized
    assert isinstance(make_normalization("instance", False, "n"), keras.layers.GroupNormalization)
