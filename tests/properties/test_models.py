"""Property-based tests of GroupDNet: small configurations build and generate images in
[-1, 1] or raise the documented ValueError; any mask, image or code given to the NumPy entry
points (`generate`, `encode`) is used or refused with a ValueError/TypeError naming it."""

import functools
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smis_layers import GroupDecreasingSchedule
from smis_layers.models import GroupDNet
from tests.properties.common import cases


@cases(12)
@given(
    num_classes=st.integers(1, 4),
    image_size=st.sampled_from([8, 16, 32]),
    base_filters=st.integers(1, 3),
    encoder_multiple=st.sampled_from([1, 2, None]),
    encoder_offset=st.sampled_from([0, 0, 1]),
    split_mode=st.sampled_from(["mask", "crop_resize"]),
    schedule_size=st.sampled_from([None, None, 16]),
    seed=st.integers(0, 100),
)
def test_small_configurations_generate_or_raise(
    num_classes,
    image_size,
    base_filters,
    encoder_multiple,
    encoder_offset,
    split_mode,
    schedule_size,
    seed,
):
    c = num_classes
    schedule = GroupDecreasingSchedule.decreasing(
        c, base_filters, schedule_size or image_size, norm_hidden_channels=2
    )
    encoder_channels = None if encoder_multiple is None else encoder_multiple * c + encoder_offset
    kwargs = {
        "num_classes": c,
        "image_size": image_size,
        "schedule": schedule,
        "encoder_channels": encoder_channels,
        "split_mode": split_mode,
    }
    if schedule_size not in (None, image_size):
        with pytest.raises(ValueError, match="The schedule generates"):
            GroupDNet(**kwargs)
        return
    if encoder_channels is not None and encoder_channels % c:
        with pytest.raises(ValueError, match="must be divisible by `num_classes`"):
            GroupDNet(**kwargs)
        return
    model = GroupDNet(**kwargs)
    labels = np.random.default_rng(seed).integers(0, c, (2, image_size, image_size))
    images = model.generate(labels, seed=seed)
    assert images.shape == (2, image_size, image_size, 3)
    assert np.all(np.isfinite(images)) and np.all(np.abs(images) <= 1.0)
    real = np.random.default_rng(seed).uniform(-1, 1, (2, image_size, image_size, 3))
    mu, logvar = model.encode(real, labels)
    assert mu.shape == logvar.shape == (2, *model.latent_shape)
    assert np.all(np.isfinite(mu)) and np.all(np.isfinite(logvar))


C, SIZE = 3, 8


@functools.cache
def _model() -> GroupDNet:
    return GroupDNet(
        num_classes=C,
        image_size=SIZE,
        schedule=GroupDecreasingSchedule.decreasing(C, 1, SIZE, norm_hidden_channels=3),
        encoder_channels=C,
    )


MASK_KINDS = (
    "labels",
    "labels_channel",
    "one_hot",
    "soft",
    "bool_one_hot",
    "float_labels",
    "fractional_labels",
    "nan_one_hot",
    "scaled_one_hot",
    "wrong_size",
    "wrong_channels",
    "wrong_rank",
    "empty_batch",
    "strings",
)


def _mask(kind: str, rng: np.random.Generator, low: int, high: int) -> np.ndarray:
    labels = rng.integers(low, high + 1, (2, SIZE, SIZE))
    labels[0, 0, 0], labels[1, 0, 0] = low, high  # the extremes are present
    one_hot = np.eye(C, dtype="float32")[np.clip(labels, 0, C - 1)]
    nan_one_hot = one_hot.copy()
    nan_one_hot[0, 0, 0, 0] = np.nan
    return {
        "labels": labels,
        "labels_channel": labels[..., None],
        "one_hot": one_hot,
        "soft": rng.dirichlet(np.ones(C), (2, SIZE, SIZE)).astype("float32"),
        "bool_one_hot": one_hot.astype(bool),
        "float_labels": labels.astype("float32"),
        "fractional_labels": labels + 0.5,
        "nan_one_hot": nan_one_hot,
        "scaled_one_hot": one_hot * 255,
        "wrong_size": labels[:, : SIZE // 2],
        "wrong_channels": np.eye(C + 1, dtype="float32")[np.clip(labels, 0, C)],
        "wrong_rank": labels[0],
        "empty_batch": labels[:0],
        "strings": labels.astype(str),
    }[kind]


@cases(40)
@given(
    kind=st.sampled_from(MASK_KINDS),
    low=st.sampled_from([0, 0, 0, -1]),
    high=st.sampled_from([C - 1, C - 1, C - 1, C, 255]),
    seed=st.integers(0, 2**16),
)
def test_any_mask_is_used_or_refused_naming_it(kind, low, high, seed):
    masks = _mask(kind, np.random.default_rng(seed), low, high)
    in_range = low >= 0 and high < C
    valid = kind in ("soft", "one_hot", "bool_one_hot") or (
        kind in ("labels", "labels_channel", "float_labels") and in_range
    )
    model = _model()
    if not valid:
        with pytest.raises((ValueError, TypeError)) as error:
            model.generate(masks, seed=0)
        assert "`labels`" in str(error.value), error.value
        if kind in ("labels", "float_labels") and high == 255:
            assert "don't-care" in str(error.value)
        return
    out = model.generate(masks, seed=0)
    assert out.shape == (2, SIZE, SIZE, 3) and np.all(np.isfinite(out))


@cases(30)
@given(
    scale=st.sampled_from(["signed", "unit", "byte_float", "uint8", "nan", "inf", "large"]),
    shape_ok=st.sampled_from([True, True, True, False]),
    batch=st.sampled_from([2, 2, 1]),
    seed=st.integers(0, 2**16),
)
def test_any_image_is_used_or_refused_naming_it(scale, shape_ok, batch, seed):
    rng = np.random.default_rng(seed)
    shape = (batch, SIZE, SIZE, 3) if shape_ok else (batch, SIZE, SIZE, 4)
    images = {
        "signed": lambda: rng.uniform(-1, 1, shape),
        "unit": lambda: rng.uniform(0.01, 1, shape),
        "byte_float": lambda: rng.uniform(0, 255, shape),
        "uint8": lambda: rng.integers(0, 256, shape).astype("uint8"),
        "nan": lambda: np.where(rng.random(shape) < 0.1, np.nan, 0.0),
        "inf": lambda: np.full(shape, np.inf),
        "large": lambda: rng.uniform(-5, 5, shape),
    }[scale]()
    labels = rng.integers(0, C, (2, SIZE, SIZE))
    model = _model()
    if not shape_ok or scale in ("byte_float", "nan", "inf", "large") or batch != 2:
        with pytest.raises(ValueError) as error:
            model.encode(images, labels)
        message = str(error.value)
        assert "`images`" in message, message
        if scale == "byte_float" and shape_ok and batch == 2:
            assert "[0, 255]" in message and "127.5" in message
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mu, _ = model.encode(images, labels)
    assert mu.shape == (2, *model.latent_shape) and np.all(np.isfinite(mu))
    messages = " ".join(str(w.message) for w in caught)
    if scale == "uint8":
        assert "converted to [-1, 1]" in messages
    if scale == "unit":
        assert "no negative value" in messages


@cases(20)
@given(
    batch=st.integers(1, 3),
    height=st.sampled_from([1, 2]),
    channels=st.sampled_from([8 * C, 8 * C, 8 * C - 1]),
    poison=st.sampled_from([None, None, np.nan, np.inf]),
)
def test_any_code_is_used_or_refused_naming_it(batch, height, channels, poison):
    model = _model()
    z = np.random.default_rng(0).normal(size=(batch, height, height, channels))
    if poison is not None:
        z[0, 0, 0, 0] = poison
    labels = np.zeros((2, SIZE, SIZE), int)
    if (batch, height, height, channels) != (2, *model.latent_shape) or poison is not None:
        with pytest.raises(ValueError, match="`z`"):
            model.generate(labels, z=z)
        return
    assert model.generate(labels, z=z).shape == (2, SIZE, SIZE, 3)
