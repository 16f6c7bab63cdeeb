"""Preset folders: the files a trained model is shipped as, and the zoo of shipped presets.

A preset folder holds `config.json` (the generator+encoder's Keras config), `model.weights.h5`
(their weights), optionally `discriminator.json` + `discriminator.weights.npz` (for fine-tuning;
a compressed archive of its variables by path, stored in float16 by default: a quarter of the
size of Keras's float32 `.weights.h5`, which stores every spectrally normalized kernel twice),
optionally `code_prior.npz` (a `FittedCodePrior` that `sample_z` draws from; `load_preset`
attaches it as `model.code_prior`),
`metadata.json` (sha256 of each of those files, parameter counts, how the preset was trained,
metrics) and, for the zoo, a `README.md` model card with a `samples.png` grid. The layout follows
KerasHub's presets. Loading verifies every file's sha256 before reading it, builds the model from
its config with `safe_mode=True` (no code is executed from the folder) and loads the weights;
a config that does not match the weights is reported layer by layer.

This module sits below the models (their `from_preset` calls `load_preset`): it imports no model
class, and Keras only when a model is saved or built, so that the command line can list presets
without starting a backend. The file I/O it uses lives in `smis_layers.utils.io`, the model card
in `smis_layers.model_card`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from smis_layers.utils import io as _io

if TYPE_CHECKING:
    import keras

#: The zoo preset that the command line and the demo use when none is named.
DEFAULT_PRESET = "groupdnet_shapes64"

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
DISCRIMINATOR_CONFIG_FILE = "discriminator.json"
DISCRIMINATOR_WEIGHTS_FILE = "discriminator.weights.npz"
CODE_PRIOR_FILE = "code_prior.npz"
#: The dtype a preset's discriminator is stored in by default (`save_preset`).
DISCRIMINATOR_STORAGE_DTYPE = "float16"
CARD_FILE = "README.md"
SAMPLES_FILE = "samples.png"


def zoo_directory() -> Path:
    """The folder of the shipped presets: the repository's top-level `zoo/`, installed in the
    wheel as the `smis_layers.zoo` package."""
    spec = importlib.util.find_spec("smis_layers.zoo")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parent.parent / "zoo"


def available_presets() -> list[str]:
    """Names of the presets shipped in the zoo."""
    zoo = zoo_directory()
    if not zoo.is_dir():
        return []
    return sorted(p.name for p in zoo.iterdir() if (p / CONFIG_FILE).is_file())


def save_preset(
    model: keras.Model,
    directory: str | os.PathLike,
    metadata: dict | None = None,
    overwrite: bool = False,
    discriminator: keras.Model | None = None,
    discriminator_dtype: str | None = DISCRIMINATOR_STORAGE_DTYPE,
) -> Path:
    """Writes `model` (and optionally its discriminator) as a preset folder; returns its path.

    Args:
        model: a registered smis_layers model (its `get_config` rebuilds it).
        directory: the folder; created if needed.
        metadata: extra JSON-serializable metadata (training command, metrics, ...).
        overwrite: replace existing preset files; without it an existing file is an error.
        discriminator: a trained discriminator to ship for fine-tuning (separate files, which
            `load_preset` does not read; `load_preset_discriminator` does).
        discriminator_dtype: the dtype the discriminator's float variables are stored in
            (default float16, half the size: the discriminator only restarts fine-tuning,
            where float16's relative rounding of 5e-4 does not matter); `None` stores float32.
            The generator is always stored exactly.
    """
    import keras

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    code_prior = getattr(model, "code_prior", None)
    names = [CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE]
    if code_prior is not None:
        names.append(CODE_PRIOR_FILE)
    if discriminator is not None:
        names += [DISCRIMINATOR_CONFIG_FILE, DISCRIMINATOR_WEIGHTS_FILE]
    existing = [str(directory / n) for n in names if (directory / n).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"Preset files already exist: {existing}; pass overwrite=True to replace them"
        )
    _io.atomic_write_json(directory / CONFIG_FILE, keras.saving.serialize_keras_object(model))
    _io.atomic_save_weights(model, directory / WEIGHTS_FILE)
    hashed = [CONFIG_FILE, WEIGHTS_FILE]
    if code_prior is not None:
        code_prior.save(directory / CODE_PRIOR_FILE)
        hashed.append(CODE_PRIOR_FILE)
    else:
        (directory / CODE_PRIOR_FILE).unlink(missing_ok=True)
    if discriminator is not None:
        _io.atomic_write_json(
            directory / DISCRIMINATOR_CONFIG_FILE,
            keras.saving.serialize_keras_object(discriminator),
        )
        _io.atomic_save_variables(
            discriminator, directory / DISCRIMINATOR_WEIGHTS_FILE, dtype=discriminator_dtype
        )
        hashed += [DISCRIMINATOR_CONFIG_FILE, DISCRIMINATOR_WEIGHTS_FILE]
    else:
        for name in (DISCRIMINATOR_CONFIG_FILE, DISCRIMINATOR_WEIGHTS_FILE):
            (directory / name).unlink(missing_ok=True)
    from smis_layers.version import __version__

    meta = {
        "class_name": type(model).__name__,
        "library_version": __version__,
        "keras_version": keras.__version__,
        "parameters": int(model.count_params()),
    }
    if hasattr(model, "parameter_counts"):
        meta["parameter_counts"] = model.parameter_counts()
    if discriminator is not None:
        meta["discriminator_parameters"] = int(discriminator.count_params())
        meta["discriminator_storage_dtype"] = discriminator_dtype or "float32"
    convention = getattr(model, "label_convention", None)
    if convention is not None:  # a loaded preset saved again keeps how it reads label files
        meta["label_convention"] = convention
    meta.update(metadata or {})
    meta["sha256"] = {name: _io.sha256_of(directory / name) for name in hashed}
    meta["file_bytes"] = {name: (directory / name).stat().st_size for name in hashed}
    _io.atomic_write_json(directory / METADATA_FILE, meta)
    return directory


def resolve_preset(name_or_path: str | os.PathLike) -> Path:
    """The folder of a preset given by zoo name or by path."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if str(name_or_path) in available_presets():
        return zoo_directory() / str(name_or_path)
    raise ValueError(
        f"Unknown preset {str(name_or_path)!r}: not a folder and not in the zoo. "
        f"Available presets: {available_presets() or 'none'}"
    )


def preset_identity(name_or_path: str | os.PathLike) -> dict[str, str]:
    """What a file written with a preset's model records so that a later command can find and
    check that model: "preset" (the zoo name, or the folder's absolute path, so that the file
    still points at it from another working directory) and "weights_sha256" (a preset can be
    retrained under the same name)."""
    directory = resolve_preset(name_or_path)
    is_zoo_name = not Path(name_or_path).expanduser().is_dir()
    hashes = preset_metadata(directory).get("sha256", {})
    return {
        "preset": str(name_or_path) if is_zoo_name else str(directory.resolve()),
        "weights_sha256": str(hashes.get(WEIGHTS_FILE, "")),
    }


def preset_metadata(name_or_path: str | os.PathLike) -> dict:
    """The parsed `metadata.json` of a preset."""
    path = resolve_preset(name_or_path) / METADATA_FILE
    if not path.is_file():
        raise ValueError(f"Preset {path.parent} has no {METADATA_FILE}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"Preset file {path} is not valid JSON: {error}") from None


def update_preset_metadata(name_or_path: str | os.PathLike, updates: dict) -> dict:
    """Merges `updates` into a preset's metadata.json (atomically) and returns the result.
    The sha256 entries cannot be changed this way."""
    if "sha256" in updates or "file_bytes" in updates:
        raise ValueError("`updates` must not change the sha256 or file_bytes entries")
    directory = resolve_preset(name_or_path)
    metadata = {**preset_metadata(directory), **updates}
    _io.atomic_write_json(directory / METADATA_FILE, metadata)
    return metadata


def verify_preset(name_or_path: str | os.PathLike, names: list[str] | None = None) -> Path:
    """Checks the sha256 of the preset's files (all hashed files, or `names`); returns its
    folder. Raises ValueError naming a missing, corrupted or modified file."""
    directory = resolve_preset(name_or_path)
    metadata = preset_metadata(directory)
    hashes = metadata.get("sha256", {})
    for name in names or list(hashes):
        path = directory / name
        if not path.is_file():
            raise ValueError(f"Preset file {path} is missing")
        if name not in hashes:
            raise ValueError(f"Preset {directory}: {METADATA_FILE} holds no sha256 for {name}")
        actual = _io.sha256_of(path)
        if actual != hashes[name]:
            raise ValueError(
                f"Preset file {path} is corrupted or was modified: sha256 {actual}, "
                f"expected {hashes[name]} (from {directory / METADATA_FILE})"
            )
    return directory


def load_preset(name_or_path: str | os.PathLike, expected_class: type | None = None):
    """Builds the model of a preset folder (or zoo name) after verifying its files' sha256.

    Args:
        name_or_path: a zoo name (`available_presets()`) or a preset folder.
        expected_class: if given, the preset's model must be an instance of it.
    """
    directory = verify_preset(name_or_path, [CONFIG_FILE, WEIGHTS_FILE])
    model = _build_and_load(directory, CONFIG_FILE, WEIGHTS_FILE, expected_class)
    metadata = preset_metadata(directory)
    if CODE_PRIOR_FILE in metadata.get("sha256", {}):
        verify_preset(directory, [CODE_PRIOR_FILE])
        model.code_prior = _load_code_prior(directory / CODE_PRIOR_FILE, model)
    model.label_convention = _label_convention(metadata, model, directory)
    model.encoder_is_random = encoder_is_random(metadata)
    return model


def encoder_is_random(metadata: dict) -> bool:
    """Whether a preset's metadata says its encoder has random weights: converted from the
    official checkpoints without the encoder's (`latest_net_E.pth`)."""
    sources = metadata.get("source_files") or {}
    return bool(metadata.get("converted_from")) and sources.get("encoder") is None


def _label_convention(metadata: dict, model, directory: Path) -> str:
    """The preset's recorded label convention (absent: identity), checked against its model."""
    from smis_layers.data.labels import DEFAULT_LABEL_CONVENTION, label_convention

    name = metadata.get("label_convention", DEFAULT_LABEL_CONVENTION)
    try:
        convention = label_convention(name)
    except ValueError as error:
        raise ValueError(f"Preset {directory / METADATA_FILE}: {error}") from None
    classes = getattr(model, "num_classes", None)
    if convention.classes is not None and classes is not None and convention.classes != classes:
        raise ValueError(
            f"Preset {directory / METADATA_FILE} records the {name} label convention "
            f"({convention.classes} classes), but its model has {classes} classes"
        )
    return name


def _load_code_prior(path: Path, model):
    from smis_layers.models.code_prior import FittedCodePrior

    prior = FittedCodePrior.load(path)
    groups = model.num_classes if getattr(model, "class_owned_codes", True) else 1
    if prior.latent_shape != tuple(model.latent_shape) or prior.num_groups != groups:
        raise ValueError(
            f"The code prior {path} does not match the preset's model: latent shape "
            f"{prior.latent_shape} in {prior.num_groups} groups, expected "
            f"{tuple(model.latent_shape)} in {groups}"
        )
    return prior


def load_preset_discriminator(name_or_path: str | os.PathLike) -> keras.Model:
    """The discriminator shipped with a preset (for fine-tuning)."""
    directory = resolve_preset(name_or_path)
    if not (directory / DISCRIMINATOR_WEIGHTS_FILE).is_file():
        raise ValueError(
            f"Preset {directory} ships no discriminator ({DISCRIMINATOR_WEIGHTS_FILE} is absent)"
        )
    verify_preset(directory, [DISCRIMINATOR_CONFIG_FILE, DISCRIMINATOR_WEIGHTS_FILE])
    config_path = directory / DISCRIMINATOR_CONFIG_FILE
    model = _build(config_path, "MultiScaleDiscriminator")
    _io.load_variables(model, directory / DISCRIMINATOR_WEIGHTS_FILE, config_path)
    return model


def _build_and_load(directory: Path, config_name: str, weights_name: str, expected_class):
    config_path = directory / config_name
    model = _build(config_path, expected_class)
    weights_path = directory / weights_name
    mismatches = _io.weights_mismatches(model, weights_path)
    _io.raise_mismatches(mismatches, weights_path, config_path)
    model.load_weights(weights_path)
    return model


def _build(config_path: Path, expected_class: type | str | None):
    """The model a preset config describes; `expected_class` is a class, or the registered name
    of one ("MultiScaleDiscriminator"), that the model must be an instance of."""
    import keras

    directory = config_path.parent
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"Preset file {config_path} is not valid JSON: {error}") from None
    _register_config_classes(config)
    try:
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    except Exception as error:
        raise ValueError(f"Preset file {config_path} does not describe a model: {error}") from None
    if isinstance(expected_class, str):
        expected_class = keras.saving.get_registered_object(f"smis_layers>{expected_class}")
    if expected_class is not None and not isinstance(model, expected_class):
        raise ValueError(
            f"Preset {directory} holds a {type(model).__name__}, not a {expected_class.__name__}"
        )
    return model


def _register_config_classes(config) -> None:
    """Imports the smis_layers module a config names, which registers its serializable class.

    This module sits below the models (they call `load_preset` from `from_preset`), so it does
    not import them: a config's own `module` entry says where its class lives, as Keras does for
    its built-in classes. Only modules of this package are imported; no code is run from the
    preset folder.
    """
    module = config.get("module", "") if isinstance(config, dict) else ""
    if module == "smis_layers" or module.startswith("smis_layers."):
        with contextlib.suppress(ImportError):  # deserialization reports the unknown class
            importlib.import_module(module)


#: Names that moved out of this module, served for one release with a DeprecationWarning.
_MOVED = {
    "atomic_write_bytes": "smis_layers.utils.io",
    "atomic_write_json": "smis_layers.utils.io",
    "atomic_save_weights": "smis_layers.utils.io",
    "atomic_save_arrays": "smis_layers.utils.io",
    "atomic_save_variables": "smis_layers.utils.io",
    "read_npz_arrays": "smis_layers.utils.io",
    "load_variables": "smis_layers.utils.io",
    "sha256_of": "smis_layers.utils.io",
    "weights_mismatches": "smis_layers.utils.io",
    "write_model_card": "smis_layers.model_card",
}


def __getattr__(name: str):
    """Deprecated aliases: the file I/O helpers moved to `smis_layers.utils.io`, the model-card
    writer to `smis_layers.model_card`."""
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"`smis_layers.presets.{name}` moved to `{_MOVED[name]}.{name}`; the old name will be "
        "removed in the next release",
        DeprecationWarning,
        stacklevel=2,
    )
    if _MOVED[name] == "smis_layers.utils.io":
        return getattr(_io, name)
    from smis_layers.model_card import write_model_card

    return write_model_card
