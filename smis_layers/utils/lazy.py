"""Lazy package exports: a package's public names imported on first use."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module `__getattr__` and `__dir__` of `package` that import each name of `exports`
    (name -> the module defining it) on first access and keep it in the package's namespace.

    Examples:
        >>> exports = {"folder_dataset": "smis_layers.data.folders"}
        >>> __getattr__, __dir__ = lazy_exports(__name__, exports)
    """

    def getattr_(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return getattr_, dir_
