"""Argument, shape and value checks that raise errors naming the argument, the expected and
the actual value.

Shape checks (`require_rank`, `require_channels`, ...) read static shapes only, so layers can run
them in `build` and again in `call` (Keras builds a layer once; later calls with other shapes
would otherwise reach the backend). Value checks (`require_finite`, `check_image_range`) read
concrete arrays and belong at the public NumPy entry points (models' `encode`/`generate`, data
loaders), never inside traced code.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence

import numpy as np

#: Tolerance of the [-1, 1] image range check (8-bit images mapped with x / 127.5 - 1 and
#: resized bicubically can overshoot slightly).
IMAGE_RANGE_TOLERANCE = 1e-3


def require_positive_int(name: str, value) -> int:
    """`value` as an int >= 1 (NumPy integers accepted); bools, floats and strings refused."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer; received {name}={value!r}")
    return int(value)


def require_non_negative_int(name: str, value) -> int:
    """`value` as an int >= 0 (NumPy integers accepted); bools, floats and strings refused."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer; received {name}={value!r}")
    return int(value)


def require_loss_weight(name: str, value) -> float:
    """`value` as a float, or a ValueError when it is not a finite number >= 0."""
    weight = float(value)
    if not math.isfinite(weight) or weight < 0:
        raise ValueError(f"`{name}` must be a finite number >= 0; received {value!r}")
    return weight


def require_choice(name: str, value, choices: Iterable) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}; received {name}={value!r}")


def require_divisible(name: str, value: int, divisor: int, divisor_name: str) -> None:
    if value % divisor != 0:
        raise ValueError(
            f"`{name}` ({value}) must be divisible by `{divisor_name}` ({divisor}); "
            f"received {name}={value}, {divisor_name}={divisor}"
        )


def require_rank(name: str, shape: Sequence, rank: int, layout: str) -> None:
    if len(shape) != rank:
        raise ValueError(
            f"`{name}` must have rank {rank} {layout}; received a tensor of shape {tuple(shape)}"
        )


def require_channels(name: str, shape: Sequence, expected: int, why: str = "") -> None:
    actual = shape[-1]
    if actual is not None and actual != expected:
        reason = f" ({why})" if why else ""
        raise ValueError(
            f"`{name}` must have {expected} channels{reason}; received shape {tuple(shape)} "
            f"with {actual} channels"
        )


def require_same_spatial_size(name_a: str, shape_a: Sequence, name_b: str, shape_b: Sequence):
    size_a, size_b = tuple(shape_a[1:3]), tuple(shape_b[1:3])
    if None in size_a or None in size_b:
        return
    if size_a != size_b:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same height and width; received "
            f"{name_a} of shape {tuple(shape_a)} and {name_b} of shape {tuple(shape_b)}"
        )


def require_int_pair(name: str, value, minimum: int = 1) -> tuple[int, int]:
    """`value` as an (a, b) pair of ints >= `minimum`; an int stands for (value, value)."""
    single = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    pair = (value, value) if single else tuple(value)
    valid = len(pair) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum for v in pair
    )
    if not valid:
        raise ValueError(
            f"`{name}` must be an int or a pair of ints >= {minimum}; received {name}={value!r}"
        )
    return int(pair[0]), int(pair[1])


def require_same_batch(name_a: str, shape_a: Sequence, name_b: str, shape_b: Sequence) -> None:
    """Equal batch sizes where both are known: a batch of 1 would otherwise broadcast silently."""
    batch_a, batch_b = shape_a[0], shape_b[0]
    if batch_a is None or batch_b is None:
        return
    if int(batch_a) != int(batch_b):
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same batch size; received {name_a} of "
            f"shape {tuple(shape_a)} and {name_b} of shape {tuple(shape_b)}"
        )


def require_known_spatial_size(name: str, shape: Sequence, why: str) -> tuple[int, int]:
    """The static (height, width) of a channels-last 4D shape, or a ValueError."""
    height, width = shape[1], shape[2]
    if height is None or width is None:
        raise ValueError(
            f"`{name}` must have a static height and width ({why}); received shape {tuple(shape)}"
        )
    return int(height), int(width)


def require_float_dtype(name: str, dtype) -> None:
    """A floating-point dtype (Keras layers autocast floats only; an int tensor would otherwise
    fail deep inside the backend's convolution)."""
    import keras

    standard = keras.backend.standardize_dtype(dtype)
    if "float" not in standard:
        raise TypeError(
            f"`{name}` must be a floating-point tensor; received dtype {standard}. Cast it "
            "first (e.g. keras.ops.cast(x, 'float32'))."
        )


def require_numeric_array(name: str, value) -> np.ndarray:
    """`value` as a NumPy array of numbers (bool, int or float), or a TypeError."""
    try:
        array = np.asarray(value)
    except Exception as error:  # ragged nested lists and the like
        raise TypeError(f"`{name}` must be an array of numbers; received {error}") from None
    if _is_low_precision_float(array.dtype):
        return array.astype("float32")
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ):
        raise TypeError(
            f"`{name}` must be an array of numbers (bool, int or float); received dtype "
            f"{array.dtype}"
        )
    if np.iscomplexobj(array):
        raise TypeError(f"`{name}` must hold real numbers; received dtype {array.dtype}")
    return array


def _is_low_precision_float(dtype: np.dtype) -> bool:
    """bfloat16 and float8 arrays (ml_dtypes, what mixed-precision models return), which
    NumPy does not count as numbers."""
    return dtype.name == "bfloat16" or dtype.name.startswith("float8")


def require_finite(name: str, array: np.ndarray) -> None:
    """No NaN or infinite value in a concrete array (a no-op for integer arrays)."""
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        return
    finite = np.isfinite(array)
    if not finite.all():
        bad = array[~finite]
        nan, inf = int(np.isnan(bad).sum()), int(np.isinf(bad).sum())
        raise ValueError(
            f"`{name}` must be finite; received {nan} NaN and {inf} infinite values "
            f"(of {array.size}) in an array of shape {array.shape}"
        )


def check_image_range(name: str, images, warn_unit_range: bool = True) -> np.ndarray:
    """Images as float32 in [-1, 1], the range every model of the library expects.

    - uint8 arrays are unambiguous 8-bit images: converted with `x / 127.5 - 1` (with a
      warning saying so);
    - NaN or infinite values: ValueError;
    - float values outside [-1, 1]: ValueError naming the range found and, for [0, 255]
      data, the conversion to apply;
    - float values inside [0, 1] without a single negative value look like [0, 1] images (a
      real [-1, 1] image almost always has pixels darker than mid-grey): a warning (they are
      valid [-1, 1] values, so they are not refused) unless `warn_unit_range` is False.
    """
    array = require_numeric_array(name, images)
    if array.dtype == np.uint8:
        warnings.warn(
            f"`{name}` is uint8: treated as 8-bit images in [0, 255] and converted to "
            "[-1, 1] with x / 127.5 - 1",
            stacklevel=3,
        )
        return array.astype("float32") / 127.5 - 1.0
    array = array.astype("float32")
    require_finite(name, array)
    if array.size == 0:
        return array
    low, high = float(array.min()), float(array.max())
    tolerance = IMAGE_RANGE_TOLERANCE
    if low < -1.0 - tolerance or high > 1.0 + tolerance:
        hint = ""
        if low >= 0.0 and high <= 255.0 + tolerance:
            hint = (
                " They look like 8-bit images in [0, 255]: convert them with x / 127.5 - 1 "
                "(or pass a uint8 array, which is converted)."
            )
        raise ValueError(
            f"`{name}` must hold images in [-1, 1]; received values in [{low:.4g}, {high:.4g}]."
            f"{hint}"
        )
    if warn_unit_range and low >= 0.0 and high > 0.0 and array.size >= 3 * 64:
        warnings.warn(
            f"`{name}` has no negative value (range [{low:.3g}, {high:.3g}]): if these are "
            "images in [0, 1], convert them with 2 * x - 1; the models expect [-1, 1]",
            stacklevel=3,
        )
    return array
