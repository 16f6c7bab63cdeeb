"""Property-based tests: any configuration either computes the right thing or raises the
documented ValueError; never a backend crash or a silent broadcast."""

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smis_layers import CGNorm, ClassMaskSplit, GroupConv2D
from tests.helpers import to_numpy

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    groups=st.integers(1, 4),
    in_per_group=st.integers(1, 3),
    out_per_group=st.integers(1, 3),
    in_channels_offset=st.sampled_from([0, 0, 0, 1]),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 2),
    padding=st.sampled_from(["same", "valid", 0, 1]),
    height=st.integers(3, 7),
    width=st.integers(3, 7),
    lowering=st.sampled_from(["native", "split"]),
)
def test_group_conv2d_matches_keras_or_raises(
    groups,
    in_per_group,
    out_per_group,
    in_channels_offset,
    kernel,
    stride,
    padding,
    height,
    width,
    lowering,
):
    in_channels = groups * in_per_group + in_channels_offset
    filters = groups * out_per_group
    x = np.random.default_rng(0).normal(size=(1, height, width, in_channels)).astype("float32")
    layer = GroupConv2D(
        filters, kernel, groups=groups, strides=stride, padding=padding, lowering=lowering
    )
    if in_channels % groups:
        with pytest.raises(ValueError, match="must be divisible by `groups`"):
            layer(x)
        return
    out = to_numpy(layer(x))
    assert out.shape == layer.compute_output_shape(x.shape)
    reference = keras.layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        groups=groups,
        padding=padding if isinstance(padding, str) else "valid",
    )
    x_ref = (
        x
        if isinstance(padding, str)
        else np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    )
    reference.build(x_ref.shape)
    reference.set_weights(layer.get_weights())
    np.testing.assert_allclose(out, to_numpy(reference(x_ref)), atol=1e-5, rtol=1e-5)


@SETTINGS
@given(
    groups=st.sampled_from([1, 2, 4]),
    channels=st.sampled_from([2, 4, 6, 8]),
    mask_channels=st.sampled_from([2, 3, 4, 8]),
    size=st.sampled_from([2, 4, 8]),
    mask_size=st.sampled_from([4, 8, 16]),
)
def test_cg_norm_valid_or_documented_error(groups, channels, mask_channels, size, mask_size):
    x = np.random.default_rng(1).normal(size=(2, size, size, channels)).astype("float32")
    segmap = np.random.default_rng(2).random((2, mask_size, mask_size, mask_channels))
    layer = CGNorm(groups=groups, hidden_channels=4 * groups)
    if channels % groups or mask_channels % groups:
        with pytest.raises(ValueError, match=r"must be divisible by `(shared_)?groups`"):
            layer(x, segmap.astype("float32"))
        return
    out = to_numpy(layer(x, segmap.astype("float32"), training=True))
    assert out.shape == x.shape and np.all(np.isfinite(out))


@SETTINGS
@given(
    classes=st.integers(1, 5),
    mask_channels=st.integers(1, 6),
    height=st.integers(2, 9),
    mask_height=st.integers(2, 9),
    mode=st.sampled_from(["mask", "crop_resize"]),
)
def test_class_mask_split_valid_or_documented_error(
    classes, mask_channels, height, mask_height, mode
):
    rng = np.random.default_rng(3)
    images = rng.uniform(-1, 1, (2, height, 5, 3)).astype("float32")
    segmap = np.eye(mask_channels, dtype="float32")[
        rng.integers(0, mask_channels, (2, mask_height, 5))
    ]
    layer = ClassMaskSplit(classes, mode=mode)
    if mask_channels != classes or mask_height != height:
        with pytest.raises(ValueError, match=r"must have|same height and width"):
            layer(images, segmap)
        return
    out = to_numpy(layer(images, segmap))
    assert out.shape == (2, height, 5, 3 * classes)
    if mode == "mask":
        np.testing.assert_array_equal(out.reshape(2, height, 5, classes, 3).sum(3), images)
