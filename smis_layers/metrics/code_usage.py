"""How much of an image the encoder passes to the decoder: the codes' information in nats.

A VAE-GAN's KL term prices every nat the encoder puts into a code. When it wins, the posterior
collapses onto the prior: `encode` returns codes close to N(0, I), reconstructions fall back to
what the label map alone suggests, and appearance transfer has nothing to transfer. The KL of the
posterior q(z | x) to the prior, summed over a class's channels, is the number of nats that
class's code carries about the image (an upper bound on the mutual information).

With `region_colour_code=True` (or `region_texture_code=True`) the first channels of every
class's code are not the encoder's: they hold the region's mean colour (and texture wave) with a
fixed, tiny variance, so their KL (about 4.5 nats per channel and latent cell whatever the
image) says nothing about what the encoder passes on.
`code_information` leaves them out and counts only the encoder's channels.
"""

from __future__ import annotations

import numpy as np

from smis_layers.utils.deprecation import renamed_keywords
from smis_layers.utils.validation import require_positive_int


def gaussian_kl_nats(mu, logvar) -> np.ndarray:
    """Elementwise KL(N(mu, exp(logvar)) || N(0, 1)) in nats (the training loss's terms).

    Examples:
        >>> gaussian_kl_nats(np.zeros(3), np.zeros(3))  # the prior itself: 0 nats
        array([0., 0., 0.])
    """
    mu, logvar = np.asarray(mu, "float64"), np.asarray(logvar, "float64")
    return -0.5 * (1.0 + logvar - np.square(mu) - np.exp(logvar))


@renamed_keywords(masks="labels")
def code_information(model, images, labels, batch_size: int = 16) -> dict:
    """Nats the encoder's codes carry per image, in all and per class.

    Args:
        model: a generator with GroupDNet's API (`encode`, `num_classes`, `class_channels`).
        images: (B, H, W, 3) images in [-1, 1].
        labels: (B, H, W) integer label maps.
        batch_size: images per `encode` call.

    Returns:
        dict with `nats_per_image` (mean over images of the KL summed over the whole code),
        `nats_per_class` (C,) (mean over images of the KL of each class's channels; for a
        model with one global code, VSPADE, the channels only nominally belong to a class) and
        `nats_present_class` (C,) (the same, averaged only over the images in which the class
        occurs; NaN for a class that occurs in none). The channels measured from the image
        (`region_colour_code`, `region_texture_code`: `measured_code_channels` of each class)
        are left out of all three.

    Examples:
        >>> info = code_information(model, images, labels)
        >>> info["nats_per_image"], info["nats_per_class"].round(2)
    """
    require_positive_int("batch_size", batch_size)
    images, labels = np.asarray(images), np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(
            f"`images` and `labels` must hold as many samples; received {len(images)} images "
            f"and {len(labels)} labels"
        )
    kl = np.concatenate(
        [
            gaussian_kl_nats(*model.encode(images[i : i + batch_size], labels[i : i + batch_size]))
            for i in range(0, len(images), batch_size)
        ]
    )
    measured = getattr(model, "measured_code_channels", 0)
    if measured:
        kl = kl.copy()
        for c in range(model.num_classes):
            start = model.class_channels(c)[0]
            kl[..., start : start + measured] = 0.0
    per_class = np.stack(
        [
            kl[..., slice(*model.class_channels(c))].reshape(len(kl), -1).sum(axis=1)
            for c in range(model.num_classes)
        ],
        axis=1,
    )  # (B, C)
    present = np.stack(
        [(labels == c).reshape(len(labels), -1).any(axis=1) for c in range(model.num_classes)], 1
    )
    with np.errstate(invalid="ignore"):
        present_mean = (per_class * present).sum(0) / present.sum(0)
    return {
        "nats_per_image": float(kl.reshape(len(kl), -1).sum(axis=1).mean()),
        "nats_per_class": per_class.mean(axis=0),
        "nats_present_class": present_mean,
    }
