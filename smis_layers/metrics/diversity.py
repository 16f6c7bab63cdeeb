"""mCSD, mOCD and overall diversity of a semantically multi-modal generator.

The model API used (GroupDNet's; the baselines and any duck-typed model with these methods
work): `num_classes`, `sample_z(batch, seed)`, `class_code(z, c)`, `with_class_code(z, c, code)`
and `generate(labels, z=z)` with labels as (B, H, W) integer label maps.
"""

from __future__ import annotations

import numpy as np

from smis_layers.metrics.distances import ImageDistance, masked_l1_distance
from smis_layers.utils.deprecation import renamed_keywords
from smis_layers.utils.validation import require_positive_int


def _seeds(seed: int, index: int, count: int) -> list[int]:
    """`count` int seeds derived from (seed, index) only."""
    rng = np.random.default_rng([int(seed), int(index), 0x5EED])
    return [int(s) for s in rng.integers(0, 2**31 - 1, count)]


def _check_labels(labels, num_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 4 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.ndim != 3:
        raise ValueError(f"`labels` must be (B, H, W) label maps; received shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"`labels` values must be in [0, {num_classes}); received labels in "
            f"[{labels.min()}, {labels.max()}]"
        )
    return labels.astype("int32")


def _generate(model, labels, z, batch_size: int) -> np.ndarray:
    return np.concatenate(
        [
            np.asarray(model.generate(labels[i : i + batch_size], z=z[i : i + batch_size]))
            for i in range(0, len(z), batch_size)
        ]
    )


def pairwise_mean_distance(
    distance: ImageDistance, images, region=None, batch_size: int = 32
) -> float:
    """Mean distance over all n(n-1)/2 pairs of `images` (n, H, W, 3), inside `region`
    (H, W) if given. NaN when the region is empty."""
    return pairwise_mean_distances(distance, images, [region], batch_size)[0]


def pairwise_mean_distances(
    distance: ImageDistance, images, regions, batch_size: int = 32
) -> list[float]:
    """`pairwise_mean_distance` for several regions ((H, W) arrays or None), embedding the
    images once."""
    images = np.asarray(images, "float32")
    n = len(images)
    if n < 2:
        raise ValueError(f"`images` must hold at least 2 images; received {n}")
    embedded = distance.embed_batched(images, batch_size)
    first, second = np.triu_indices(n, k=1)
    results = []
    for region in regions:
        values = []
        for start in range(0, len(first), batch_size):
            i, j = first[start : start + batch_size], second[start : start + batch_size]
            weights = None if region is None else np.broadcast_to(region, (len(i), *region.shape))
            values.append(
                distance.compare([e[i] for e in embedded], [e[j] for e in embedded], weights)
            )
        results.append(float(np.mean(np.concatenate(values))))
    return results


def as_distances(distance) -> tuple[dict[str, ImageDistance], bool]:
    """({name: distance}, whether a single distance was given) of a distance, a dict of them or
    None (`masked_l1_distance()`)."""
    if distance is None:
        return {"l1": masked_l1_distance()}, True
    if isinstance(distance, dict):
        if not distance or not all(isinstance(d, ImageDistance) for d in distance.values()):
            raise ValueError(
                f"`distance` must be an ImageDistance or a non-empty dict of them; received "
                f"{distance!r}"
            )
        return dict(distance), False
    if not isinstance(distance, ImageDistance):
        raise ValueError(
            f"`distance` must be an ImageDistance (e.g. masked_l1_distance()) or a dict of them; "
            f"received {distance!r}"
        )
    return {distance.name: distance}, True


def _progbar(total: int, progress: bool):
    if not progress:
        return None
    import keras

    return keras.utils.Progbar(total, unit_name="image")


@renamed_keywords(masks="labels")
def class_specific_diversity(
    model,
    labels,
    distance: ImageDistance | dict[str, ImageDistance] | None = None,
    num_samples: int = 10,
    seed: int = 0,
    classes=None,
    min_pixels: int = 1,
    batch_size: int = 16,
    progress: bool = False,
) -> dict:
    """mCSD and mOCD (Zhu et al. 2020, Sec. 4.1): class-specific and other-classes diversity.

    For every image and every class c present in its label map (at least `min_pixels` pixels), one
    base code is drawn and `num_samples` codes that differ from it only in class c's code
    (`model.with_class_code(base, c, new_code)`); the generated images are compared pairwise:

    - CSD_c = mean pairwise distance inside class c's region (higher: c is more diverse);
    - OCD_c = mean pairwise distance in the other classes' region (lower: resampling c leaves
      the rest unchanged; 0 for an exactly class-isolated generator).

    Each class's CSD and OCD are averaged over the images containing it; mCSD and mOCD are the
    means over the classes (class-balanced, as mIoU). Images where class c covers everything
    contribute no OCD_c. The paper uses LPIPS as the distance; any `ImageDistance` works.

    Args:
        model: the generator (see the module docstring for the API used).
        labels: (B, H, W) label maps.
        distance: an `ImageDistance` (default `masked_l1_distance()`), or a dict
            {name: ImageDistance} to score the same generated images with several distances.
        num_samples: n, the images generated per (image, class).
        seed: all codes are derived from (seed, image index): the result is deterministic.
        classes: restrict to these class indices (default: all).
        min_pixels: smallest region a class needs to be evaluated in an image.
        batch_size: images per `generate` call.
        progress: show a progress bar over the images.

    Returns:
        dict: "mcsd", "mocd" (floats), "csd_per_class", "ocd_per_class" ((C,) arrays, NaN for
        classes never evaluated), "evaluations" (number of (image, class) pairs) and
        "num_samples"; for a dict of distances, {name: that dict}.

    Examples:
        >>> scores = class_specific_diversity(model, labels, masked_l1_distance(), num_samples=10)
        >>> scores["mcsd"], scores["mocd"]

    Reference:
        Zhu, Xu, You, Bai, "Semantically Multi-modal Image Synthesis", CVPR 2020.
    """
    distances, single = as_distances(distance)
    num_samples = require_positive_int("num_samples", num_samples)
    if num_samples < 2:
        raise ValueError(f"`num_samples` must be >= 2 (pairs); received {num_samples}")
    require_positive_int("min_pixels", min_pixels)
    c_total = int(model.num_classes)
    labels = _check_labels(labels, c_total)
    wanted = set(range(c_total)) if classes is None else {int(c) for c in classes}
    csd = {name: [[] for _ in range(c_total)] for name in distances}
    ocd = {name: [[] for _ in range(c_total)] for name in distances}
    bar = _progbar(len(labels), progress)
    for index, label_map in enumerate(labels):
        counts = np.bincount(label_map.ravel(), minlength=c_total)
        present = [c for c in range(c_total) if counts[c] >= min_pixels and c in wanted]
        if present:
            seeds = _seeds(seed, index, 1 + len(present))
            base = np.asarray(model.sample_z(1, seeds[0]))
            codes = []
            for c, code_seed in zip(present, seeds[1:], strict=True):
                new = model.class_code(model.sample_z(num_samples, code_seed), c)
                codes.append(model.with_class_code(np.repeat(base, num_samples, axis=0), c, new))
            z = np.concatenate(codes)
            images = _generate(model, np.repeat(label_map[None], len(z), axis=0), z, batch_size)
            for k, c in enumerate(present):
                group = images[k * num_samples : (k + 1) * num_samples]
                inside = (label_map == c).astype("float32")
                has_outside = counts[c] < label_map.size
                regions = [inside, 1 - inside] if has_outside else [inside]
                for name, dist in distances.items():
                    values = pairwise_mean_distances(dist, group, regions, batch_size)
                    csd[name][c].append(values[0])
                    if has_outside:
                        ocd[name][c].append(values[1])
        if bar is not None:
            bar.update(index + 1)
    results = {name: _diversity_summary(csd[name], ocd[name], num_samples) for name in distances}
    return next(iter(results.values())) if single else results


def _diversity_summary(csd, ocd, num_samples: int) -> dict:
    csd_per_class = np.array([np.mean(v) if v else np.nan for v in csd])
    ocd_per_class = np.array([np.mean(v) if v else np.nan for v in ocd])
    nan = float("nan")
    return {
        "mcsd": float(np.nanmean(csd_per_class)) if any(csd) else nan,
        "mocd": float(np.nanmean(ocd_per_class)) if any(ocd) else nan,
        "csd_per_class": csd_per_class,
        "ocd_per_class": ocd_per_class,
        "evaluations": int(sum(len(v) for v in csd)),
        "num_samples": num_samples,
    }


@renamed_keywords(masks="labels")
def overall_diversity(
    model,
    labels,
    distance: ImageDistance | dict[str, ImageDistance] | None = None,
    num_samples: int = 10,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = False,
) -> dict:
    """Overall diversity ("LPIPS diversity" with LPIPS as the distance): for every label map,
    `num_samples` images from fully resampled codes, mean pairwise distance of the whole
    images; averaged over the labels.

    Args:
        model: the generator (`sample_z`, `generate`).
        labels: (B, H, W) label maps.
        distance: an `ImageDistance` (default `masked_l1_distance()`) or a dict of them.
        num_samples: images per label map (>= 2).
        seed: codes are derived from (seed, label map index): deterministic.
        batch_size / progress: as in `class_specific_diversity`.

    Returns:
        dict: "diversity" (float) and "per_image" ((B,) array); for a dict of distances,
        {name: that dict}.

    Examples:
        >>> overall_diversity(model, labels, masked_lpips_distance(lpips))["diversity"]

    Reference:
        Zhu et al., "Toward Multimodal Image-to-Image Translation", NeurIPS 2017 (the LPIPS
        diversity score, used by the SMIS paper).
    """
    distances, single = as_distances(distance)
    num_samples = require_positive_int("num_samples", num_samples)
    if num_samples < 2:
        raise ValueError(f"`num_samples` must be >= 2 (pairs); received {num_samples}")
    labels = _check_labels(labels, int(model.num_classes))
    values = {name: [] for name in distances}
    bar = _progbar(len(labels), progress)
    for index, label_map in enumerate(labels):
        z = np.asarray(model.sample_z(num_samples, _seeds(seed, index, 1)[0]))
        images = _generate(model, np.repeat(label_map[None], num_samples, axis=0), z, batch_size)
        for name, dist in distances.items():
            values[name].append(pairwise_mean_distance(dist, images, None, batch_size))
        if bar is not None:
            bar.update(index + 1)
    results = {
        name: {"diversity": float(np.mean(v)), "per_image": np.array(v)}
        for name, v in values.items()
    }
    return next(iter(results.values())) if single else results
