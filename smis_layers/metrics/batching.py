"""One helper for the metrics: apply a function to aligned arrays in batches."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def map_batches(fn: Callable, *arrays, batch_size: int) -> np.ndarray:
    """`fn` applied to consecutive batches of the aligned `arrays`, outputs concatenated.

    Examples:
        >>> map_batches(lambda a, b: a + b, np.arange(5), np.ones(5), batch_size=2)
        array([1., 2., 3., 4., 5.])
    """
    return np.concatenate(
        [
            np.asarray(fn(*(a[i : i + batch_size] for a in arrays)))
            for i in range(0, len(arrays[0]), batch_size)
        ]
    )
