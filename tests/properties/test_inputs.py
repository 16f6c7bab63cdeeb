"""Property-based tests of the input checks shared by the entry points and of the synthetic
data's determinism: a value is accepted unchanged, converted as documented, or refused with a
ValueError/TypeError naming the argument."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from smis_layers.data.synthetic import SyntheticShapes
from smis_layers.models.segmaps import check_label_values
from smis_layers.utils.validation import check_image_range, require_positive_int
from tests.properties.common import cases

FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32)


SHAPES = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=6)


@cases(100)
@given(
    images=st.one_of(
        hnp.arrays(
            st.sampled_from([np.float32, np.float64]),
            SHAPES,
            elements=st.one_of(FLOATS, st.floats(-1, 1, width=32), st.floats(0, 255, width=32)),
        ),
        hnp.arrays(np.uint8, SHAPES),
        hnp.arrays(np.int16, SHAPES, elements=st.integers(-3, 300)),
    )
)
def test_image_range_is_accepted_converted_or_refused(images):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = check_image_range("images", images)
        except ValueError as error:
            assert "`images`" in str(error)
            values = images.astype("float64")
            assert images.dtype != np.uint8
            assert not np.all(np.isfinite(values)) or np.any(np.abs(values) > 1.001)
            return
    assert out.dtype == np.float32 and out.shape == images.shape
    if images.dtype == np.uint8:
        np.testing.assert_allclose(out, images.astype("float32") / 127.5 - 1.0)
        assert any("uint8" in str(w.message) for w in caught)
    else:
        np.testing.assert_array_equal(out, images.astype("float32"))
        assert np.all(np.abs(out) <= 1.001)


@cases(60)
@given(
    num_classes=st.integers(1, 300),
    labels=st.one_of(
        hnp.arrays(
            st.sampled_from([np.int32, np.int64, np.float32]),
            hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5),
            elements=st.integers(-2, 300),
        ),
        hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)),
    ),
    fraction=st.sampled_from([0.0, 0.0, 0.5]),
)
def test_label_values_are_accepted_or_refused_naming_them(num_classes, labels, fraction):
    if labels.dtype == np.float32 and fraction:
        labels = labels + np.float32(fraction)
    in_range = labels.min() >= 0 and labels.max() < num_classes
    integral = np.all(labels == np.round(labels))
    if in_range and integral:
        check_label_values("masks", labels, num_classes)
        return
    with pytest.raises(ValueError, match="`masks`") as error:
        check_label_values("masks", labels, num_classes)
    if integral and 255 in labels.astype("int64").tolist() and num_classes <= 255:
        assert "don't-care" in str(error.value)


@cases(20)
@given(
    indices=st.lists(st.integers(0, 10**6), min_size=1, max_size=3),
    seed=st.integers(0, 2**31),
    num_classes=st.integers(2, 9),
)
def test_synthetic_sample_depends_only_on_seed_and_index(indices, seed, num_classes):
    data = SyntheticShapes(image_size=64, num_classes=num_classes, seed=seed)
    batch = data.batch(indices)
    for position, index in enumerate(indices):
        alone = data.batch([index])
        for key in ("images", "masks", "palette", "texture", "params"):
            np.testing.assert_array_equal(batch[key][position], alone[key][0])
    assert batch["masks"].min() >= 0 and batch["masks"].max() < num_classes
    assert np.all(np.abs(batch["images"]) <= 1.0)


@cases(30)
@given(
    indices=st.one_of(
        st.lists(st.integers(-5, 5), max_size=3),
        st.lists(st.one_of(st.floats(-2, 5), st.just(float("nan"))), min_size=1, max_size=3),
        st.just(["a"]),
    )
)
def test_synthetic_indices_are_used_or_refused(indices):
    data = SyntheticShapes(image_size=64, num_classes=3, seed=0)
    array = np.asarray(indices)
    valid = (
        array.size > 0
        and array.dtype.kind in "if"
        and np.all(np.isfinite(array.astype("float64")))
        and np.all(array == np.round(array))
        and array.min() >= 0
    )
    if valid:
        assert data.batch(indices)["images"].shape == (len(indices), 64, 64, 3)
        return
    with pytest.raises((ValueError, TypeError), match="`indices`"):
        data.batch(indices)


@cases(30)
@given(value=st.one_of(st.integers(-3, 5), st.floats(-1, 5), st.booleans(), st.text(max_size=2)))
def test_positive_int_arguments(value):
    valid = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if valid:
        assert require_positive_int("filters", value) == value
        assert require_positive_int("filters", np.int64(value)) == value
        return
    with pytest.raises(ValueError, match="`filters` must be a positive integer; received"):
        require_positive_int("filters", value)


def test_check_label_values_old_path_is_a_deprecated_alias():
    from smis_layers.models.groupdnet import groupdnet

    with pytest.warns(DeprecationWarning, match="models.segmaps.check_label_values"):
        assert groupdnet.check_label_values is check_label_values
