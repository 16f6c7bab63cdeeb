"""The synthetic benchmark: procedural scenes with a known, multi-modal appearance per class.

No image dataset can be downloaded on the machines this library is built on, so the zoo's
presets, the tests and the benchmarks use this dataset. Each sample is a scene of shapes on a
background, class 0 being the background and class k >= 1 a shape family (disk, square,
triangle, ring, cross, diamond, bar, ...), laid out at random with occlusion. Every class present
in a sample gets one appearance for the whole sample, drawn from several modes: a palette (one of
`num_palettes` colour pairs specific to the class) times a texture family (flat, stripes, checker,
dots, radial gradient), with random texture parameters (frequency, angle, phase). The appearance
factors of every sample are returned, so disentanglement can be checked exactly: changing class
c's appearance must change exactly class c's pixels.

Deterministic: sample `i` of a dataset with seed `s` depends only on `(s, i)`, whatever the
batch it is generated in. Generation is vectorized over the batch and the objects (NumPy).

Examples:
    >>> dataset = SyntheticShapes(image_size=64, seed=0)
    >>> batch = dataset.batch(np.arange(4))
    >>> batch["images"].shape, batch["masks"].shape
    ((4, 64, 64, 3), (4, 64, 64))
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import itertools
from collections.abc import Iterator

import numpy as np

from smis_layers.utils.deprecation import renamed_keywords
from smis_layers.utils.validation import (
    require_choice,
    require_non_negative_int,
    require_positive_int,
)

#: `SyntheticShapes(..., seed=HELD_OUT_SEED)` draws the held-out scenes (validation, evaluation,
#: sample sheets, applications' examples); training draws seed 0 by default, and a run trained
#: with seed s is shown and evaluated on seed s + HELD_OUT_SEED.
HELD_OUT_SEED = 1000

SHAPE_FAMILIES = (
    "disk",
    "square",
    "triangle",
    "ring",
    "cross",
    "diamond",
    "bar",
    "ellipse",
    "half_disk",
    "frame",
    "plus_ring",
    "wedge",
    "hexagon",
    "star",
    "crescent",
)
TEXTURES = ("flat", "stripes", "checker", "dots", "radial")
SIZES = (64, 128, 256)


@dataclasses.dataclass(frozen=True)
class SyntheticShapes:
    """The synthetic benchmark.

    Args:
        image_size: 64, 128 or 256.
        num_classes: C, background included (2 to 16).
        num_palettes: palettes per class.
        seed: dataset seed.
        min_objects / max_objects: shapes per scene.
    """

    image_size: int = 64
    num_classes: int = 8
    num_palettes: int = 3
    seed: int = 0
    min_objects: int = 3
    max_objects: int = 6

    def __post_init__(self):
        require_choice("image_size", self.image_size, SIZES)
        require_positive_int("num_classes", self.num_classes)
        if not 2 <= self.num_classes <= len(SHAPE_FAMILIES) + 1:
            raise ValueError(
                f"`num_classes` must be in [2, {len(SHAPE_FAMILIES) + 1}]; received "
                f"{self.num_classes}"
            )
        require_positive_int("num_palettes", self.num_palettes)
        require_positive_int("min_objects", self.min_objects)
        require_non_negative_int("seed", self.seed)
        if self.max_objects < self.min_objects:
            raise ValueError(
                f"`max_objects` ({self.max_objects}) must be >= `min_objects` ({self.min_objects})"
            )

    @property
    def num_modes(self) -> int:
        """Discrete appearance modes per class (palettes x texture families)."""
        return self.num_palettes * len(TEXTURES)

    def palettes(self) -> np.ndarray:
        """(C, num_palettes, 2, 3) colours in [0, 1], fixed by the class (not by `seed`)."""
        rng = np.random.default_rng(12345)
        base_hue = np.linspace(0.0, 1.0, self.num_classes, endpoint=False)
        hues = (
            base_hue[:, None] + rng.uniform(-0.04, 0.04, (self.num_classes, self.num_palettes))
        ) % 1.0
        hues = (hues + np.arange(self.num_palettes)[None] * 0.37) % 1.0
        first = _hsv_to_rgb(hues, 0.75, 0.95)
        second = _hsv_to_rgb((hues + 0.5) % 1.0, 0.55, 0.35)
        return np.stack([first, second], axis=2).astype("float32")

    def batch(self, indices) -> dict[str, np.ndarray]:
        """Samples `indices`: images (B, H, W, 3) in [-1, 1], label maps (B, H, W) int32 and
        the appearance factors: palette (B, C), texture (B, C), params (B, C, 3)."""
        indices = _sample_indices(indices)
        size = self.image_size
        rngs = [np.random.default_rng([self.seed, int(i)]) for i in indices]
        layout = [self._layout(rng) for rng in rngs]
        appearance = [self._appearance(rng) for rng in rngs]
        yy, xx = np.meshgrid(
            np.linspace(0, 1, size, dtype="float32"),
            np.linspace(0, 1, size, dtype="float32"),
            indexing="ij",
        )
        labels = np.stack([_paint(objects, yy, xx) for objects in layout]).astype("int32")
        palette = np.stack([a[0] for a in appearance])
        texture = np.stack([a[1] for a in appearance])
        params = np.stack([a[2] for a in appearance])
        images = self.render(labels, palette, texture, params)
        return {
            "images": images,
            "masks": labels,
            "palette": palette,
            "texture": texture,
            "params": params,
        }

    @renamed_keywords(masks="labels")
    def render(self, labels, palette, texture, params) -> np.ndarray:
        """Images for label maps and appearance factors (e.g. with one class's factor changed)."""
        size = labels.shape[-1]
        yy, xx = np.meshgrid(
            np.linspace(0, 1, size, dtype="float32"),
            np.linspace(0, 1, size, dtype="float32"),
            indexing="ij",
        )
        colours = self.palettes()  # (C, P, 2, 3)
        batch = labels.shape[0]
        b = np.arange(batch)[:, None, None]
        pattern = _texture_field(texture[b, labels], params[b, labels], yy, xx)  # (B, H, W)
        pair = colours[labels, palette[b, labels]]  # (B, H, W, 2, 3)
        rgb = pair[..., 0, :] * pattern[..., None] + pair[..., 1, :] * (1 - pattern[..., None])
        return (2.0 * rgb - 1.0).astype("float32")

    def _layout(self, rng):
        count = rng.integers(self.min_objects, self.max_objects + 1)
        classes = rng.integers(1, self.num_classes, count)
        centers = rng.uniform(0.15, 0.85, (count, 2))
        radii = rng.uniform(0.1, 0.28, count)
        angles = rng.uniform(0, np.pi, count)
        return classes, centers, radii, angles

    def _appearance(self, rng):
        c = self.num_classes
        palette = rng.integers(0, self.num_palettes, c)
        texture = rng.integers(0, len(TEXTURES), c)
        params = np.stack(
            [rng.uniform(4, 10, c), rng.uniform(0, np.pi, c), rng.uniform(0, 1, c)], axis=-1
        )
        return palette.astype("int32"), texture.astype("int32"), params.astype("float32")


def _sample_indices(indices) -> np.ndarray:
    """Sample indices as a non-empty 1D int64 array of non-negative integers, or a ValueError."""
    array = np.asarray(indices)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(f"`indices` must be integers; received dtype {array.dtype}")
    array = array.reshape(-1)
    if array.size == 0:
        raise ValueError("`indices` must hold at least one sample index; received none")
    if np.issubdtype(array.dtype, np.floating) and (
        not np.all(np.isfinite(array)) or np.any(array != np.round(array))
    ):
        raise ValueError(f"`indices` must be integers; received {array[:5].tolist()}...")
    if array.min() < 0:
        raise ValueError(f"`indices` must be >= 0; received a minimum of {array.min()}")
    return array.astype("int64")


def _hsv_to_rgb(h, s, v):
    h = np.asarray(h)
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p = np.full_like(h, v * (1 - s))
    q, t = v * (1 - f * s), v * (1 - (1 - f) * s)
    v = np.full_like(h, v)
    table = np.stack(
        [
            np.stack(x, -1)
            for x in [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
        ]
    )
    return np.take_along_axis(table, i[None, ..., None], 0)[0]


def _shape_masks(classes, centers, radii, angles, yy, xx):
    """(N, H, W) boolean masks of N shapes; the family is the class index - 1."""
    dy = yy[None] - centers[:, 0, None, None]
    dx = xx[None] - centers[:, 1, None, None]
    cos, sin = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    r = radii[:, None, None]
    dist = np.sqrt(dx**2 + dy**2)
    families = {
        "disk": dist < r,
        "square": np.maximum(abs(u), abs(v)) < 0.8 * r,
        "triangle": (v > -0.6 * r) & (v < 0.9 * r - 1.7 * abs(u)),
        "ring": (dist < r) & (dist > 0.55 * r),
        "cross": ((abs(u) < 0.3 * r) | (abs(v) < 0.3 * r)) & (np.maximum(abs(u), abs(v)) < r),
        "diamond": abs(u) + abs(v) < r,
        "bar": (abs(u) < 1.3 * r) & (abs(v) < 0.35 * r),
        "ellipse": (u / (1.2 * r)) ** 2 + (v / (0.6 * r)) ** 2 < 1,
        "half_disk": (dist < r) & (v > 0),
        "frame": (np.maximum(abs(u), abs(v)) < 0.9 * r) & (np.maximum(abs(u), abs(v)) > 0.6 * r),
        "plus_ring": (dist < r) & ((dist > 0.7 * r) | (abs(u) < 0.2 * r)),
        "wedge": (dist < r) & (abs(np.arctan2(v, u)) < 0.6),
        "hexagon": np.maximum(abs(u) * 0.866 + abs(v) * 0.5, abs(v)) < 0.85 * r,
        "star": dist < r * (0.6 + 0.35 * np.cos(5 * np.arctan2(v, u))),
        "crescent": (dist < r) & (np.sqrt((u - 0.4 * r) ** 2 + v**2) > 0.8 * r),
    }
    stacked = np.stack([families[name] for name in SHAPE_FAMILIES])  # (F, N, H, W)
    return stacked[classes - 1, np.arange(len(classes))]


def _paint(layout, yy, xx):
    """Label map: background 0, later objects drawn over earlier ones (occlusion)."""
    classes, centers, radii, angles = layout
    shapes = _shape_masks(classes, centers, radii, angles, yy, xx)  # (N, H, W)
    labels = np.zeros(yy.shape, dtype="int32")
    order = np.arange(1, len(classes) + 1)[:, None, None] * shapes
    top = order.max(axis=0)
    covered = top > 0
    labels[covered] = classes[top[covered] - 1]
    return labels


def _texture_field(texture, params, yy, xx):
    """Texture value in [0, 1] per pixel for per-pixel texture ids and params (freq, angle,
    phase)."""
    freq, angle, phase = params[..., 0], params[..., 1], params[..., 2]
    along = np.cos(angle) * xx + np.sin(angle) * yy
    across = -np.sin(angle) * xx + np.cos(angle) * yy
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (freq * along + phase))
    checker = ((np.floor(freq * along + phase) + np.floor(freq * across)) % 2).astype("float32")
    cell_u = (freq * along + phase) % 1.0 - 0.5
    cell_v = (freq * across) % 1.0 - 0.5
    dots = (cell_u**2 + cell_v**2 < 0.09).astype("float32")
    radial = np.clip(np.sqrt((xx - 0.5) ** 2 + (yy - 0.5) ** 2) * freq / 3 + phase * 0.3, 0, 1)
    flat = np.ones_like(along)
    fields = np.stack([flat, stripes, checker, dots, radial])  # order of TEXTURES
    return np.take_along_axis(fields, texture[None], 0)[0].astype("float32")


def synthetic_batches(
    dataset: SyntheticShapes,
    batch_size: int,
    start: int = 0,
    num_samples: int | None = None,
    prefetch: int = 4,
    workers: int = 2,
) -> Iterator[dict[str, np.ndarray]]:
    """Batches {"images", "masks"} of NumPy arrays, for any backend (no TensorFlow needed).

    The same samples in the same order as `synthetic_tf_dataset`: indices from `start` (to
    `start + num_samples`, or forever; a last partial batch only when `num_samples` is given).
    `workers` background threads generate up to `prefetch` batches ahead (0: none, everything
    in the calling thread), so generation overlaps the training step.

    Examples:
        >>> batches = synthetic_batches(SyntheticShapes(64, seed=0), batch_size=16)
        >>> next(batches)["images"].shape
        (16, 64, 64, 3)
        >>> trainer.fit(((b,) for b in batches), epochs=1, steps_per_epoch=100)  # any backend
    """
    start, stop = _stream_bounds(batch_size, start, num_samples)
    prefetch = require_non_negative_int("prefetch", prefetch)
    workers = require_positive_int("workers", workers)

    def generate(first: int) -> dict[str, np.ndarray]:
        last = first + batch_size if stop is None else min(first + batch_size, stop)
        values = dataset.batch(np.arange(first, last))
        return {"images": values["images"], "masks": values["masks"]}

    firsts = itertools.count(start, batch_size)
    if stop is not None:
        firsts = itertools.takewhile(lambda first: first < stop, firsts)
    if prefetch == 0:
        return map(generate, firsts)
    return _prefetched(generate, firsts, prefetch, workers)


def _stream_bounds(batch_size, start, num_samples) -> tuple[int, int | None]:
    """Checked (start, stop) sample indices of a batch stream (stop None: endless)."""
    require_positive_int("batch_size", batch_size)
    start = require_non_negative_int("start", start)
    if num_samples is None:
        return start, None
    return start, start + require_positive_int("num_samples", num_samples)


def _prefetched(function, arguments: Iterator, ahead: int, workers: int) -> Iterator:
    """`map(function, arguments)` computed by `workers` threads, up to `ahead` items ahead, in
    order."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        pending = collections.deque(
            pool.submit(function, a) for a in itertools.islice(arguments, ahead)
        )
        while pending:
            result = pending.popleft().result()
            pending.extend(pool.submit(function, a) for a in itertools.islice(arguments, 1))
            yield result


def synthetic_tf_dataset(
    dataset: SyntheticShapes,
    batch_size: int,
    start: int = 0,
    num_samples: int | None = None,
    factors: bool = False,
):
    """A `tf.data.Dataset` of batches {"images", "masks"} (and the factors if asked).

    Sample indices run from `start` (to `start + num_samples`, or forever), so a resumed run
    continues with the samples it had not seen. Batches are generated in parallel (each batch is
    a vectorized NumPy call) and prefetched.
    """
    import tensorflow as tf

    start, stop = _stream_bounds(batch_size, start, num_samples)
    indices = (
        tf.data.Dataset.range(start, stop) if stop is not None else tf.data.Dataset.counter(start)
    )
    size, c = dataset.image_size, dataset.num_classes
    keys = ("images", "masks", "palette", "texture", "params") if factors else ("images", "masks")
    dtypes = {
        "images": tf.float32,
        "masks": tf.int32,
        "palette": tf.int32,
        "texture": tf.int32,
        "params": tf.float32,
    }
    shapes = {
        "images": (size, size, 3),
        "masks": (size, size),
        "palette": (c,),
        "texture": (c,),
        "params": (c, 3),
    }

    def generate(batch_indices):
        values = dataset.batch(batch_indices)
        return tuple(values[k] for k in keys)

    def to_dict(batch_indices):
        outputs = tf.numpy_function(generate, [batch_indices], [dtypes[k] for k in keys])
        return {
            k: tf.ensure_shape(o, (None, *shapes[k])) for k, o in zip(keys, outputs, strict=True)
        }

    return (
        indices.batch(batch_size, drop_remainder=num_samples is None)
        .map(to_dict, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def export_deepfashion_layout(
    dataset: SyntheticShapes,
    directory,
    num_train: int,
    num_test: int = 0,
    overwrite: bool = False,
) -> None:
    """Writes samples in the official SMIS DeepFashion layout: `train/*.jpg` images and
    `cihp_train_mask/*.png` label maps (and `test`, `cihp_test_mask`), so the real-data loader
    reads the synthetic benchmark too. Images are JPEG (quality 95), label maps 8-bit PNG."""
    from pathlib import Path

    from PIL import Image

    from smis_layers.data.datasets import dataset_facts

    root = Path(directory)
    layout = dataset_facts("deepfashion").layout
    for phase, start, count in (("train", 0, num_train), ("test", num_train, num_test)):
        if count == 0:
            continue
        folder = layout.splits[phase]
        image_dir = root / layout.image_dir.format(split=folder)
        mask_dir = root / layout.label_dir.format(split=folder)
        for folder in (image_dir, mask_dir):
            if folder.exists() and any(folder.iterdir()) and not overwrite:
                raise FileExistsError(f"{folder} is not empty; pass overwrite=True to replace")
            folder.mkdir(parents=True, exist_ok=True)
        for offset in range(0, count, 64):
            indices = np.arange(start + offset, start + min(offset + 64, count))
            batch = dataset.batch(indices)
            for i, image, mask in zip(indices, batch["images"], batch["masks"], strict=True):
                pixels = np.round((image + 1.0) * 127.5).clip(0, 255).astype("uint8")
                Image.fromarray(pixels).save(image_dir / f"{i:06d}.jpg", quality=95)
                Image.fromarray(mask.astype("uint8")).save(mask_dir / f"{i:06d}.png")
