"""Preset folders: the files a trained model is shipped as, and the zoo of shipped presets.

A preset folder holds `config.json` (the generator+encoder's Keras config), `model.weights.h5`
(their weights), optionally `discriminator.json` + `discriminator.weights.npz` (for fine-tuning;
a compressed archive of its variables by path, half the size of Keras's `.weights.h5`, which
stores every spectrally normalized kernel twice), optionally `code_prior.npz` (a
`FittedCodePrior` that `sample_z` draws from; `load_preset` attaches it as `model.code_prior`),
`metadata.json` (sha256 of each of those files, parameter counts, how the preset was trained,
metrics) and, for the zoo, a `README.md` model card with a `samples.png` grid. The layout follows
KerasHub's presets. Loading verifies every file's sha256 before reading it, builds the model from
its config with `safe_mode=True` (no code is executed from the folder) and loads the weights;
a config that does not match the weights is reported layer by layer.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
import zipfile
from pathlib import Path

import keras
import numpy as np

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
DISCRIMINATOR_CONFIG_FILE = "discriminator.json"
DISCRIMINATOR_WEIGHTS_FILE = "discriminator.weights.npz"
CODE_PRIOR_FILE = "code_prior.npz"
CARD_FILE = "README.md"
SAMPLES_FILE = "samples.png"


def _default_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _default_file_mode()


def zoo_directory() -> Path:
    """The folder of the shipped presets: the repository's top-level `zoo/`, installed in the
    wheel as the `smis_layers.zoo` package."""
    spec = importlib.util.find_spec("smis_layers.zoo")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parent.parent / "zoo"


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
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, value) -> None:
    atomic_write_bytes(Path(path), (json.dumps(value, indent=2) + "\n").encode())


def atomic_save_weights(model: keras.Model, path: Path) -> None:
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
) -> Path:
    """Writes `model` (and optionally its discriminator) as a preset folder; returns its path.

    Args:
        model: a registered smis_layers model (its `get_config` rebuilds it).
        directory: the folder; created if needed.
        metadata: extra JSON-serializable metadata (training command, metrics, ...).
        overwrite: replace existing preset files; without it an existing file is an error.
        discriminator: a trained discriminator to ship for fine-tuning (separate files, which
            `load_preset` does not read; `load_preset_discriminator` does).
    """
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
    atomic_write_json(directory / CONFIG_FILE, keras.saving.serialize_keras_object(model))
    atomic_save_weights(model, directory / WEIGHTS_FILE)
    hashed = [CONFIG_FILE, WEIGHTS_FILE]
    if code_prior is not None:
        code_prior.save(directory / CODE_PRIOR_FILE)
        hashed.append(CODE_PRIOR_FILE)
    else:
        (directory / CODE_PRIOR_FILE).unlink(missing_ok=True)
    if discriminator is not None:
        atomic_write_json(
            directory / DISCRIMINATOR_CONFIG_FILE,
            keras.saving.serialize_keras_object(discriminator),
        )
        atomic_save_variables(discriminator, directory / DISCRIMINATOR_WEIGHTS_FILE)
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
    convention = getattr(model, "label_convention", None)
    if convention is not None:  # a loaded preset saved again keeps how it reads label files
        meta["label_convention"] = convention
    meta.update(metadata or {})
    meta["sha256"] = {name: sha256_of(directory / name) for name in hashed}
    meta["file_bytes"] = {name: (directory / name).stat().st_size for name in hashed}
    atomic_write_json(directory / METADATA_FILE, meta)
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
    atomic_write_json(directory / METADATA_FILE, metadata)
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
        actual = sha256_of(path)
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
    from smis_layers.models.discriminator import MultiScaleDiscriminator

    model = _build(directory / DISCRIMINATOR_CONFIG_FILE, MultiScaleDiscriminator)
    load_variables(model, directory / DISCRIMINATOR_WEIGHTS_FILE)
    return model


def _build_and_load(directory: Path, config_name: str, weights_name: str, expected_class):
    config_path = directory / config_name
    model = _build(config_path, expected_class)
    weights_path = directory / weights_name
    mismatches = weights_mismatches(model, weights_path)
    _raise_mismatches(mismatches, weights_path, config_path)
    model.load_weights(weights_path)
    return model


def _raise_mismatches(mismatches: list[str], weights_path: Path, config_path: Path) -> None:
    if not mismatches:
        return
    shown = "\n  ".join(mismatches[:20])
    more = f"\n  ... and {len(mismatches) - 20} more" if len(mismatches) > 20 else ""
    raise ValueError(
        f"The weights in {weights_path} do not match the model of {config_path} "
        f"({len(mismatches)} mismatched variables):\n  {shown}{more}"
    )


def _build(config_path: Path, expected_class):
    directory = config_path.parent
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"Preset file {config_path} is not valid JSON: {error}") from None
    import smis_layers.models  # noqa: F401  (registers the serializable classes)

    try:
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    except Exception as error:
        raise ValueError(f"Preset file {config_path} does not describe a model: {error}") from None
    if expected_class is not None and not isinstance(model, expected_class):
        raise ValueError(
            f"Preset {directory} holds a {type(model).__name__}, not a {expected_class.__name__}"
        )
    return model


def atomic_save_variables(model: keras.Model, path: Path) -> None:
    """Saves `model`'s variables (each once, by path) to a compressed .npz, atomically."""
    atomic_save_arrays(path, {v.path: keras.ops.convert_to_numpy(v) for v in model.weights})


def atomic_save_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Writes named arrays as a compressed .npz (no pickled objects), atomically."""
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(Path(path), buffer.getvalue())


def read_npz_arrays(path: str | os.PathLike, kind: str) -> dict[str, np.ndarray]:
    """The arrays of a .npz file, read without unpickling; a missing, truncated or corrupted
    file is a ValueError naming it as a `kind` (e.g. ".npz weights file")."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(
            f"{path} is not a readable {kind} (missing, truncated or corrupted?): {error}"
        ) from None


def load_variables(model: keras.Model, path: str | os.PathLike) -> None:
    """Loads an `atomic_save_variables` archive into `model`, or raises a ValueError listing
    the variables that are missing, unexpected or of another shape."""
    path = Path(path)
    stored = read_npz_arrays(path, ".npz weights file")
    expected = {v.path: tuple(v.shape) for v in model.weights}
    lines = _shape_differences(expected, {k: v.shape for k, v in stored.items()})
    _raise_mismatches(lines, path, path.with_name(DISCRIMINATOR_CONFIG_FILE))
    for variable in model.weights:
        variable.assign(stored[variable.path])


def _shape_differences(expected: dict, stored: dict) -> list[str]:
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
    return _shape_differences(expected, stored)


def _training_machine(training: dict) -> str:
    """Where a run trained, as recorded (runs before the record: the development machine)."""
    device = training.get("device")
    if device is None:
        return "the 2-core development machine"
    return f"{device} (KERAS_BACKEND={training.get('keras_backend')})"


def write_model_card(name_or_path: str | os.PathLike) -> Path:
    """Writes a preset's README.md model card from its metadata.json alone: `description`,
    `card_notes` (what a person saw in the samples), parameters, training, metrics, and the
    sample grid (`samples.png`, if present). Rewritten whenever the metadata changes (e.g. by
    `smis evaluate`). Returns the card's path."""
    directory = resolve_preset(name_or_path)
    meta = preset_metadata(directory)
    counts = meta.get("parameter_counts", {})
    notes = meta.get("card_notes", "")
    fitted_prior = CODE_PRIOR_FILE in meta.get("sha256", {})
    lines = [f"# {directory.name}", "", meta.get("card_description", ""), ""]
    if (directory / SAMPLES_FILE).is_file():
        lines += [
            f"![samples]({SAMPLES_FILE})",
            "",
            "Rows: mask, real image, reconstruction from the real image's codes, two samples "
            "with random codes" + (" (from the fitted code prior)." if fitted_prior else "."),
            "",
        ]
    if notes:
        lines += ["## What the samples show", "", notes.strip(), ""]
    lines += ["## Model", "", "| | |", "|---|---|", f"| class | `{meta.get('class_name')}` |"]
    for part, count in counts.items():
        lines.append(f"| {part} parameters | {count:,} |")
    if "discriminator_parameters" in meta:
        lines.append(f"| discriminator parameters | {meta['discriminator_parameters']:,} |")
    if fitted_prior:
        from smis_layers.models.code_prior import FittedCodePrior

        per_class = FittedCodePrior.load(directory / CODE_PRIOR_FILE).num_groups > 1
        gaussian = "a Gaussian per class" if per_class else "one Gaussian over the whole code"
        lines.append(
            f"| random codes | `code_prior.npz`: {gaussian} fitted to the encoder's "
            "codes of training images (`FittedCodePrior`; `--prior standard` for N(0, 1)) |"
        )
    size = sum(meta.get("file_bytes", {}).values())
    lines += [f"| files | {size / 1e6:.1f} MB |", f"| library | {meta.get('library_version')} |"]
    training = meta.get("training")
    if training:
        lines += ["", "## Training", ""]
        phases = training.get("phases") or []
        ends = [phase.get("ended_at_step") for phase in phases]
        bounds = [0, *ends, training.get("completed_steps")]  # phase i: bounds[i]..bounds[i+1]
        commands = []
        for i, command in enumerate([*(p.get("command") for p in phases), training.get("command")]):
            if command:
                label = [f"# steps {bounds[i]}-{bounds[i + 1]}"] if phases else []
                commands += [*label, command]
        if phases:
            lines += [
                f"Trained in {len(phases) + 1} phases (the run was extended with `--extend` at "
                f"step {', '.join(map(str, ends))}; the learning-rate schedule restarts with each "
                "phase's `--steps`):",
                "",
            ]
        if commands:
            lines += ["```bash", *commands, "```", ""]
        lines += [
            f"{training.get('completed_steps')} steps at batch {training.get('batch_size')} on "
            f"{training.get('data')} data, {training.get('wall_time_s', 0) / 60:.0f} min of "
            f"wall time on {_training_machine(training)}.",
            "",
        ]
        losses = training.get("final_losses")
        if losses:
            shown = ", ".join(f"{k} {v:.3g}" for k, v in sorted(losses.items()))
            lines += [f"Losses (mean over the last 100 steps): {shown}.", ""]
    metrics = meta.get("metrics")
    if metrics:
        lines += ["## Metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in metrics.items() if isinstance(v, int | float)]
        lines += ["", "Definitions: docs/evaluation.md; all presets compared: docs/zoo.md."]
        if meta.get("metrics_command"):
            lines += ["", f"Measured by `{meta['metrics_command']}`."]
        lines.append("")
    lines += [
        "## Loading",
        "",
        "```python",
        "from smis_layers.models import from_preset",
        "",
        f'model = from_preset("{directory.name}")',
        "```",
        "",
    ]
    path = directory / CARD_FILE
    atomic_write_bytes(path, "\n".join(lines).encode())
    return path
