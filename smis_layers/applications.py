"""What GroupDNet is for: multi-modal sampling, per-class resampling, appearance mixture,
semantic manipulation, style morphing and real-image encoding.

Every function takes a model (a `GroupDNet`, a baseline, or any preset loaded with
`smis_layers.models.from_preset`) and one label map `labels` (H, W) of integers in [0, C); images
are (H, W, 3) floats in [-1, 1]; codes `z` are (h, w, 8C) arrays as `model.encode` returns them
(one image's codes, no batch axis). Randomness comes only from `seed`, so every result is
reproducible. The `smis` commands of the same names wrap these functions and write PNG grids.

Examples:
    >>> model = from_preset("groupdnet_shapes64")
    >>> labels = example_labels(model, 1)[0]
    >>> images = resample_class(model, labels, class_index=2, n=4, seed=0)  # only class 2 changes
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from smis_layers.data.synthetic import HELD_OUT_SEED, SyntheticShapes
from smis_layers.utils.deprecation import renamed_function, renamed_keywords

DonorSpec = int | tuple[np.ndarray, np.ndarray]
"""A class's appearance source in `mix_appearance`: a seed (a code drawn from the prior) or a
reference `(image, labels)` pair whose encoded code for that class is taken."""


# ---------------------------------------------------------------------------- inputs
@renamed_keywords(mask="labels")
def check_labels(model, labels, name: str = "labels") -> np.ndarray:
    """`labels` as an int32 (H, W) label map of `model`, or a ValueError naming what is wrong."""
    labels = np.asarray(labels)
    if labels.ndim == 3 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    expected = tuple(model.image_size)
    if labels.ndim != 2 or labels.shape != expected:
        raise ValueError(
            f"`{name}` must be a {expected[0]}x{expected[1]} label map for this model; "
            f"received shape {labels.shape}"
        )
    fractional = not np.issubdtype(labels.dtype, np.integer) and (
        not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels))
    )
    if fractional:
        raise ValueError(f"`{name}` must hold integer class labels; received {labels.dtype}")
    labels = labels.astype("int64")
    bad = np.unique(labels[(labels < 0) | (labels >= model.num_classes)])
    if bad.size:
        raise ValueError(
            f"`{name}` holds labels {bad.tolist()[:10]} outside [0, {model.num_classes}) of "
            f"this {model.num_classes}-class model"
        )
    return labels.astype("int32")


def check_image(model, image, name: str = "image") -> np.ndarray:
    """`image` as a float32 (H, W, 3) array in [-1, 1] of `model`'s size, or a ValueError."""
    image = np.asarray(image, dtype="float32")
    expected = (*model.image_size, 3)
    if image.shape != expected:
        raise ValueError(f"`{name}` must have shape {expected}; received {image.shape}")
    if not np.all(np.isfinite(image)):
        raise ValueError(f"`{name}` holds NaN or infinite values")
    if image.min() < -1.001 or image.max() > 1.001:
        raise ValueError(
            f"`{name}` must be in [-1, 1]; received values in [{image.min():.3g}, "
            f"{image.max():.3g}] (use load_image for 8-bit images)"
        )
    return image


def check_class(model, class_index: int, name: str = "class_index") -> int:
    if isinstance(class_index, bool) or not isinstance(class_index, int | np.integer):
        raise TypeError(f"`{name}` must be an int; received {class_index!r}")
    if not 0 <= class_index < model.num_classes:
        raise ValueError(
            f"`{name}` must be in [0, {model.num_classes}) for this model; received {class_index}"
        )
    return int(class_index)


def check_code(model, z, name: str = "z") -> np.ndarray:
    z = np.asarray(z, dtype="float32")
    if z.shape != tuple(model.latent_shape):
        raise ValueError(
            f"`{name}` must have shape {tuple(model.latent_shape)}; received {z.shape}"
        )
    if not np.all(np.isfinite(z)):
        raise ValueError(f"`{name}` holds NaN or infinite values")
    return z


def load_labels(
    path: str | os.PathLike, model=None, label_convention: str | None = None
) -> np.ndarray:
    """Reads a label map from a PNG (grayscale or palette image whose pixel values are the
    labels, or an RGB image drawn in `colourize`'s class colours) or a .npy file (a (H, W)
    label map or an (H, W, C) one-hot / score array). With `model`, checks the size and the
    labels against it.

    A grayscale or palette PNG is read as a dataset annotation: its values go through the label
    convention (`label_convention`, default: the model's, which its preset recorded; e.g. a raw
    ADE20K annotation's 0 "other" becomes class 150 and class k becomes k - 1, as in training;
    see `smis_layers.data.labels`). Colour PNGs and .npy arrays hold the model's classes.

    With `model`, a PNG of another size is resized to the model's as the training loader
    resizes label maps (nearest, the aspect ratio not kept, no crop); a .npy array must already
    have the model's size."""
    from smis_layers.data.labels import model_label_convention, to_model_labels

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file {path} does not exist")
    if label_convention is None and model is not None:
        label_convention = model_label_convention(model)
    if path.suffix.lower() == ".npy":
        array = np.load(path, allow_pickle=False)
        if array.ndim == 3 and array.shape[-1] > 1:
            array = np.argmax(array, axis=-1)
    else:
        size = None if model is None else tuple(model.image_size)
        array, annotation = _read_label_png(path, size)
        if annotation:
            array = to_model_labels(array, label_convention, source=f"label file {path}")
    if model is None:
        return np.asarray(array).astype("int32")
    try:
        return check_labels(model, array, name=f"label map {path}")
    except ValueError as error:
        raise ValueError(str(error).replace("`", "")) from None


def _read_label_png(path: Path, size: tuple[int, int] | None) -> tuple[np.ndarray, bool]:
    """The labels of a PNG (resized to `size` as the training loader resizes label maps, when
    given) and whether they are annotation values (grayscale or palette image) rather than
    `colourize`'s class colours."""
    from PIL import Image

    from smis_layers.data.labels import resize_label_image
    from smis_layers.utils.images import MASK_COLOURS

    try:
        image = Image.open(path)
        image.load()
    except OSError as error:
        raise ValueError(f"label file {path} is not a readable image: {error}") from None
    if image.mode.startswith("I;16"):
        image = image.convert("I")
    if size is not None:
        image = resize_label_image(image, size)
    if image.mode in ("L", "P", "I"):
        return np.asarray(image).astype("int64"), True
    rgb = np.asarray(image.convert("RGB")).astype("int64")
    if np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2]):
        return rgb[..., 0], True
    codes = rgb[..., 0] * 65536 + rgb[..., 1] * 256 + rgb[..., 2]
    palette = MASK_COLOURS.astype("int64")
    palette_codes = palette[:, 0] * 65536 + palette[:, 1] * 256 + palette[:, 2]
    labels = np.full(codes.shape, -1, dtype="int64")
    for label, code in enumerate(palette_codes):
        labels[codes == code] = label
    if np.any(labels < 0):
        raise ValueError(
            f"label file {path} is an RGB image whose colours are not the class colours of "
            "smis_layers.utils.images.MASK_COLOURS; save label maps as grayscale PNGs "
            "(pixel value = class) or .npy"
        )
    return labels, False


def load_image(path: str | os.PathLike, model=None) -> np.ndarray:
    """Reads an image (PNG/JPEG: 8-bit, mapped to [-1, 1]; .npy: already in [-1, 1]) as a
    float32 (H, W, 3) array. With `model`, a PNG/JPEG of another size is resized to the model's
    as the training loader resizes images (bicubic, the aspect ratio not kept, no crop); a .npy
    array must already have the model's size."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} does not exist")
    if path.suffix.lower() == ".npy":
        image = np.load(path, allow_pickle=False).astype("float32")
    else:
        from PIL import Image

        from smis_layers.data.labels import resize_image

        try:
            with Image.open(path) as handle:
                rgb = handle.convert("RGB")
            if model is not None:
                rgb = resize_image(rgb, model.image_size)
            image = np.asarray(rgb).astype("float32") / 127.5 - 1.0
        except OSError as error:
            raise ValueError(f"image file {path} is not a readable image: {error}") from None
    if model is None:
        return image
    try:
        return check_image(model, image, name=f"image {path}")
    except ValueError as error:
        raise ValueError(str(error).replace("`", "")) from None


def example_labels(model, count: int = 4, seed: int = HELD_OUT_SEED) -> np.ndarray:
    """Built-in example label maps for `model`: held-out scenes of the synthetic benchmark
    (its classes and size; any model with 2..16 classes and a 64/128/256 size)."""
    data = example_data(model, count, seed)
    return data["masks"]


def example_data(model, count: int = 4, seed: int = HELD_OUT_SEED) -> dict[str, np.ndarray]:
    """Held-out synthetic scenes for `model`: a data batch ("images", "masks": the label maps,
    and the appearance factors)."""
    height, width = model.image_size
    if height != width:
        raise ValueError(f"example data are square; the model's image size is {(height, width)}")
    data = SyntheticShapes(image_size=height, num_classes=model.num_classes, seed=seed)
    return data.batch(np.arange(count))


# ---------------------------------------------------------------------------- codes
@renamed_keywords(mask="labels")
def encode(model, image, labels) -> np.ndarray:
    """The codes (h, w, 8C) of a real image: the encoder's means (its deterministic output).
    Warns when the model's preset says its encoder has random weights (converted without the
    official encoder checkpoint): such codes are meaningless."""
    if getattr(model, "encoder_is_random", False):
        import warnings

        warnings.warn(
            "this model's encoder has random weights (its preset was converted without the "
            "official encoder checkpoint, latest_net_E.pth): the codes are meaningless; "
            "convert it again with the encoder",
            UserWarning,
            stacklevel=2,
        )
    image, labels = check_image(model, image), check_labels(model, labels)
    mu, _ = model.encode(image[None], labels[None])
    return np.asarray(mu)[0]


@renamed_keywords(mask="labels")
def decode(model, labels, z) -> np.ndarray:
    """The image (H, W, 3) that codes `z` give for `labels`."""
    labels, z = check_labels(model, labels), check_code(model, z)
    return model.generate(labels[None], z=z[None])[0]


def _prior_codes(
    model, n: int, seed: int, shared_codes: bool = False, prior: str = "auto"
) -> np.ndarray:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"`n` must be a positive int; received {n!r}")
    return model.sample_z(int(n), seed=seed, spatially_shared=shared_codes, prior=prior)


# ---------------------------------------------------------------------------- applications
@renamed_keywords(mask="labels")
def sample(
    model, labels, n: int = 8, seed: int = 0, shared_codes: bool = False, prior: str = "auto"
) -> np.ndarray:
    """`n` images (n, H, W, 3) for one label map, every class's code drawn at random: from the
    model's fitted code prior if it has one, else from N(0, 1) (`prior` and `shared_codes`
    are `sample_z`'s `prior` and `spatially_shared`)."""
    labels = check_labels(model, labels)
    z = _prior_codes(model, n, seed, shared_codes, prior)
    return model.generate(np.repeat(labels[None], len(z), axis=0), z=z)


@renamed_keywords(mask="labels")
def resample_class(
    model,
    labels,
    class_index: int,
    n: int = 8,
    seed: int = 0,
    z=None,
    shared_codes: bool = False,
    prior: str = "auto",
) -> np.ndarray:
    """`n` images in which only class `class_index`'s code changes (the paper's per-class
    control; the official `--test_mask`): the other classes keep the codes `z` (default: one
    random draw with `seed`). `shared_codes` and `prior` draw codes as in `sample`."""
    labels, class_index = check_labels(model, labels), check_class(model, class_index)
    base = (
        _prior_codes(model, 1, seed, shared_codes, prior)[0] if z is None else check_code(model, z)
    )
    fresh = _prior_codes(model, n, seed + 1, shared_codes, prior)
    codes = np.stack(
        [model.with_class_code(base, class_index, model.class_code(f, class_index)) for f in fresh]
    )
    return model.generate(np.repeat(labels[None], n, axis=0), z=codes)


@renamed_keywords(mask="labels")
def mix_appearance(
    model, labels, donors: Mapping[int, DonorSpec], seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Appearance mixture: each class's code taken from its own source.

    Args:
        model: the generator.
        labels: the label map to draw.
        donors: class index -> a seed (a code from the prior) or a reference (image, labels)
            (its encoded code for that class). Classes not named keep a prior code drawn with
            `seed`.
        seed: seed of the codes of the classes not in `donors`.

    Returns:
        (image (H, W, 3), codes (h, w, 8C)).
    """
    labels = check_labels(model, labels)
    z = _prior_codes(model, 1, seed)[0]
    encoded = {}  # one encoding per reference shared by several classes
    for class_index, donor in donors.items():
        class_index = check_class(model, class_index, "donors key")
        if isinstance(donor, tuple):
            key = tuple(id(part) for part in donor)
            if key not in encoded:
                encoded[key] = encode(model, *donor)
            donor_z = encoded[key]
        elif isinstance(donor, int | np.integer) and not isinstance(donor, bool):
            donor_z = _prior_codes(model, 1, int(donor))[0]
        else:
            raise TypeError(
                f"`donors[{class_index}]` must be a seed (int) or an (image, labels) pair; "
                f"received {type(donor).__name__}"
            )
        z = model.with_class_code(z, class_index, model.class_code(donor_z, class_index))
    return decode(model, labels, z), z


@renamed_keywords(mask="labels")
def replace_class(labels, old: int, new: int) -> np.ndarray:
    """A copy of `labels` in which class `old` is relabelled `new` (a semantic edit)."""
    labels = np.array(labels, dtype="int32", copy=True)
    labels[labels == old] = new
    return labels


@renamed_keywords(mask="labels")
def paste_labels(labels, patch, transparent: int = 0) -> np.ndarray:
    """A copy of `labels` with `patch`'s pixels pasted over it, except where `patch` is
    `transparent` (by default the background class 0): inserts the patch's objects."""
    labels, patch = np.asarray(labels, dtype="int32"), np.asarray(patch, dtype="int32")
    if labels.shape != patch.shape:
        raise ValueError(
            f"`patch` must have the label map's shape {labels.shape}; received {patch.shape}"
        )
    return np.where(patch == transparent, labels, patch).astype("int32")


@renamed_keywords(mask="labels", edited_mask="edited_labels")
def manipulate(model, image, labels, edited_labels, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Semantic manipulation: encode `image` with `labels`, then draw `edited_labels` with the same
    codes, so every class keeps its appearance. Classes absent from `labels` have no code in the
    image; they get prior codes drawn with `seed`.

    Returns:
        (reconstruction of `image` with `labels`, the edited image), each (H, W, 3).
    """
    edited_labels = check_labels(model, edited_labels, "edited_labels")
    z = encode(model, image, labels)
    prior = _prior_codes(model, 1, seed)[0]
    present = set(np.unique(check_labels(model, labels)).tolist())
    for class_index in set(np.unique(edited_labels).tolist()) - present:
        z = model.with_class_code(z, class_index, model.class_code(prior, class_index))
    return decode(model, labels, z), decode(model, edited_labels, z)


@renamed_keywords(mask="labels")
def morph(model, labels, z_a, z_b, steps: int = 8, extrapolate: float = 0.0) -> np.ndarray:
    """Style morphing: images (steps, H, W, 3) along the line from codes `z_a` to `z_b`,
    t in [-extrapolate, 1 + extrapolate]; with `extrapolate=0` the first and last images are
    exactly `decode(z_a)` and `decode(z_b)`."""
    labels = check_labels(model, labels)
    z_a, z_b = check_code(model, z_a, "z_a"), check_code(model, z_b, "z_b")
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 2:
        raise ValueError(f"`steps` must be an int >= 2; received {steps!r}")
    if not np.isfinite(extrapolate) or extrapolate < 0:
        raise ValueError(f"`extrapolate` must be a finite number >= 0; received {extrapolate}")
    t = np.linspace(-extrapolate, 1.0 + extrapolate, int(steps), dtype="float32")
    codes = z_a[None] + t[:, None, None, None] * (z_b - z_a)[None]
    return model.generate(np.repeat(labels[None], len(t), axis=0), z=codes)


# ---------------------------------------------------------------------------- 0.1.0 names
# "mask" named label maps, one-hot maps and the decoder's condition alike; the old names stay
# for one release, warning (DeprecationWarning).
check_mask = renamed_function(check_labels, "check_mask")
load_mask = renamed_function(load_labels, "load_mask")
example_masks = renamed_function(example_labels, "example_masks")
paste_mask = renamed_function(paste_labels, "paste_mask")
