"""Old names kept for one release: a renamed keyword still accepted, a renamed function or
method still callable, each with a `DeprecationWarning` that names the new spelling.

The library's vocabulary (docs/concepts.md, "Words"): `labels` are integer label maps (B, H, W),
a `segmap` is their one-hot (B, H, W, C), and the decoder's `condition` is the segmap as the
decoder sees it (C channels, or 2C paired with the instance edges). In 0.1.0 these three
were all called "mask" (0.1.0); the old spellings go in the next release.

Examples:
    >>> @renamed_keywords(masks="labels")
    ... def generate(labels, seed=None): ...
    >>> generate(masks=labels)  # DeprecationWarning: `masks=` is now `labels=`
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable


def warn_deprecated(message: str, stacklevel: int = 3) -> None:
    warnings.warn(
        f"{message}; the old name will be removed in the next release.",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def renamed_keywords(**old_to_new: str) -> Callable:
    """Decorator: each keyword `old` passed to the function is passed as `new`, with a
    `DeprecationWarning`; passing both is a `TypeError`."""

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            for old, new in old_to_new.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise TypeError(
                        f"{function.__qualname__}() got both `{new}=` and its deprecated "
                        f"spelling `{old}=`"
                    )
                warn_deprecated(f"`{function.__qualname__}({old}=...)` is now `{new}=`")
                kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return wrapper

    return decorate


def renamed_function(function: Callable, old_name: str) -> Callable:
    """`function` under its `old_name`: the same call, with a `DeprecationWarning`."""

    @functools.wraps(function)
    def alias(*args, **kwargs):
        warn_deprecated(f"`{old_name}` is now `{function.__qualname__}`")
        return function(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old_name.rsplit(".", 1)[-1]
    alias.__doc__ = f"Deprecated alias of `{function.__qualname__}`."
    return alias


def moved_module(old: str, new: str) -> None:
    """Called at the top of a module kept only as the old path of `new`."""
    warn_deprecated(f"`{old}` moved to `{new}`", stacklevel=4)
