"""Argument and shape checks that raise errors naming the argument, the expected and the actual."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def require_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer; received {name}={value!r}")
    return value


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
