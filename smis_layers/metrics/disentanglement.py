"""Disentanglement on the synthetic benchmark: the appearance-swap score.

The synthetic benchmark renders any layout with any per-class appearance factors, so the exact
image a perfect SMIS model should produce after an appearance transfer is known: swap class c's
code from image B (same layout, other appearance) into image A's codes, and the result should be
A everywhere except in class c's region, which should look like B there.
"""

from __future__ import annotations

import numpy as np

from smis_layers.data.synthetic import TEXTURES, SyntheticShapes
from smis_layers.metrics.batching import map_batches
from smis_layers.metrics.distances import ImageDistance
from smis_layers.metrics.diversity import as_distances
from smis_layers.utils.validation import require_positive_int


def donor_appearance(dataset: SyntheticShapes, palette, texture, params, seed: int):
    """Second appearance factors for the same layouts: every class gets another palette (when
    the dataset has more than one; otherwise another texture family) and a freshly drawn texture
    family and parameters. Deterministic given `seed`."""
    rng = np.random.default_rng([int(seed), 0xD0])
    palette, texture = np.asarray(palette), np.asarray(texture)
    shape = palette.shape
    num_textures = len(TEXTURES)
    if dataset.num_palettes > 1:
        new_palette = (
            palette + rng.integers(1, dataset.num_palettes, shape)
        ) % dataset.num_palettes
        new_texture = rng.integers(0, num_textures, shape)
    else:
        new_palette = palette.copy()
        new_texture = (texture + rng.integers(1, num_textures, shape)) % num_textures
    new_params = np.stack(
        [rng.uniform(4, 10, shape), rng.uniform(0, np.pi, shape), rng.uniform(0, 1, shape)], -1
    )
    return (
        new_palette.astype("int32"),
        new_texture.astype("int32"),
        new_params.astype("float32"),
    )


def appearance_swap_score(
    model,
    dataset: SyntheticShapes,
    n_images: int,
    seed: int = 0,
    distance: ImageDistance | dict[str, ImageDistance] | None = None,
    min_pixels: int = 16,
    start: int = 0,
    batch_size: int = 16,
    progress: bool = False,
) -> dict:
    """How exactly swapping one class's code transfers that class's appearance, and only it.

    For samples `start .. start + n_images - 1` of `dataset` (image A, label map M, appearance
    factors F_A), a second rendering B = `dataset.render(M, F_B)` of the same layout with other
    factors (`donor_appearance`) is made. Both are encoded (`mu, logvar = model.encode(images,
    labels)`; the means are the codes). For every class c of M with at least `min_pixels` pixels,
    class c's code of A is replaced by B's and the image generated (`swap`). Its ground truth T
    is `dataset.render(M, F_A with class c's factors from F_B)`: A outside c, B inside c.
    With d the (region-restricted) distance:

    - `region_transfer` = mean over (image, class) of d_c(swap, A) / (d_c(swap, A) +
      d_c(swap, T)), d_c inside class c: 1 when class c took the donor's appearance exactly
      (swap = T there), 0 when it kept A's, 0.5 when it is equally far from both. Reconstruction
      error affects both terms alike.
    - `leakage` = mean d_out(swap, R) / mean d_c(swap, R) with R the reconstruction of A from its
      own codes and d_out outside class c: how much the other regions move per unit of change
      inside c (0 for a class-isolated generator; NaN when nothing changes inside).
    - `target_distance` = mean d_c(swap, T) (lower is better), `source_distance` = mean
      d_c(swap, A), `inside_change` = mean d_c(swap, R), `outside_change` = mean d_out(swap, R),
      `reconstruction_distance` = mean d(R, A) over whole images, `appearance_gap` = mean
      d_c(A, T) (the distance a perfect transfer covers), `pairs` = number of (image, class).

    Args:
        model: `encode(images, labels)`, `generate(labels, z=z)`, `class_code`, `with_class_code`,
            `num_classes` (GroupDNet's API).
        dataset: the `SyntheticShapes` benchmark the model was trained on (same classes, size).
        n_images: images A.
        seed: seed of the donor appearances (the dataset's own seed fixes the layouts).
        distance: an `ImageDistance` (default `masked_l1_distance()`), or a dict of them
            (the same swaps scored with each).
        min_pixels: smallest class region evaluated.
        start: first sample index.
        batch_size: images per encode / generate call.
        progress: progress bar over the images.

    Returns:
        dict of the numbers above (floats; `pairs` int); for a dict of distances,
        {name: that dict}.

    Examples:
        >>> scores = appearance_swap_score(model, SyntheticShapes(seed=1000), n_images=32, seed=0)
        >>> scores["region_transfer"], scores["leakage"]
    """
    require_positive_int("n_images", n_images)
    require_positive_int("min_pixels", min_pixels)
    if not isinstance(dataset, SyntheticShapes):
        raise ValueError(f"`dataset` must be a SyntheticShapes; received {type(dataset).__name__}")
    if dataset.num_classes != model.num_classes:
        raise ValueError(
            f"`dataset` has {dataset.num_classes} classes; the model has {model.num_classes}"
        )
    distances, single = as_distances(distance)
    batch = dataset.batch(np.arange(start, start + n_images))
    labels, images_a = batch["masks"], batch["images"]
    factors_a = (batch["palette"], batch["texture"], batch["params"])
    factors_b = donor_appearance(dataset, *factors_a, seed=seed)
    images_b = dataset.render(labels, *factors_b)

    def encode(images, m):
        return model.encode(images, m)[0]

    mu_a = map_batches(encode, images_a, labels, batch_size=batch_size)
    mu_b = map_batches(encode, images_b, labels, batch_size=batch_size)
    reconstruction = map_batches(
        lambda m, z: model.generate(m, z=z), labels, mu_a, batch_size=batch_size
    )

    pairs = []
    for i, label_map in enumerate(labels):
        counts = np.bincount(label_map.ravel(), minlength=model.num_classes)
        pairs += [(i, c) for c in range(model.num_classes) if counts[c] >= min_pixels]
    if not pairs:
        raise ValueError(
            f"No class region of the {n_images} label maps have >= {min_pixels} pixels"
        )
    index = np.array([i for i, _ in pairs])
    classes = np.array([c for _, c in pairs])
    z = np.concatenate(
        [
            model.with_class_code(mu_a[i : i + 1], c, model.class_code(mu_b[i : i + 1], c))
            for i, c in pairs
        ]
    )
    pair_labels = labels[index]
    bar = None
    if progress:
        import keras

        bar = keras.utils.Progbar(len(z), unit_name="swap")
    swapped = []
    for s in range(0, len(z), batch_size):
        swapped.append(
            np.asarray(model.generate(pair_labels[s : s + batch_size], z=z[s : s + batch_size]))
        )
        if bar is not None:
            bar.update(min(s + batch_size, len(z)))
    swapped = np.concatenate(swapped)

    target_factors = [f[index].copy() for f in factors_a]
    for f_target, f_b in zip(target_factors, factors_b, strict=True):
        f_target[np.arange(len(pairs)), classes] = f_b[index, classes]
    target = dataset.render(pair_labels, *target_factors)

    inside = (pair_labels == classes[:, None, None]).astype("float32")

    results = {
        name: _swap_summary(
            dist, swapped, target, index, reconstruction, images_a, inside, batch_size
        )
        for name, dist in distances.items()
    }
    for result in results.values():
        result["pairs"] = len(pairs)
    return next(iter(results.values())) if single else results


def _swap_summary(
    distance, swapped, target, index, reconstruction, images_a, inside, batch_size
) -> dict:
    """The swap numbers for one distance; every image set is embedded once."""
    outside = 1.0 - inside
    e_swap = distance.embed_batched(swapped, batch_size)
    e_target = distance.embed_batched(target, batch_size)
    e_real = distance.embed_batched(images_a, batch_size)
    e_recon = distance.embed_batched(reconstruction, batch_size)
    e_source = [e[index] for e in e_real]
    e_recon_pairs = [e[index] for e in e_recon]

    def d(a, b, region=None):
        values = []
        for s in range(0, len(a[0]), batch_size):
            part = slice(s, s + batch_size)
            values.append(
                distance.compare(
                    [e[part] for e in a],
                    [e[part] for e in b],
                    None if region is None else region[part],
                )
            )
        return np.concatenate(values)

    d_target = d(e_swap, e_target, inside)
    d_source = d(e_swap, e_source, inside)
    change_in = d(e_swap, e_recon_pairs, inside)
    change_out = d(e_swap, e_recon_pairs, outside)
    gap = d(e_source, e_target, inside)
    reconstruction_distance = d(e_recon, e_real)
    with np.errstate(invalid="ignore", divide="ignore"):
        transfer = d_source / (d_source + d_target)
        inside_mean = float(np.nanmean(change_in))
        leakage = float(np.nanmean(change_out)) / inside_mean if inside_mean > 0 else np.nan
    return {
        "region_transfer": float(np.nanmean(transfer)),
        "leakage": float(leakage),
        "target_distance": float(np.mean(d_target)),
        "source_distance": float(np.mean(d_source)),
        "inside_change": inside_mean,
        "outside_change": float(np.nanmean(change_out)),
        "reconstruction_distance": float(np.mean(reconstruction_distance)),
        "appearance_gap": float(np.mean(gap)),
    }
