"""Does each class's code control its region, and only its region? (The paper's central claim.)

Two measures, per class, on scenes where the class covers at least `min_pixels` pixels:

- `class_code_control`: redraw only that class's code a few times (`applications.resample_class`,
  the other classes keeping one fixed draw). *Usage* is the standard deviation of the region's
  mean colour over the redraws (0: the class is drawn the same whatever its code); *isolation*
  is the per-pixel colour spread inside the region over that outside it.
- `reconstruction_colour_errors`: encode real images, generate from the means, and compare each
  class region's mean colour with the real one.

`scripts/class_code_usage.py` prints both for presets; the zoo's flagship test holds every class
to them.
"""

from __future__ import annotations

import numpy as np

from smis_layers.utils.validation import require_positive_int


def class_code_control(
    model,
    labels,
    class_index: int,
    prior: str = "auto",
    z=None,
    num_redraws: int = 4,
    seed: int = 1,
    min_pixels: int = 64,
) -> dict[str, np.ndarray]:
    """Usage and isolation of one class's code, per scene.

    Args:
        model: a generator with class-owned codes (GroupDNet's API).
        labels: (B, H, W) integer label maps, one scene each.
        class_index: the class whose code is redrawn.
        prior: the code prior of the redraws (`"auto"`, `"fitted"` or `"standard"`).
        z: one code (h, w, latent channels) for the other classes; default a draw with `seed`.
        num_redraws: codes drawn for the class in each scene (at least 2).
        seed: seed of the redraws.
        min_pixels: scenes where the class covers fewer pixels are skipped.

    Returns:
        dict with `usage` and `isolation`, each (S,) over the S scenes kept (empty if none).

    Examples:
        >>> control = class_code_control(model, labels, class_index=2)
        >>> control["usage"].mean(), np.median(control["isolation"])
    """
    from smis_layers.applications import resample_class

    if num_redraws < 2:
        raise ValueError(f"`num_redraws` must be at least 2; received {num_redraws}")
    require_positive_int("min_pixels", min_pixels)
    usage, isolation = [], []
    for scene in np.asarray(labels):
        region = scene == class_index
        if region.sum() < min_pixels:
            continue
        images = resample_class(
            model, scene, class_index, n=num_redraws, seed=seed, z=z, prior=prior
        )
        usage.append(float(images[:, region].mean(axis=1).std(axis=0).mean()))
        per_pixel = images.std(axis=0).mean(axis=-1)
        isolation.append(float(per_pixel[region].mean() / max(per_pixel[~region].mean(), 1e-6)))
    return {"usage": np.asarray(usage), "isolation": np.asarray(isolation)}


def reconstruction_colour_errors(model, images, labels, min_pixels: int = 64) -> np.ndarray:
    """Per class: the mean-colour error of reconstructions (`encode`, then `generate` from the
    means), |reconstructed - real| mean colour of the class's region averaged over RGB and over
    the scenes where the class covers at least `min_pixels` pixels.

    Args:
        model: a generator with an encoder (GroupDNet's API).
        images: (B, H, W, 3) real images in [-1, 1].
        labels: (B, H, W) their integer label maps.
        min_pixels: smaller regions are skipped.

    Returns:
        (C,) errors, NaN for a class that never covers `min_pixels` pixels.

    Examples:
        >>> reconstruction_colour_errors(model, batch["images"], batch["masks"]).round(3)
    """
    require_positive_int("min_pixels", min_pixels)
    images, labels = np.asarray(images), np.asarray(labels)
    if images.shape[:3] != labels.shape:
        raise ValueError(
            f"`images` (B, H, W, 3) and `labels` (B, H, W) must match; received "
            f"{images.shape} and {labels.shape}"
        )
    mu, _ = model.encode(images, labels)
    rebuilt = np.asarray(model.generate(labels, z=mu))
    errors: list[list[float]] = [[] for _ in range(model.num_classes)]
    for image, rec, scene in zip(images, rebuilt, labels, strict=True):
        for c in np.unique(scene):
            region = scene == c
            if region.sum() >= min_pixels:
                gap = np.abs(image[region].mean(axis=0) - rec[region].mean(axis=0))
                errors[int(c)].append(float(gap.mean()))
    return np.asarray([np.mean(e) if e else np.nan for e in errors])
