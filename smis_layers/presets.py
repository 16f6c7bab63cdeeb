"""Preset folders: config.json + model.weights.h5 + metadata.json (sha256 of each file).

The layout follows KerasHub's presets. Loading verifies every file's sha256 before reading it,
builds the model from its config (no code is executed from the folder) and loads the weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import keras

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
ZOO_DIRECTORY = Path(__file__).resolve().parent / "zoo"


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes `data` to `path` through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_save_weights(model: keras.Model, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".weights.h5")
    os.close(fd)
    try:
        model.save_weights(tmp, overwrite=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def available_presets() -> list[str]:
    """Names of the presets shipped in the package's zoo."""
    if not ZOO_DIRECTORY.is_dir():
        return []
    return sorted(p.name for p in ZOO_DIRECTORY.iterdir() if (p / CONFIG_FILE).is_file())


def save_preset(
    model: keras.Model,
    directory: str | os.PathLike,
    metadata: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Writes `model` as a preset folder and returns its path.

    Args:
        model: a registered smis_layers model (its `get_config` rebuilds it).
        directory: the folder; created if needed.
        metadata: extra JSON-serializable metadata (training command, metrics, ...).
        overwrite: replace existing preset files; without it an existing file is an error.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    targets = [directory / name for name in (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE)]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"Preset files already exist: {existing}; pass overwrite=True to replace them"
        )
    config = keras.saving.serialize_keras_object(model)
    atomic_write_bytes(directory / CONFIG_FILE, json.dumps(config, indent=2).encode())
    _atomic_save_weights(model, directory / WEIGHTS_FILE)
    from smis_layers.version import __version__

    meta = {
        "class_name": type(model).__name__,
        "library_version": __version__,
        "keras_version": keras.__version__,
        "parameters": int(model.count_params()),
        **(metadata or {}),
        "sha256": {name: sha256_of(directory / name) for name in (CONFIG_FILE, WEIGHTS_FILE)},
    }
    atomic_write_bytes(directory / METADATA_FILE, json.dumps(meta, indent=2).encode())
    return directory


def resolve_preset(name_or_path: str | os.PathLike) -> Path:
    """The folder of a preset given by zoo name or by path."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    if str(name_or_path) in available_presets():
        return ZOO_DIRECTORY / str(name_or_path)
    raise ValueError(
        f"Unknown preset {str(name_or_path)!r}: not a folder and not in the zoo. "
        f"Available presets: {available_presets() or 'none'}"
    )


def load_preset(name_or_path: str | os.PathLike, expected_class: type | None = None):
    """Builds the model of a preset folder after verifying its files' sha256."""
    directory = resolve_preset(name_or_path)
    metadata_path = directory / METADATA_FILE
    if not metadata_path.is_file():
        raise ValueError(f"Preset {directory} has no {METADATA_FILE}")
    try:
        metadata = json.loads(metadata_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"Preset file {metadata_path} is not valid JSON: {error}") from None
    for name, expected in metadata.get("sha256", {}).items():
        path = directory / name
        if not path.is_file():
            raise ValueError(f"Preset file {path} is missing")
        actual = sha256_of(path)
        if actual != expected:
            raise ValueError(
                f"Preset file {path} is corrupted or was modified: sha256 {actual}, "
                f"expected {expected} (from {metadata_path})"
            )
    config = json.loads((directory / CONFIG_FILE).read_text())
    model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    if expected_class is not None and not isinstance(model, expected_class):
        raise ValueError(
            f"Preset {directory} holds a {type(model).__name__}, not a {expected_class.__name__}"
        )
    try:
        model.load_weights(directory / WEIGHTS_FILE)
    except Exception as error:
        raise ValueError(
            f"The weights in {directory / WEIGHTS_FILE} do not match the model of "
            f"{directory / CONFIG_FILE}: {error}"
        ) from error
    return model
