"""File I/O shared by presets, runs, code priors, images and the CLI: atomic writes (a temporary
file in the same folder, then a rename), sha256 digests, and the .npz / .weights.h5 weight files
with their shape checks.

Keras is imported where a model's variables are read, not here: the command line imports this
module (through `smis_layers.presets`) before it knows whether a backend is needed."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras


def _default_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _default_file_mode()


def sha256_of(path: str | os.PathLike) -> str:
    """The hex sha256 digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes `data` to `path` through a temporary file in the same folder and a rename.

    Args:
        path: the file to write (its folder must exist).
        data: its new content.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, value) -> None:
    """Writes `value` as indented JSON (and a final newline), atomically."""
    atomic_write_bytes(Path(path), (json.dumps(value, indent=2) + "\n").encode())


def atomic_save_weights(model: keras.Model, path: str | os.PathLike) -> None:
    """`model.save_weights(path)` through a temporary file and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".weights.h5")
    os.close(fd)
    try:
        model.save_weights(tmp, overwrite=True)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Writes named arrays as a compressed .npz (no pickled objects), atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(Path(path), buffer.getvalue())


def read_npz_arrays(path: str | os.PathLike, kind: str) -> dict[str, np.ndarray]:
    """The arrays of a .npz file, read without unpickling.

    Args:
        path: the .npz file.
        kind: what the file should be, for the error (e.g. ".npz weights file").

    Raises:
        ValueError: naming the file when it is missing, truncated or corrupted.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(
            f"{path} is not a readable {kind} (missing, truncated or corrupted?): {error}"
        ) from None


def atomic_save_variables(
    model: keras.Model, path: str | os.PathLike, dtype: str | None = None
) -> None:
    """Saves `model`'s variables (each once, by path) to a compressed .npz, atomically.

    Args:
        model: the model whose variables are saved.
        path: the .npz archive.
        dtype: a float dtype (e.g. `"float16"`) to store float variables in, halving the file;
            a variable that would overflow it (a non-finite value after the cast) is stored in
            its own dtype. `None` stores every variable as it is. `load_variables` casts back
            to each variable's dtype.
    """
    import keras

    arrays = {}
    for variable in model.weights:
        array = keras.ops.convert_to_numpy(variable)
        if dtype is not None and np.issubdtype(array.dtype, np.floating):
            with np.errstate(over="ignore"):  # an overflow keeps the variable's own dtype
                narrowed = array.astype(dtype)
            if np.isfinite(narrowed).all() or not np.isfinite(array).all():
                array = narrowed
        arrays[variable.path] = array
    atomic_save_arrays(path, arrays)


def load_variables(
    model: keras.Model, path: str | os.PathLike, config_path: str | os.PathLike | None = None
) -> None:
    """Loads an `atomic_save_variables` archive into `model`.

    Args:
        model: the model whose variables are assigned.
        path: the .npz archive.
        config_path: the file that described `model`, named in the error (default: `path`).

    Raises:
        ValueError: listing the variables that are missing, unexpected or of another shape.
    """
    path = Path(path)
    stored = read_npz_arrays(path, ".npz weights file")
    expected = {v.path: tuple(v.shape) for v in model.weights}
    lines = shape_differences(expected, {k: v.shape for k, v in stored.items()})
    raise_mismatches(lines, path, Path(config_path) if config_path else path)
    for variable in model.weights:
        variable.assign(np.asarray(stored[variable.path], dtype=variable.dtype))


def shape_differences(expected: dict, stored: dict) -> list[str]:
    """One line per name missing from `stored`, unexpected in it, or of another shape."""
    lines = []
    for name in sorted(set(expected) | set(stored)):
        if name not in stored:
            lines.append(f"missing from the file: {name} {tuple(expected[name])}")
        elif name not in expected:
            lines.append(f"unexpected in the file: {name} {tuple(stored[name])}")
        elif tuple(stored[name]) != tuple(expected[name]):
            lines.append(
                f"shape mismatch: {name} file {tuple(stored[name])}, model {tuple(expected[name])}"
            )
    return lines


def raise_mismatches(mismatches: list[str], weights_path: Path, config_path: Path) -> None:
    """A ValueError listing `mismatches` (the first 20), if there are any."""
    if not mismatches:
        return
    shown = "\n  ".join(mismatches[:20])
    more = f"\n  ... and {len(mismatches) - 20} more" if len(mismatches) > 20 else ""
    raise ValueError(
        f"The weights in {weights_path} do not match the model of {config_path} "
        f"({len(mismatches)} mismatched variables):\n  {shown}{more}"
    )


def _h5_shapes(path: Path) -> dict[str, tuple]:
    import h5py

    shapes = {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            shapes[name] = tuple(item.shape)

    try:
        with h5py.File(path, "r") as handle:
            handle.visititems(visit)
    except OSError as error:
        raise ValueError(
            f"{path} is not a readable HDF5 weights file (truncated or corrupted?): {error}"
        ) from None
    return shapes


def weights_mismatches(model: keras.Model, weights_path: str | os.PathLike) -> list[str]:
    """How a `.weights.h5` file differs from what `model` would save: one line per variable
    missing from the file, unexpected in it, or of another shape. Empty when they match."""
    stored = _h5_shapes(Path(weights_path))
    with tempfile.TemporaryDirectory() as tmp:
        reference = Path(tmp) / "reference.weights.h5"
        model.save_weights(reference)
        expected = _h5_shapes(reference)
    return shape_differences(expected, stored)
