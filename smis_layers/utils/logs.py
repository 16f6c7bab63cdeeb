"""Quiet start-up of the command line: TensorFlow's C++ start-up lines kept off the terminal."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys


def quiet_tensorflow(verbose: bool = False) -> None:
    """Keeps TensorFlow's C++ start-up lines off the terminal, whenever it is imported.

    TensorFlow writes "All log messages before absl::InitializeLog() ...", the oneDNN notice and
    the cudart/CUDA notices to the process's stderr while it loads, before `TF_CPP_MIN_LOG_LEVEL`
    is read. So this sets `TF_CPP_MIN_LOG_LEVEL=3` (for the C++ logs that come later) and installs
    an import hook that runs TensorFlow's first import with file descriptor 2 pointed at
    /dev/null (Python errors of the import are still raised and printed). Commands that never
    import TensorFlow pay nothing. Nothing is done when `verbose` is true, when the user set
    `TF_CPP_MIN_LOG_LEVEL` to 0 or 1 (asking for those logs), or when TensorFlow is already
    imported.

    Args:
        verbose: keep TensorFlow's start-up lines (`smis --verbose ...`).
    """
    requested = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    if verbose or (requested is not None and requested.strip() in ("0", "1")):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietImport())


class _QuietImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `tensorflow` once through the other finders and loads it with stderr silenced."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # one use; the real finders do the finding
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        self._loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        with _stderr_to_devnull():
            self._loader.exec_module(module)


@contextlib.contextmanager
def _stderr_to_devnull():
    """Points file descriptor 2 (what C++ code writes to) at /dev/null for the block."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
