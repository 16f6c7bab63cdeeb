"""Property-based tests of the layers: any configuration and input shape either computes the
right thing (equal to Keras's grouped Conv2D, to a NumPy statement, or keeping the groups
apart) or raises the documented ValueError/TypeError; never a backend crash or a silent
broadcast."""

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smis_layers import CGBlock, CGNorm, ClassMaskSplit, GroupConv2D
from tests.helpers import to_numpy
from tests.properties.common import cases

# ---------------------------------------------------------------------------- GroupConv2D


@cases(40)
@given(
    groups=st.integers(1, 4),
    in_per_group=st.integers(1, 3),
    out_per_group=st.integers(1, 3),
    in_channels_offset=st.sampled_from([0, 0, 0, 1]),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 2),
    padding=st.sampled_from(["same", "valid", 0, 1]),
    height=st.integers(1, 7),
    width=st.integers(1, 7),
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
    pad = 0 if isinstance(padding, str) else padding
    if padding != "same" and min(height, width) + 2 * pad < kernel:
        with pytest.raises(ValueError, match="is too small"):
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
    x_ref = x if isinstance(padding, str) else np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    reference.build(x_ref.shape)
    reference.set_weights(layer.get_weights())
    np.testing.assert_allclose(out, to_numpy(reference(x_ref)), atol=1e-5, rtol=1e-5)


@cases(15)
@given(
    groups=st.integers(1, 3),
    first_size=st.integers(3, 6),
    second_size=st.integers(1, 6),
    second_channels_offset=st.sampled_from([0, 0, 1]),
    dtype=st.sampled_from(["float32", "float32", "int32", "bool"]),
)
def test_group_conv2d_later_calls_are_checked(
    groups, first_size, second_size, second_channels_offset, dtype
):
    """Keras builds a layer once; a later call with other channels, a too small input or a
    non-float dtype is still an error naming the problem."""
    channels = 2 * groups
    layer = GroupConv2D(groups, 3, groups=groups, padding="valid")
    layer(np.zeros((1, first_size, first_size, channels), "float32"))
    x = np.ones((2, second_size, second_size, channels + second_channels_offset), dtype)
    if second_channels_offset:
        with pytest.raises(ValueError, match=r"incompatible with the layer|expected axis -1"):
            layer(x)
    elif dtype != "float32":
        with pytest.raises(TypeError, match="must be a floating-point tensor"):
            layer(x)
    elif second_size < 3:
        with pytest.raises(ValueError, match="is too small"):
            layer(x)
    else:
        assert to_numpy(layer(x)).shape == (2, second_size - 2, second_size - 2, groups)


# ---------------------------------------------------------------------------- ClassMaskSplit


def crop_resize_reference(images: np.ndarray, segmap: np.ndarray) -> np.ndarray:
    """The official crop_resize split in NumPy: each class's masked image cropped to the
    class's box (from the mask) and resized back with PyTorch's nearest convention."""
    batch, height, width, _ = images.shape
    classes = segmap.shape[-1]
    masked = segmap[..., :, None] * images[..., None, :]  # (B, H, W, C, 3)
    out = np.zeros_like(masked)

    def source(lo, hi, length):
        n = hi - lo + 1
        scale = np.float32(n) / np.float32(length)
        offset = np.floor(np.arange(length, dtype="float32") * scale).astype(int)
        return lo + np.minimum(offset, n - 1)

    for b in range(batch):
        for c in range(classes):
            occupied = segmap[b, :, :, c] > 0
            if not occupied.any():
                out[b, :, :, c] = masked[b, :, :, c]
                continue
            rows, cols = np.flatnonzero(occupied.any(1)), np.flatnonzero(occupied.any(0))
            r = source(rows.min(), rows.max(), height)
            q = source(cols.min(), cols.max(), width)
            out[b, :, :, c] = masked[b][np.ix_(r, q)][:, :, c]
    return out.reshape(batch, height, width, 3 * classes)


@cases(40)
@given(
    classes=st.integers(1, 5),
    mask_channels=st.integers(1, 6),
    height=st.integers(2, 9),
    mask_height=st.integers(2, 9),
    mask_batch=st.sampled_from([2, 2, 1]),
    mode=st.sampled_from(["mask", "crop_resize"]),
    seed=st.integers(0, 2**16),
)
def test_class_mask_split_matches_numpy_or_raises(
    classes, mask_channels, height, mask_height, mask_batch, mode, seed
):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (2, height, 5, 3)).astype("float32")
    segmap = np.eye(mask_channels, dtype="float32")[
        rng.integers(0, mask_channels, (mask_batch, mask_height, 5))
    ]
    layer = ClassMaskSplit(classes, mode=mode)
    if mask_channels != classes or mask_height != height or mask_batch != 2:
        with pytest.raises(ValueError, match=r"must have|same height and width|same batch size"):
            layer(images, segmap)
        return
    out = to_numpy(layer(images, segmap))
    assert out.shape == (2, height, 5, 3 * classes)
    if mode == "mask":
        expected = (segmap[..., :, None] * images[..., None, :]).reshape(out.shape)
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_array_equal(out.reshape(2, height, 5, classes, 3).sum(3), images)
    else:
        np.testing.assert_array_equal(out, crop_resize_reference(images, segmap))


@cases(10)
@given(
    second_batch=st.integers(1, 3),
    second_height=st.integers(3, 6),
    second_mask_height=st.integers(3, 6),
)
def test_class_mask_split_later_calls_are_checked(second_batch, second_height, second_mask_height):
    """After a first call has built the layer, a mask of another batch or size is an error,
    not a broadcast."""
    layer = ClassMaskSplit(3)
    layer(np.zeros((2, 4, 4, 3), "float32"), np.zeros((2, 4, 4, 3), "float32"))
    images = np.zeros((2, second_height, 4, 3), "float32")
    segmap = np.zeros((second_batch, second_mask_height, 4, 3), "float32")
    if second_batch != 2 or second_height != second_mask_height:
        with pytest.raises(ValueError, match=r"same batch size|same height and width"):
            layer(images, segmap)
    else:
        assert to_numpy(layer(images, segmap)).shape == (2, second_height, 4, 9)


# ---------------------------------------------------------------------------- CGNorm


def _group_diffs(out, base, groups):
    return np.abs(out - base).reshape(*out.shape[:3], groups, -1).max(axis=(0, 1, 2, 4))


@cases(30)
@given(
    groups=st.sampled_from([1, 2, 4]),
    channels=st.sampled_from([2, 4, 6, 8]),
    mask_channels=st.sampled_from([2, 3, 4, 8]),
    size=st.sampled_from([2, 4, 8]),
    mask_size=st.sampled_from([4, 8, 16]),
    mask_batch=st.sampled_from([2, 2, 2, 1]),
    norm=st.sampled_from(["batch", "instance"]),
    changed_group=st.integers(0, 3),
)
def test_cg_norm_keeps_groups_apart_or_raises(
    groups, channels, mask_channels, size, mask_size, mask_batch, norm, changed_group
):
    x = np.random.default_rng(1).normal(size=(2, size, size, channels)).astype("float32")
    segmap = np.random.default_rng(2).random((mask_batch, mask_size, mask_size, mask_channels))
    segmap = segmap.astype("float32")
    layer = CGNorm(groups=groups, hidden_channels=4 * groups, norm=norm)
    if channels % groups or mask_channels % groups or mask_batch != 2:
        with pytest.raises(
            ValueError, match=r"must be divisible by `(shared_)?groups`|same batch size"
        ):
            layer(x, segmap)
        return
    base = to_numpy(layer(x, segmap, training=True))
    assert base.shape == x.shape and np.all(np.isfinite(base))
    # Output group g depends only on x's group g (and the mask's group g).
    g = changed_group % groups
    per_group = channels // groups
    changed = x.copy()
    changed[..., g * per_group : (g + 1) * per_group] *= 3.0
    changed[..., g * per_group : (g + 1) * per_group] += 1.0
    diff = _group_diffs(to_numpy(layer(changed, segmap, training=True)), base, groups)
    assert np.all(np.delete(diff, g) <= 1e-5), diff


@cases(15)
@given(
    groups=st.sampled_from([1, 2]),
    channels_offset=st.sampled_from([0, 0, 2]),
    mask_channels_offset=st.sampled_from([0, 0, 2]),
    batch=st.integers(1, 3),
    height=st.integers(1, 6),
    mask_height=st.integers(1, 9),
)
def test_cg_norm_later_calls_are_checked(
    groups, channels_offset, mask_channels_offset, batch, height, mask_height
):
    layer = CGNorm(groups=groups, hidden_channels=2 * groups, norm="instance")
    layer(np.ones((2, 4, 4, 2 * groups), "float32"), np.ones((2, 8, 8, 2 * groups), "float32"))
    x = np.random.default_rng(0).normal(size=(2, height, height, 2 * groups + channels_offset))
    segmap = np.ones((batch, mask_height, mask_height, 2 * groups + mask_channels_offset))
    if channels_offset or mask_channels_offset or batch != 2:
        with pytest.raises(ValueError, match=r"was built for|same batch size"):
            layer(x.astype("float32"), segmap.astype("float32"))
        return
    out = to_numpy(layer(x.astype("float32"), segmap.astype("float32")))
    assert out.shape == x.shape and np.all(np.isfinite(out))


# ---------------------------------------------------------------------------- CGBlock


@cases(20)
@given(
    groups=st.sampled_from([1, 2, 4]),
    in_per_group=st.integers(1, 3),
    out_per_group=st.integers(1, 3),
    in_channels_offset=st.sampled_from([0, 0, 0, 1]),
    norm=st.sampled_from(["batch", "instance"]),
    spectral_norm=st.booleans(),
    size=st.integers(2, 6),
    mask_size=st.sampled_from([4, 8]),
    changed_group=st.integers(0, 3),
)
def test_cg_block_keeps_groups_apart_or_raises(
    groups,
    in_per_group,
    out_per_group,
    in_channels_offset,
    norm,
    spectral_norm,
    size,
    mask_size,
    changed_group,
):
    in_channels = groups * in_per_group + in_channels_offset
    filters = groups * out_per_group
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, size, size, in_channels)).astype("float32")
    segmap = rng.random((2, mask_size, mask_size, groups)).astype("float32")
    block = CGBlock(
        filters, groups, norm_hidden_channels=2 * groups, norm=norm, spectral_norm=spectral_norm
    )
    if in_channels % groups:
        with pytest.raises(ValueError, match=r"must be divisible by `groups`"):
            block(x, segmap)
        return
    base = to_numpy(block(x, segmap, training=False))
    assert base.shape == (2, size, size, filters) and np.all(np.isfinite(base))
    assert block.learned_shortcut == (in_channels != filters)
    g = changed_group % groups
    changed = x.copy()
    changed[..., g * in_per_group : (g + 1) * in_per_group] += 1.0
    diff = _group_diffs(to_numpy(block(changed, segmap, training=False)), base, groups)
    assert np.all(np.delete(diff, g) <= 1e-5), diff
