"""Argument and shape checks that raise errors naming the argument, the expected and the actual."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


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
