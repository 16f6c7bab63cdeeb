"""Loaders for the real datasets' standard folder layouts: DeepFashion, Cityscapes, ADE20K.

`folder_dataset(name, root, split, image_size, batch_size)` returns a `tf.data.Dataset` of
batches in the format the models and `SMISTrainer` take: `{"images": float32 (B, H, W, 3) in
[-1, 1], "masks": int32 label maps (B, H, W)}`, plus `"instances"` (int32 instance ids
(B, H, W)) for Cityscapes.

Layouts:

- deepfashion (C=8), the official SMIS layout: `ROOT/{train,test}/*.jpg` images and
  `ROOT/cihp_{train,test}_mask/*.png` label maps.
- cityscapes (C=35): `ROOT/leftImg8bit/{train,val}/CITY/*_leftImg8bit.png` images,
  `ROOT/gtFine/{train,val}/CITY/*_gtFine_labelIds.png` label maps and
  `*_gtFine_instanceIds.png` instance maps.
- ade20k (C=151), ADEChallengeData2016: `ROOT/images/{training,validation}/*.jpg` images and
  `ROOT/annotations/{training,validation}/*.png` label maps.

Label conventions, those of the official SMIS code (which are SPADE's):

- DeepFashion (official `label_nc=8`, no don't-care label): label maps hold the 8 CIHP-merged
  classes 0..7 and are used as they are. Images and label maps pair by file stem.
- Cityscapes (official `label_nc=35`, no don't-care label, instance maps used): the
  `*_labelIds.png` ids are used as they are. cityscapesScripts draws ids 0..33 (the
  license plate's id is -1, so its polygons are never drawn into `labelIds`), so channel 34 is
  never set; any value >= 35 (e.g. 255 from a `trainIds` file) is an error. Files pair by their
  `city_sequence_frame` prefix inside the same city folder.
- ADE20K (official `label_nc=150` with `contain_dontcare_label=True`, so 151 channels): the
  annotations hold 0 ("other") and the classes 1..150; like the official loader, class k moves
  to channel k - 1 and "other" to the last channel, 150. So label value 150 means "other" and the
  converted official ADE20K weights see the channel order they were trained with.

Values outside a dataset's range are an error, never clipped or remapped silently.

Preprocessing follows the official code: every image is resized to the model's size with
PIL's bicubic filter and every label/instance map with PIL's nearest filter (the aspect ratio is
not kept: DeepFashion and ADE20K go to a square, Cityscapes 2048x1024 to 512x256 or 256x128);
images are scaled to [-1, 1] as `x / 127.5 - 1`. The official ADE20K training resizes to 286 and
crops 256 at random; these loaders do not crop. The optional augmentation is the official one, a
horizontal flip of the image and its maps together, applied by `keras.layers.RandomFlip` on
`{"images", "segmentation_masks"}` (label and instance maps ride as the mask's channels).

The stream is deterministic: sample `k` of the stream (counting from 0 over all epochs) is file
`index_shuffle(k mod N, seed=(seed, k div N))` of the sorted list of pairs (a fresh permutation
every epoch, or the sorted order with `shuffle=False`), flipped when a stateless uniform draw
from `(seed, k)` is below 0.5. Sample `k` therefore depends only on `(seed, k)`, and `start`
positions a resumed run exactly: `folder_dataset(..., start=s)` yields the samples `s, s+1, ...`
of the stream that `start=0` yields.

Bad data raises `FolderDatasetError` (a `ValueError`) naming the file and the reason; nothing is
skipped. When the dataset is created (always): missing folders, no pairs, and unpaired files
(all of them listed). When a sample is read (or for every file at creation with
`verify=True`): unreadable or corrupt files, label maps that are not single-channel, an image
and its maps of different sizes, and label values outside the dataset's range. Inside
`tf.data` such an error surfaces as a `tf.errors.InvalidArgumentError` whose message holds the
`FolderDatasetError` text.

Examples:
    >>> dataset = folder_dataset("deepfashion", "data/deepfashion", "train", 256, batch_size=8,
    ...                          flip=True)
    >>> batch = next(iter(dataset))
    >>> batch["images"].shape, batch["masks"].shape
    (TensorShape([8, 256, 256, 3]), TensorShape([8, 256, 256]))
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np

from smis_layers.data.datasets import (
    DATASETS,
    FolderLayout,
    dataset_facts,
    datasets_with_instances,
)
from smis_layers.data.labels import (
    label_convention,
    out_of_range,
    resize_image,
    resize_label_image,
    to_model_labels,
)
from smis_layers.utils.validation import require_int_pair, require_positive_int

#: Class count by dataset name (read from the table, `smis_layers.data.datasets`).
DATASET_CLASSES = {name: facts.num_classes for name, facts in DATASETS.items()}

_LABEL_MODES = ("L", "P", "I", "I;16", "I;16L", "I;16B", "I;16N")
_MAX_LISTED = 20


class FolderDatasetError(ValueError):
    """A dataset folder or one of its files is unusable; the message names the file(s)."""


@dataclasses.dataclass(frozen=True)
class SamplePaths:
    """The files of one sample: its image, its label map and (Cityscapes) its instance map."""

    image: Path
    mask: Path
    instances: Path | None = None


def _layout(name: str) -> FolderLayout:
    return dataset_facts(name).layout


def _split_folder(name: str, split: str) -> str:
    splits = _layout(name).splits
    if split not in splits:
        raise ValueError(f"`split` must be one of {sorted(splits)} for {name}; received {split!r}")
    return splits[split]


def _require_dir(path: Path, name: str) -> None:
    if not path.is_dir():
        raise FolderDatasetError(
            f"{path} is not a folder; the {name} layout is {_layout(name).description}"
        )


def _listing(items: Sequence, limit: int = _MAX_LISTED) -> str:
    shown = [str(item) for item in items[:limit]]
    more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(shown) + more


def _by_key(files: list[Path], key: Callable[[Path], str], what: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in files:
        k = key(path)
        if k in found:
            raise FolderDatasetError(f"{what} {found[k]} and {path} have the same name {k!r}")
        found[k] = path
    return found


def _pair(
    groups: dict[str, tuple[dict[str, Path], str]], name: str, root: Path, split: str
) -> list[SamplePaths]:
    """Matches files by key; every unmatched file is listed in the error.

    `groups` maps a kind ("image", "label map", ...) to its files by key and the path pattern
    a file of that kind must have ("KEY" standing for the key).
    """
    keys = set().union(*(files for files, _ in groups.values()))
    missing = []
    for kind, (files, pattern) in groups.items():
        for key in sorted(keys - set(files)):
            present = next(found[key] for found, _ in groups.values() if key in found)
            expected = pattern.replace("KEY", key)
            missing.append(f"{present} has no {kind} (expected {expected})")
    if missing:
        raise FolderDatasetError(
            f"{name} {split!r} in {root}: {len(missing)} unpaired file(s): {_listing(missing)}"
        )
    if not keys:
        raise FolderDatasetError(
            f"{name} {split!r} in {root}: no samples found; the layout is "
            f"{_layout(name).description}"
        )
    found = [files for files, _ in groups.values()]
    return [
        SamplePaths(
            image=found[0][k], mask=found[1][k], instances=found[2][k] if len(found) > 2 else None
        )
        for k in sorted(keys)
    ]


def _files(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def list_samples(
    name: str, root: str | os.PathLike, split: str, instances: bool | None = None
) -> list[SamplePaths]:
    """The sorted, checked list of a dataset folder's samples.

    Args:
        name: "deepfashion", "cityscapes" or "ade20k".
        root: the dataset's root folder.
        split: deepfashion "train"/"test"; cityscapes "train"/"val" (the official code tests
            on "val"); ade20k "training"/"validation" (or "train"/"val").
        instances: read Cityscapes' instance maps (default: True for Cityscapes); only
            Cityscapes has them.

    Returns:
        One `SamplePaths` per sample, sorted by name.

    Raises:
        FolderDatasetError: a folder is missing, nothing is found, or files are unpaired (all
            unpaired files are listed).
    """
    root = Path(root)
    layout = _layout(name)
    folder = _split_folder(name, split)
    with_instances = layout.instance_suffix is not None
    if instances is None:
        instances = with_instances
    if instances and not with_instances:
        raise ValueError(
            f"{name} has no instance maps; only {', '.join(datasets_with_instances())} "
            f"{'does' if len(datasets_with_instances()) == 1 else 'do'}"
        )
    _require_dir(root, name)
    image_dir = root / layout.image_dir.format(split=folder)
    label_dir = root / layout.label_dir.format(split=folder)
    for path in (image_dir, label_dir):
        _require_dir(path, name)

    def collect(base: Path, suffixes: Sequence[str], what: str) -> tuple[dict[str, Path], str]:
        """`base`'s files of one kind by pairing key, and the path pattern of a file."""
        pattern = f"{base / 'KEY'}{suffixes[0]}"
        if not layout.recursive:  # pair by file stem
            found = _by_key(_files(base, suffixes), lambda p: p.stem, what)
            return found, pattern + (" or another image suffix" if len(suffixes) > 2 else "")
        ending = {}  # pair by the path under `base` minus the ending
        for path in sorted(base.rglob("*")):
            match = next((e for e in suffixes if path.name.endswith(e)), None)
            if match is not None and path.is_file():
                ending[path] = match

        def key(path: Path) -> str:
            return str(path.relative_to(base)).removesuffix(ending[path])

        return _by_key(list(ending), key, what), pattern

    groups = {
        "image": collect(image_dir, layout.image_suffixes, "images"),
        "label map": collect(label_dir, (layout.label_suffix,), "label maps"),
    }
    if instances:
        groups["instance map"] = collect(label_dir, (layout.instance_suffix,), "instance maps")
    return _pair(groups, name, root, split)


def _open(path: Path):
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
    except FileNotFoundError as error:
        raise FolderDatasetError(f"{path}: file not found") from error
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise FolderDatasetError(f"{path}: cannot be read as an image ({error})") from error
    return image


def _label_array(path: Path, what: str):
    image = _open(path)
    if image.mode not in _LABEL_MODES:
        raise FolderDatasetError(
            f"{path}: a {what} must be a single-channel image (PIL mode L, P, I or I;16); "
            f"this one has mode {image.mode}"
        )
    if image.mode.startswith("I;16"):
        image = image.convert("I")
    return image


def _read_checked(name: str, sample: SamplePaths):
    """Decodes one sample's files and checks them (modes, sizes, label range): the RGB image
    and the `(what, path, map)` label and instance maps, PIL images at the files' size."""
    image = _open(sample.image).convert("RGB")
    mask = _label_array(sample.mask, "label map")
    maps = [("label map", sample.mask, mask)]
    if sample.instances is not None:
        maps.append(
            ("instance map", sample.instances, _label_array(sample.instances, "instance map"))
        )
    for what, path, label_image in maps:
        if label_image.size != image.size:
            raise FolderDatasetError(
                f"{sample.image} is {image.size[0]}x{image.size[1]} but its {what} {path} is "
                f"{label_image.size[0]}x{label_image.size[1]} (width x height); an image and "
                "its maps must have one size"
            )
    raw = np.asarray(mask)
    convention = label_convention(name)
    if raw.min() < 0 or raw.max() > convention.raw_max:  # every value of the file, unresized
        bad = out_of_range(raw, name)
        raise FolderDatasetError(
            f"{sample.mask}: label values {_listing(bad.tolist())} are outside "
            f"[0, {convention.raw_max}] for {name} ({convention.note})"
        )
    return image, maps


def load_sample(
    name: str, sample: SamplePaths, image_size: int | Sequence[int]
) -> dict[str, np.ndarray]:
    """Reads, checks and resizes one sample (the per-sample work of `folder_dataset`).

    Args:
        name: "deepfashion", "cityscapes" or "ade20k".
        sample: its files.
        image_size: the output size, an int (square) or (height, width).

    Returns:
        "images" uint8 (H, W, 3), "masks" int32 (H, W) in [0, C) after the dataset's label
        mapping, and "instances" int32 (H, W) when the sample has an instance map.

    Raises:
        FolderDatasetError: an unreadable file, a label map that is not single-channel, an
            image and a map of different sizes, or label values outside the dataset's range.
    """
    height, width = require_int_pair("image_size", image_size)
    _layout(name)
    image, maps = _read_checked(name, sample)
    image = resize_image(image, (height, width))
    maps = [(w, p, resize_label_image(m, (height, width))) for w, p, m in maps]
    labels = to_model_labels(np.asarray(maps[0][2]), name, source=str(sample.mask))
    out = {"images": np.asarray(image, dtype="uint8"), "masks": labels}
    if sample.instances is not None:
        out["instances"] = np.asarray(maps[1][2]).astype("int32")
    return out


def verify_samples(
    name: str,
    samples: Sequence[SamplePaths],
    image_size: int | Sequence[int] | None = None,
    progress: bool = False,
    workers: int | None = None,
) -> None:
    """Decodes and checks every sample (in threads) and raises one error listing every bad
    file: unreadable files, label maps that are not single-channel, an image and its maps of
    different sizes, label values outside the dataset's range. Nothing is resized, so the scan
    runs at decoding speed (measured on 2 shared cores: 330 pairs/s of 256x256 PNGs of
    noise, the slowest to decode, 540 of smoother ones).

    Args:
        name: "deepfashion", "cityscapes" or "ade20k".
        samples: from `list_samples`.
        image_size: unused (kept for callers that pass the model's size).
        progress: show a progress line on stderr.
        workers: threads (default: the CPU count, at most 16).

    Raises:
        FolderDatasetError: with one line per bad sample (the first 20, and how many more).
    """
    import sys
    import time

    _layout(name)

    def check(sample: SamplePaths) -> str | None:
        try:
            _read_checked(name, sample)
        except FolderDatasetError as error:
            return str(error)
        return None

    total, problems, start = len(samples), [], time.perf_counter()
    live = sys.stderr.isatty()  # a redrawn line on a terminal, ten lines in a log file
    every = max(1, total // (100 if live else 10))
    workers = workers or min(16, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, problem in enumerate(pool.map(check, samples), start=1):
            if problem is not None:
                problems.append(problem)
            if progress and (done % every == 0 or done == total):
                rate = done / max(time.perf_counter() - start, 1e-9)
                print(
                    f"{chr(13) if live else ''}checking {name} samples: {done}/{total} "
                    f"({rate:,.0f}/s, {len(problems)} bad)",
                    end="\n" if done == total or not live else "",
                    file=sys.stderr,
                    flush=True,
                )
    if problems:
        shown = "\n  ".join(problems[:_MAX_LISTED])
        more = (
            f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
        )
        raise FolderDatasetError(
            f"{len(problems)} of {total} {name} samples are unusable:\n  {shown}{more}"
        )


class PresetRandomFlip(keras.layers.RandomFlip):
    """`keras.layers.RandomFlip` whose per-sample decisions are given in the data.

    Called on `{"images": (B, H, W, C), "segmentation_masks": (B, H, W, K), "flips": (B,)
    bool}`, it flips (horizontally by default) the images and the label maps of the samples whose
    `flips` is true, through RandomFlip's own transforms. The decisions come from the data so
    that they can be a stateless function of the sample's position in a stream (reproducible
    after a resume); RandomFlip's seed generator would instead depend on how many batches the
    layer has seen. Images and label maps come back as the layer's `compute_dtype`, as from
    RandomFlip: build it with `dtype="int32"` to flip label maps without a float round trip.
    """

    def __init__(self, mode: str = "horizontal", **kwargs):
        super().__init__(mode=mode, **kwargs)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        shape = self.backend.core.shape(data["images"])
        flips = self.backend.cast(data["flips"], "bool")
        if len(shape) == 3:
            flips = self.backend.numpy.reshape(flips, (1, 1, 1))
        else:
            flips = self.backend.numpy.reshape(flips, (-1, 1, 1, 1))
        return {"flips": flips, "input_shape": shape}


def folder_dataset(
    name: str,
    root: str | os.PathLike,
    split: str,
    image_size: int | Sequence[int],
    batch_size: int,
    *,
    seed: int = 0,
    shuffle: bool = True,
    flip: bool = False,
    start: int = 0,
    repeat: bool = True,
    instances: bool | None = None,
    verify: bool = False,
):
    """A `tf.data.Dataset` of batches read from a dataset's standard folder layout.

    Args:
        name: "deepfashion", "cityscapes" or "ade20k" (see `DATASET_CLASSES`).
        root: the dataset's root folder.
        split: see `list_samples`.
        image_size: the model's image size, an int (square) or (height, width).
        batch_size: samples per batch.
        seed: the shuffle and flip seed.
        shuffle: a fresh permutation of the samples every epoch (else the sorted order).
        flip: the official augmentation: flip each sample horizontally with probability 0.5
            (image, label map and instance map together).
        start: skip this many samples of the stream (a resumed run passes the number of
            samples it has consumed); exact and O(1), see the module docstring.
        repeat: an endless stream of epochs (full batches only); else one pass from `start`
            to the end of the first epoch, the last batch possibly smaller.
        instances: also return Cityscapes' instance maps as "instances" (default: True for
            Cityscapes; False elsewhere).
        verify: read every file once now and raise one error listing every bad file (a full
            pass over the dataset); otherwise bad files raise when they are read.

    Returns:
        A dataset of dicts "images" float32 (B, H, W, 3) in [-1, 1], "masks" int32 (B, H, W)
        in [0, C) and, with instances, "instances" int32 (B, H, W), prefetched.

    Raises:
        FolderDatasetError: missing folders, no samples, unpaired files, and (with `verify`)
            any bad file. Errors found while reading surface from the iterator as
            `tf.errors.InvalidArgumentError` carrying the same message.
    """
    import tensorflow as tf

    require_positive_int("batch_size", batch_size)
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
        raise ValueError(f"`start` must be a non-negative integer; received start={start!r}")
    height, width = require_int_pair("image_size", image_size)
    samples = list_samples(name, root, split, instances=instances)
    if verify:
        verify_samples(name, samples, (height, width))
    count = len(samples)
    if not repeat and start > count:
        raise ValueError(f"`start` ({start}) is past the end of the {count} samples")
    with_instances = samples[0].instances is not None
    keys = ("images", "masks", "instances") if with_instances else ("images", "masks")
    dtypes = {"images": tf.uint8, "masks": tf.int32, "instances": tf.int32}
    shapes = {"images": (height, width, 3), "masks": (height, width), "instances": (height, width)}
    seed = int(seed)

    def locate(k):
        epoch, position = k // count, k % count
        if shuffle:
            position = tf.random.experimental.index_shuffle(
                position, seed=tf.stack([tf.constant(seed, tf.int64), epoch]), max_index=count - 1
            )
        flips = tf.random.stateless_uniform(
            (), seed=tf.stack([k, tf.constant(seed, tf.int64)]), dtype=tf.float32
        ) < (0.5 if flip else 0.0)
        return position, flips

    def read(position):
        values = load_sample(name, samples[int(position)], (height, width))
        return tuple(values[k] for k in keys)

    def decode(position, flips):
        outputs = tf.numpy_function(read, [position], [dtypes[k] for k in keys], stateful=False)
        sample = {k: tf.ensure_shape(o, shapes[k]) for k, o in zip(keys, outputs, strict=True)}
        sample["flips"] = flips
        return sample

    # An int32 layer: pixels, labels and instance ids are flipped without a float round trip.
    flipper = PresetRandomFlip("horizontal", dtype="int32") if flip else None

    def finish(batch):
        images = tf.cast(batch["images"], tf.int32)
        maps = [batch[k] for k in keys[1:]]
        if flipper is not None:
            flipped = flipper(
                {
                    "images": images,
                    "segmentation_masks": tf.stack(maps, axis=-1),
                    "flips": batch["flips"],
                }
            )
            images = flipped["images"]
            maps = tf.unstack(flipped["segmentation_masks"], num=len(maps), axis=-1)
        out = {"images": tf.cast(images, tf.float32) / 127.5 - 1.0}
        out.update(zip(keys[1:], maps, strict=True))
        return out

    stream = tf.data.Dataset.counter(start) if repeat else tf.data.Dataset.range(start, count)
    return (
        stream.map(locate)
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(batch_size, drop_remainder=repeat)
        .map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
