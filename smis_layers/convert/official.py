"""Conversion of the official SMIS (GroupDNet) PyTorch checkpoints into a Keras `GroupDNet`.

The official code (https://github.com/Seanseattle/SMIS) saves the state dict of its generator
as `latest_net_G.pth` and of its encoder as `latest_net_E.pth`. This module reads them (PyTorch
is needed only for reading: `pip install "smis-layers[torch]"`), puts every tensor into the
matching weight of a `GroupDNet` built with the same architecture, and writes a preset folder.

Name mapping (official state-dict prefix -> GroupDNet layer):

- `fc` -> `model.fc`; `conv_img` -> `model.conv_img`;
- `<block>` (`head_0`, `G_middle_0`, `G_middle_1`, `up_0`..`up_3`) -> the `CGBlock` of that
  name in `model.blocks`; inside it `conv_0`, `conv_1`, `conv_s` -> the spectral-normalized
  convolutions of the same names, and `norm_0`, `norm_1`, `norm_s` -> the `CGNorm`s, whose
  `param_free_norm`, `mlp_shared.0`, `mlp_gamma`, `mlp_beta` are `param_free_norm`, `shared`,
  `gamma`, `beta`;
- encoder `layerN.0` (spectral conv; the official encoder wraps it with its normalization in an
  `nn.Sequential`, so the norm is `layerN.1`) -> the convolution `layerN` of `model.encoder`;
  `fc_mu`, `fc_var` -> `model.encoder.fc_mu`, `fc_var`.

The expected names and shapes are derived from the model, so any architecture GroupDNet can
express converts, as long as the checkpoint was made by the official classes for it.

Choices:

- Spectral norm. The official convolutions store `weight_orig`, `weight_u` and `weight_v`. In
  eval mode PyTorch does no power iteration: it uses
  `weight = weight_orig / sigma` with `sigma = dot(u, W @ v)`, `W = weight_orig.reshape(out, -1)`.
  That effective weight (computed in float64, then cast) becomes the Keras kernel, so the
  converted model computes exactly what the official one computes at inference
  (`keras.layers.SpectralNormalization` does nothing when `training=False`). `u` is also copied
  into the wrapper's `vector_u` (shape (1, out)), so fine-tuning starts its power iteration
  where the official training stopped; Keras stores no `v`.
- Kernels are transposed from PyTorch's (out, in/groups, kh, kw) to (kh, kw, in/groups, out).
- Batch norm (the official decoder uses synchronized batch norm: on one device, "batch"):
  `running_mean`/`running_var` become `moving_mean`/`moving_variance`; the
  `num_batches_tracked` counters are ignored (Keras keeps none; its momentum is PyTorch's).
  Instance norms without affine parameters have no state on either side.
- The official ADE20K generator builds a block `up_4` that its forward never calls: `up_4.*`
  tensors are ignored (and listed in the report) unless the model itself has an `up_4` block.
- Strictness: a missing tensor, an unexpected one (other than those ignored above), one of the
  wrong shape or one holding NaN/Inf is a `ValueError` that lists every offending name with its
  expected and actual shape; nothing is assigned unless everything matches.
- Cityscapes: the official generator receives the segmap with the instance-edge map as an
  extra last channel and interleaves them as [class 0, edges, class 1, edges, ...] before its
  CGNorms (whose shared convolution has groups=C, two input channels per group).
  `pair_with_instance_edges` produces the same order, so those weights map unchanged.
- Encoder input: the official code crops each class's masked image to its bounding box and
  resizes it (nearest) to the crop size, which `ClassMaskSplit(mode="crop_resize")` (the
  default of the official architectures) reproduces. The official box comes from the rows and
  columns where the masked image, summed over RGB, has a nonzero sum; GroupDNet takes it from
  the mask. They differ only where those sums are exactly zero.
- Without an encoder checkpoint the encoder keeps its initial weights (generation from random
  or given codes works; `encode` does not give meaningful codes) and the metadata says so.

The official code and weights are licensed CC BY-NC-SA 4.0; converted weights are a derivative
of those weights, which the preset's metadata records.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import keras
import numpy as np

from smis_layers.data.labels import DEFAULT_LABEL_CONVENTION, data_label_convention
from smis_layers.data.labels import label_convention as get_label_convention
from smis_layers.layers.group_conv2d import GroupConv2D
from smis_layers.models.groupdnet.groupdnet import GroupDNet

OFFICIAL_REPOSITORY = "https://github.com/Seanseattle/SMIS"
OFFICIAL_LICENSE = "CC BY-NC-SA 4.0"
# Blocks the official generators build but never call (ADE20K's `up_4`).
UNUSED_OFFICIAL_BLOCKS = ("up_4",)
_COUNTER_SUFFIX = ".num_batches_tracked"
_NUMPY_FLOATS = ("torch.float16", "torch.float32", "torch.float64")


@dataclasses.dataclass(frozen=True)
class ConversionReport:
    """What `assign_official_weights` did.

    Attributes:
        generator_tensors: state-dict tensors of the generator put into the model.
        encoder_tensors: state-dict tensors of the encoder put into the model (0 without one).
        ignored_unused: tensors of blocks the official forward never calls (`up_4.*`).
        ignored_counters: batch-norm `num_batches_tracked` counters skipped.
    """

    generator_tensors: int
    encoder_tensors: int
    ignored_unused: tuple[str, ...]
    ignored_counters: int


def load_torch_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a PyTorch state dict (e.g. `latest_net_G.pth`) as NumPy arrays, without running code.

    The file is read with `torch.load(path, map_location="cpu", weights_only=True)`, which
    refuses pickled objects other than tensors and plain containers.

    Args:
        path: the `.pth` file.

    Returns:
        `{name: array}` in the file's order.

    Raises:
        ImportError: PyTorch is not installed.
        ValueError: the file is not a weights-only state dict of tensors.
    """
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            'Reading official SMIS checkpoints needs PyTorch: pip install "smis-layers[torch]"'
        ) from error
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(
            f"{path} could not be read as a weights-only PyTorch state dict: it "
            f"{_describe_file(path)}. Expected a file of the official release "
            "(latest_net_G.pth or latest_net_E.pth, written by torch.save; see "
            f"docs/converting.md). PyTorch said: {error}"
        ) from error
    if not isinstance(state, Mapping):
        raise ValueError(
            f"{path} holds a {type(state).__name__}, not a state dict (name -> tensor)"
        )
    arrays = {}
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(
                f"{path}: entry {name!r} is a {type(value).__name__}, not a tensor; "
                "expected the state dict of the official generator or encoder"
            )
        arrays[str(name)] = _as_array(value)
    return arrays


def assign_official_weights(
    model: GroupDNet,
    generator_state: Mapping[str, object],
    encoder_state: Mapping[str, object] | None = None,
) -> ConversionReport:
    """Sets the weights of `model` from official SMIS state dicts.

    Every weight of the decoder is set from `generator_state`, every weight of the encoder from
    `encoder_state` (left as it is when None). See the module docstring for the mapping.

    Args:
        model: a built `GroupDNet` with the checkpoint's architecture (e.g.
            `GroupDNet.official("deepfashion")`).
        generator_state: the official generator's state dict (`latest_net_G.pth`); values are
            PyTorch tensors or NumPy arrays.
        encoder_state: the official encoder's state dict (`latest_net_E.pth`), or None.

    Returns:
        A `ConversionReport`.

    Raises:
        ValueError: missing, unexpected or mis-shaped tensors (all listed in one message), or a
            spectral norm whose stored vectors give a zero or non-finite sigma.
    """
    if not isinstance(model, GroupDNet):
        raise TypeError(f"`model` must be a GroupDNet; received {type(model).__name__}")
    check_state_roles(generator_state, encoder_state)
    block_names = {block.name for block in model.blocks}
    unused = tuple(name for name in UNUSED_OFFICIAL_BLOCKS if name not in block_names)
    parts = [("generator", _generator_plan(model), generator_state, unused)]
    if encoder_state is not None:
        parts.append(("encoder", _encoder_plan(model), encoder_state, ()))
    _check_plans_cover_model(model, [plan for _, plan, _, _ in parts], encoder_state is not None)

    problems, ignored_unused, counters = [], [], 0
    for part, plan, state, unused_prefixes in parts:
        if not isinstance(state, Mapping):
            raise TypeError(
                f"`{part}_state` must be a mapping of names to tensors; "
                f"received {type(state).__name__}"
            )
        part_problems, part_ignored, part_counters = plan.check(state, unused_prefixes)
        problems += [f"{part} state dict: {p}" for p in part_problems]
        ignored_unused += part_ignored
        counters += part_counters
    if problems:
        raise CheckpointMismatchError(
            _mismatch_summary(model, problems, [(part, state) for part, _, state, _ in parts]),
            problems,
        )

    values, problems = [], []
    for part, plan, state, _ in parts:
        for assignment in plan.assignments:
            try:
                value = assignment.convert(*(_as_array(state[k]) for k in assignment.keys))
            except ValueError as error:
                problems.append(f"{part} state dict: {error}")
                continue
            if not np.all(np.isfinite(value)):
                problems.append(
                    f"{part} state dict: {', '.join(assignment.keys)} hold NaN or infinite "
                    "values (a diverged or corrupted checkpoint)"
                )
                continue
            values.append((assignment.variable, value))
    if problems:
        raise ValueError("Cannot convert the official weights:\n  " + "\n  ".join(problems))
    for variable, value in values:
        variable.assign(value.astype(keras.backend.standardize_dtype(variable.dtype)))
    counts = {part: len(plan.shapes) for part, plan, _, _ in parts}
    return ConversionReport(
        generator_tensors=counts["generator"],
        encoder_tensors=counts.get("encoder", 0),
        ignored_unused=tuple(sorted(ignored_unused)),
        ignored_counters=counters,
    )


def build_model(config: str | Mapping) -> GroupDNet:
    """A `GroupDNet` from an official architecture name or a GroupDNet config.

    Args:
        config: "deepfashion", "cityscapes" or "ade20k" (`GroupDNet.official`), a
            `GroupDNet.get_config()` dict, or a serialized model (a preset's `config.json`:
            `{"class_name": "GroupDNet", "config": {...}}`).
    """
    if isinstance(config, str):
        return GroupDNet.official(config)
    if not isinstance(config, Mapping):
        raise TypeError(
            "`config` must be an official architecture name or a GroupDNet config dict; "
            f"received {type(config).__name__}"
        )
    config = dict(config)
    if "class_name" in config and "config" in config:
        if config["class_name"] != "GroupDNet":
            raise ValueError(f"The config describes a {config['class_name']}, not a GroupDNet")
        config = dict(config["config"])
    return GroupDNet.from_config(config)


def convert_official_checkpoint(
    generator_path: str | os.PathLike,
    encoder_path: str | os.PathLike | None,
    config: str | Mapping,
    out_dir: str | os.PathLike,
    overwrite: bool = False,
    label_convention: str | None = None,
) -> Path:
    """Converts official SMIS checkpoints into a GroupDNet preset folder.

    Args:
        generator_path: the official generator checkpoint (`latest_net_G.pth`).
        encoder_path: the official encoder checkpoint (`latest_net_E.pth`), or None to keep
            the encoder's initial weights.
        config: the architecture: "deepfashion", "cityscapes", "ade20k" or a GroupDNet config
            (see `build_model`).
        out_dir: the preset folder to write (config.json, model.weights.h5, metadata.json).
        overwrite: replace existing preset files in `out_dir`.
        label_convention: how the training data's annotation files map to classes, recorded in
            the preset so that `load_labels` and the commands read raw annotations as in
            training (`smis_layers.data.labels`); default: the official configuration's
            dataset, identity for a custom config.

    Returns:
        The preset folder; load it with `GroupDNet.from_preset(out_dir)`.
    """
    from smis_layers.presets import CONFIG_FILE, METADATA_FILE, WEIGHTS_FILE
    from smis_layers.utils.io import sha256_of

    out_dir = Path(out_dir)
    existing = [str(out_dir / n) for n in (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE)]
    existing = [p for p in existing if Path(p).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"Preset files already exist: {existing}; pass overwrite=True (--overwrite) "
            "to replace them"
        )
    if label_convention is None:
        official = isinstance(config, str)
        label_convention = data_label_convention(config) if official else DEFAULT_LABEL_CONVENTION
    get_label_convention(label_convention)  # an unknown name fails before any work
    generator_state = load_torch_state_dict(generator_path)
    encoder_state = None if encoder_path is None else load_torch_state_dict(encoder_path)
    check_state_roles(generator_state, encoder_state, str(generator_path), str(encoder_path))
    model = build_model(config)
    report = assign_official_weights(model, generator_state, encoder_state)

    def source(path):
        return {"file": Path(path).name, "sha256": sha256_of(path)}

    metadata = {
        "converted_from": "official SMIS",
        "source_repository": OFFICIAL_REPOSITORY,
        "source_license": (
            f"{OFFICIAL_LICENSE}: the official weights' license, which these converted "
            "weights (a derivative) keep"
        ),
        "architecture": config if isinstance(config, str) else "custom GroupDNet config",
        "label_convention": label_convention,
        "source_files": {
            "generator": source(generator_path),
            "encoder": None if encoder_path is None else source(encoder_path),
        },
        "encoder_weights": (
            "converted from the official encoder checkpoint"
            if encoder_path is not None
            else "not converted: no encoder checkpoint was given, the encoder has its "
            "initial random weights"
        ),
        "conversion": {
            "spectral_norm": "folded in eval mode (weight_orig / dot(u, W v)); u copied to "
            "vector_u",
            "tensors": {"generator": report.generator_tensors, "encoder": report.encoder_tensors},
            "ignored_unused_tensors": list(report.ignored_unused),
            "ignored_num_batches_tracked": report.ignored_counters,
        },
    }
    json.dumps(metadata)  # fail before writing anything if not serializable
    return model.save_to_preset(out_dir, metadata=metadata, overwrite=overwrite)


class CheckpointMismatchError(ValueError):
    """The official state dicts do not fit the model. `summary` is one line with the counts and
    the likely cause; `problems` lists every missing, unexpected or mis-shaped tensor (the
    message holds both; `smis convert-official` prints the list only with `--verbose`)."""

    def __init__(self, summary: str, problems: list[str]):
        super().__init__(summary + "\n  " + "\n  ".join(problems))
        self.summary = summary
        self.problems = list(problems)


def _state_role(state: Mapping) -> str | None:
    """Which official network a state dict is from, by its names: "generator", "encoder",
    "discriminator" or None."""
    heads = {str(k).removeprefix("module.").split(".", 1)[0] for k in state}
    if heads & {"fc_mu", "fc_var", "layer1"}:
        return "encoder"
    if heads & {"head_0", "conv_img", "G_middle_0"}:
        return "generator"
    if any(h.startswith("discriminator_") for h in heads):
        return "discriminator"
    return None


def check_state_roles(
    generator_state: Mapping | None,
    encoder_state: Mapping | None,
    generator_source: str = "`generator_state`",
    encoder_source: str = "`encoder_state`",
) -> None:
    """Raises a ValueError saying so when the generator and encoder state dicts are given the
    wrong way round, or when one of them is another network's (e.g. the discriminator's)."""
    files = {"generator": "latest_net_G.pth", "encoder": "latest_net_E.pth"}
    roles = {
        "generator": (None if generator_state is None else _state_role(generator_state)),
        "encoder": (None if encoder_state is None else _state_role(encoder_state)),
    }
    sources = {"generator": generator_source, "encoder": encoder_source}
    if roles == {"generator": "encoder", "encoder": "generator"}:
        raise ValueError(
            f"The generator and the encoder are given the wrong way round: {generator_source} "
            f"holds an encoder and {encoder_source} a generator. Swap them: the generator is "
            f"{files['generator']}, the encoder {files['encoder']}"
        )
    for part, role in roles.items():
        if role is not None and role != part:
            raise ValueError(
                f"{sources[part]} holds the state dict of an official {role}, not of the "
                f"{part}: the {part} is {files[part]} of the official release "
                "(docs/converting.md)"
            )


def _official_fc_filters() -> dict[int, str]:
    from smis_layers.layers.group_decreasing_schedule import (
        OFFICIAL_DATASETS,
        GroupDecreasingSchedule,
    )

    return {
        GroupDecreasingSchedule.official(name).input_filters: name for name in OFFICIAL_DATASETS
    }


def _mismatch_summary(model: GroupDNet, problems: list[str], states) -> str:
    kinds = {"missing": 0, "unexpected": 0, "wrong shape": 0}
    for problem in problems:
        for kind in kinds:
            if problem.split(": ", 1)[-1].startswith(kind):
                kinds[kind] += 1
    counts = ", ".join(f"{n} {kind}" for kind, n in kinds.items() if n)
    summary = (
        f"The official state dicts do not match this GroupDNet ({len(problems)} problems: {counts})"
    )
    generator_state = dict(states).get("generator") or {}
    if generator_state and all(str(k).startswith("module.") for k in generator_state):
        return (
            f"{summary}: every name starts with 'module.', so the checkpoint was saved from "
            "an nn.DataParallel wrapper; strip that prefix first"
        )
    fc = generator_state.get("fc.weight_orig", generator_state.get("fc.weight"))
    if fc is not None:
        filters = _shape(fc)[0]
        expected = int(model.fc.filters)
        guess = _official_fc_filters().get(filters)
        if guess is not None and filters != expected:
            return (
                f"{summary}: the checkpoint's fc has {filters} output channels, as the official "
                f"{guess} generator's; convert it with --config {guess}"
            )
    return (
        f"{summary}: the checkpoint was made for another architecture than the one given "
        "(--config or --model-config); the model must be built exactly as the official code "
        "built it"
    )


def _describe_file(path: Path) -> str:
    """What a file that is not a PyTorch checkpoint looks like, from its first bytes."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(512)
    if size == 0:
        return "is empty (an interrupted download?)"
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html")):
        return f"is an HTML page ({size} bytes; a download link's web page, not the file)"
    if text.startswith(b"version https://git-lfs"):
        return "is a Git LFS pointer (fetch the real file with git lfs pull)"
    if head.startswith(b"\x89HDF"):
        return "is an HDF5 file (a Keras .weights.h5, not an official PyTorch checkpoint)"
    if head.startswith(b"\x1f\x8b") or head[257:262] == b"ustar":
        return "is a gzip or tar archive (unpack the release first)"
    if head.startswith(b"PK\x03\x04"):
        return f"is a zip archive ({size} bytes) that is not a complete torch.save file"
    return f"is not a PyTorch checkpoint ({size} bytes starting {head[:16]!r})"


# ---------------------------------------------------------------------------- internals
@dataclasses.dataclass(frozen=True)
class _Assignment:
    variable: keras.Variable
    keys: tuple[str, ...]
    convert: Callable[..., np.ndarray]


class _Plan:
    """Expected state-dict tensors (names and PyTorch shapes) and how they fill the model."""

    def __init__(self):
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.optional: set[str] = set()
        self.assignments: list[_Assignment] = []

    def _expect(self, key: str, shape) -> str:
        self.shapes[key] = tuple(int(s) for s in shape)
        return key

    def _assign(self, variable, keys, convert) -> None:
        self.assignments.append(_Assignment(variable, tuple(keys), convert))

    def conv(self, prefix: str, layer: keras.layers.Layer) -> None:
        wrapper = layer if isinstance(layer, keras.layers.SpectralNormalization) else None
        conv = layer.layer if wrapper is not None else layer
        if not isinstance(conv, GroupConv2D):
            raise TypeError(f"Cannot map {prefix!r} onto a {type(conv).__name__}")
        kh, kw, fan_in, filters = (int(s) for s in conv.kernel.shape)
        torch_shape = (filters, fan_in, kh, kw)
        if wrapper is None:
            weight = self._expect(f"{prefix}.weight", torch_shape)
            self._assign(conv.kernel, [weight], _torch_kernel_to_keras)
        else:
            orig = self._expect(f"{prefix}.weight_orig", torch_shape)
            u = self._expect(f"{prefix}.weight_u", (filters,))
            v = self._expect(f"{prefix}.weight_v", (fan_in * kh * kw,))
            self._assign(conv.kernel, [orig, u, v], _spectral_folder(prefix))
            self._assign(wrapper.vector_u, [u], lambda value: value.reshape(1, -1))
        if conv.bias is not None:
            bias = self._expect(f"{prefix}.bias", (filters,))
            self._assign(conv.bias, [bias], _identity)

    def norm(self, prefix: str, layer: keras.layers.Layer) -> None:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = (int(layer.moving_mean.shape[0]),)
            for torch_name, variable in (
                ("running_mean", layer.moving_mean),
                ("running_var", layer.moving_variance),
            ):
                key = self._expect(f"{prefix}.{torch_name}", channels)
                self._assign(variable, [key], _identity)
            self.optional.add(f"{prefix}{_COUNTER_SUFFIX}")
        elif not isinstance(layer, keras.layers.GroupNormalization):  # instance norm: no stats
            raise TypeError(f"Cannot map {prefix!r} onto a {type(layer).__name__}")
        for torch_name, attribute in (("weight", "gamma"), ("bias", "beta")):
            variable = getattr(layer, attribute, None)
            if variable is not None:
                key = self._expect(f"{prefix}.{torch_name}", variable.shape)
                self._assign(variable, [key], _identity)

    def check(self, state: Mapping, unused_prefixes: tuple[str, ...]):
        """(problems, ignored unused-block keys, ignored counters) of a state dict."""
        problems, ignored, counters = [], [], 0
        for key, expected in self.shapes.items():
            if key not in state:
                problems.append(f"missing {key} (expected shape {expected})")
                continue
            actual = _shape(state[key])
            if actual != expected:
                problems.append(f"wrong shape {key}: expected {expected}, got {actual}")
        unexpected = []
        for key in state:
            if key in self.shapes:
                continue
            if key in self.optional:
                counters += 1
            elif key.split(".", 1)[0] in unused_prefixes:
                ignored.append(key)
            else:
                unexpected.append(key)
        problems += [f"unexpected {k} (shape {_shape(state[k])})" for k in unexpected]
        return problems, ignored, counters


def _generator_plan(model: GroupDNet) -> _Plan:
    plan = _Plan()
    plan.conv("fc", model.fc)
    for block in model.blocks:
        norms, convs = ["norm_0", "norm_1"], ["conv_0", "conv_1"]
        if block.learned_shortcut:
            norms.append("norm_s")
            convs.append("conv_s")
        for name in norms:
            cg_norm = getattr(block, name)
            prefix = f"{block.name}.{name}"
            plan.norm(f"{prefix}.param_free_norm", cg_norm.param_free_norm)
            plan.conv(f"{prefix}.mlp_shared.0", cg_norm.shared)
            plan.conv(f"{prefix}.mlp_gamma", cg_norm.gamma)
            plan.conv(f"{prefix}.mlp_beta", cg_norm.beta)
        for name in convs:
            plan.conv(f"{block.name}.{name}", getattr(block, name))
    plan.conv("conv_img", model.conv_img)
    return plan


def _encoder_plan(model: GroupDNet) -> _Plan:
    plan = _Plan()
    encoder = model.encoder
    for i, conv in enumerate(encoder.convs):
        name = getattr(conv, "layer", conv).name
        if encoder.norms:  # the official encoder: nn.Sequential(conv, norm)
            plan.conv(f"{name}.0", conv)
            plan.norm(f"{name}.1", encoder.norms[i])
        else:
            plan.conv(name, conv)
    plan.conv("fc_mu", encoder.fc_mu)
    plan.conv("fc_var", encoder.fc_var)
    return plan


def _check_plans_cover_model(model: GroupDNet, plans: list[_Plan], with_encoder: bool) -> None:
    """Every weight of the converted parts gets a value (guards against new, unmapped layers)."""
    assigned = {id(a.variable) for plan in plans for a in plan.assignments}
    parts = [model.fc, *model.blocks, model.conv_img]
    if with_encoder:
        parts.append(model.encoder)
    missed = [v.path for layer in parts for v in layer.weights if id(v) not in assigned]
    if missed:
        raise RuntimeError(f"The converter does not map these GroupDNet weights: {missed}")


def _as_array(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a PyTorch tensor
        value = value.detach().cpu()
        if value.is_floating_point() and str(value.dtype) not in _NUMPY_FLOATS:
            value = value.float()  # bfloat16 has no NumPy dtype
        value = value.numpy()
    return np.asarray(value)


def _shape(value) -> tuple[int, ...]:
    shape = getattr(value, "shape", None)
    return tuple(int(s) for s in (np.shape(value) if shape is None else shape))


def _identity(value: np.ndarray) -> np.ndarray:
    return value


def _torch_kernel_to_keras(weight: np.ndarray) -> np.ndarray:
    """(out, in/groups, kh, kw) -> (kh, kw, in/groups, out)."""
    return np.ascontiguousarray(np.transpose(weight, (2, 3, 1, 0)))


def _spectral_folder(prefix: str) -> Callable[..., np.ndarray]:
    def fold(weight_orig: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        weight_orig = weight_orig.astype(np.float64)
        matrix = weight_orig.reshape(weight_orig.shape[0], -1)
        sigma = float(np.dot(u.astype(np.float64), matrix @ v.astype(np.float64)))
        if not np.isfinite(sigma) or sigma == 0:
            raise ValueError(
                f"{prefix}: the spectral norm's stored u and v give sigma = {sigma}; "
                "expected a finite nonzero value"
            )
        return _torch_kernel_to_keras(weight_orig / sigma)

    return fold
