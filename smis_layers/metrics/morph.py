"""Do morphs between two real images' codes stay images? The domain FID along the morph.

`applications.morph` draws a label map with codes on the line from `z_a` to `z_b`. Its ends are
reconstructions (the encoder's means of two real images); its middle frames are codes no image
was encoded to. If the codes of real images sit on a thin, curved set the decoder was only
trained on, the middle frames leave the image domain: their FID against real images grows
compared with the ends'. `morph_fid_ratio` measures the FID of every frame position of a set of
morphs against the same real reference and reports the middle over the ends.

The codes of GroupDNet and its baselines are spatial, (h, w, 8C) cells laid out like the label
map, so both ends of a morph must be encodings on the same label map: image B is another real
image of the same layout (on the synthetic benchmark, the layout rendered with other appearance
factors, `donor_appearance`, as the appearance-swap score does). Encoding another scene with its
own labels would put its codes in cells that belong to other regions of A's labels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from smis_layers.metrics.batching import map_batches
from smis_layers.metrics.fid import feature_statistics, frechet_distance
from smis_layers.utils.validation import require_positive_int


def morph_fid_ratio(
    model,
    features: Callable,
    images_a,
    labels,
    images_b,
    reference,
    steps: int = 5,
    batch_size: int = 16,
) -> dict:
    """The domain FID of morphs' middle frames over that of their end frames.

    For each i, `images_a[i]` and `images_b[i]` (two real images of the label map `labels[i]`)
    are encoded with `labels[i]` (`model.encode`, the means are the codes) and morphed with
    `applications.morph(model, labels[i], z_a, z_b, steps)`: frame k has the codes
    z_a + t_k (z_b - z_a), t_k = k / (steps - 1). For every frame position k, the Fréchet
    distance between `features` of the N frames k and of the real `reference` images is
    computed, so every FID compares N generated images with the same reference (the FID's
    small-sample bias is the same at every position). The end frames (t = 0 and 1) are the
    reconstructions of A and B; the middle frame is t = 1/2 (with an even `steps`, the two
    frames around it, their FIDs averaged). Deterministic: no code is drawn.

    Args:
        model: a generator with GroupDNet's API (`encode`, `generate`, `latent_shape`).
        features: images (B, H, W, 3) in [-1, 1] -> (B, D) features, e.g.
            `ShapesSegmenter.features` for the domain FID of `evaluate_presets`.
        images_a: (N, H, W, 3) real images in [-1, 1], N >= 2.
        labels: (N, H, W) their integer label maps, shared by `images_b`.
        images_b: (N, H, W, 3) other real images of the same label maps.
        reference: (M, H, W, 3) real images the frames are compared with (M >= 2); preferably
            not `images_a` or `images_b`, whose reconstructions would be favoured.
        steps: frames per morph (>= 3, so that there is a middle).
        batch_size: images per `encode` and `features` call.

    Returns:
        dict with `t` (steps,), `fid_per_step` (steps,), `fid_start`, `fid_end`, `fid_ends`
        (their mean), `fid_middle` and `ratio` = `fid_middle / fid_ends` (the target is at most
        1.5), plus `num_morphs`.

    Examples:
        >>> seg = from_preset("segmenter_shapes64")
        >>> result = morph_fid_ratio(model, seg.features, a, labels, b, reference, steps=5)
        >>> result["fid_ends"], result["fid_middle"], result["ratio"]
    """
    from smis_layers.applications import morph

    if not callable(features):
        raise ValueError(
            f"`features` must be callable (images -> (B, D) features); received "
            f"{type(features).__name__}"
        )
    images_a, images_b = np.asarray(images_a, "float32"), np.asarray(images_b, "float32")
    labels, reference = np.asarray(labels), np.asarray(reference, "float32")
    if labels.ndim != 3 or images_a.shape != (*labels.shape, 3):
        raise ValueError(
            f"`images_a` must be (N, H, W, 3) matching `labels` (N, H, W); received "
            f"{images_a.shape} and {labels.shape}"
        )
    if images_b.shape != images_a.shape:
        raise ValueError(
            f"`images_b` must have `images_a`'s shape {images_a.shape} (same label maps); "
            f"received {images_b.shape}"
        )
    if len(labels) < 2:
        raise ValueError(f"`labels` must hold at least 2 label maps (FID); received {len(labels)}")
    if reference.ndim != 4 or reference.shape[1:] != images_a.shape[1:] or len(reference) < 2:
        raise ValueError(
            f"`reference` must be (M, {', '.join(map(str, images_a.shape[1:]))}) with M >= 2; "
            f"received {reference.shape}"
        )
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 3:
        raise ValueError(f"`steps` must be an int >= 3 (a middle frame); received {steps!r}")
    batch_size = require_positive_int("batch_size", batch_size)

    def encode(images, m):
        return model.encode(images, m)[0]

    codes_a = map_batches(encode, images_a, labels, batch_size=batch_size)
    codes_b = map_batches(encode, images_b, labels, batch_size=batch_size)
    frames = np.stack(
        [
            np.asarray(morph(model, scene, z_a, z_b, steps=int(steps)))
            for scene, z_a, z_b in zip(labels, codes_a, codes_b, strict=True)
        ],
        axis=1,
    )  # (steps, N, H, W, 3)
    real = feature_statistics(map_batches(features, reference, batch_size=batch_size))
    fids = np.asarray(
        [
            frechet_distance(
                *real, *feature_statistics(map_batches(features, f, batch_size=batch_size))
            )
            for f in frames
        ]
    )
    middle = [steps // 2] if steps % 2 else [steps // 2 - 1, steps // 2]
    fid_ends = float((fids[0] + fids[-1]) / 2)
    fid_middle = float(fids[middle].mean())
    # Ends that match the reference exactly (FID 0): only an exact middle keeps the ratio at 1.
    exact_ratio = 1.0 if fid_middle <= 0 else float("inf")
    ratio = fid_middle / fid_ends if fid_ends > 0 else exact_ratio
    return {
        "t": np.linspace(0.0, 1.0, int(steps)),
        "fid_per_step": fids,
        "fid_start": float(fids[0]),
        "fid_end": float(fids[-1]),
        "fid_ends": fid_ends,
        "fid_middle": fid_middle,
        "ratio": ratio,
        "num_morphs": len(labels),
    }
