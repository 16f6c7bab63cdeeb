"""GAN losses of GroupDNet / SPADE as pure functions of `keras.ops` (backend-agnostic).

Discriminator outputs are lists (one per scale) of lists of feature maps whose last entry is the
patch logits, as `MultiScaleDiscriminator` returns them.
"""

from __future__ import annotations

from collections.abc import Sequence

from keras import ops

from smis_layers.models.groupdnet.groupdnet import region_mean_colours

VGG_LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)


def hinge_discriminator_loss(real_outputs, fake_outputs):
    """mean(relu(1 - D(real))) + mean(relu(1 + D(fake))), averaged over scales."""
    real = [ops.mean(ops.relu(1.0 - scale[-1])) for scale in real_outputs]
    fake = [ops.mean(ops.relu(1.0 + scale[-1])) for scale in fake_outputs]
    return ops.mean(ops.stack(real)), ops.mean(ops.stack(fake))


def hinge_generator_loss(fake_outputs):
    """-mean(D(fake)), averaged over scales."""
    return ops.mean(ops.stack([-ops.mean(scale[-1]) for scale in fake_outputs]))


def feature_matching_loss(real_outputs, fake_outputs):
    """L1 between the discriminator's intermediate features of fake and (fixed) real images,
    summed over layers and averaged over scales (as in pix2pixHD / SPADE)."""
    total = 0.0
    for real_scale, fake_scale in zip(real_outputs, fake_outputs, strict=True):
        for real, fake in zip(real_scale[:-1], fake_scale[:-1], strict=True):
            total = total + ops.mean(ops.abs(fake - ops.stop_gradient(real)))
    return total / len(real_outputs)


def kl_divergence_loss(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, 1)) summed over all elements (the official code's sum)."""
    return -0.5 * ops.sum(1.0 + logvar - ops.square(mu) - ops.exp(logvar))


def reconstruction_loss(real, fake):
    """Mean absolute pixel difference between a generated image and the image whose codes
    generated it: a weight-free reconstruction term for training without VGG19 weights."""
    return ops.mean(ops.abs(fake - ops.stop_gradient(real)))


def latent_regression_loss(z, mu, segmap, channels_per_class: int | None = None):
    """Mean absolute difference between codes `z` (B, h, w, K) and the encoder's means `mu` of
    the images decoded from them (BicycleGAN's latent regression). With `channels_per_class`
    (codes owned by classes: K = C * channels_per_class for the C channels of the one-hot
    `segmap`), only the classes present in each sample's segmap count: an absent class's code
    cannot be read back from any pixel."""
    error = ops.abs(ops.cast(mu, "float32") - ops.cast(ops.stop_gradient(z), "float32"))
    if channels_per_class is None:
        return ops.mean(error)
    present = _present_classes(segmap)
    weights = ops.repeat(present, channels_per_class, axis=-1)[:, None, None, :]
    cells = error.shape[1] * error.shape[2]
    return ops.sum(error * weights) / ops.maximum(ops.sum(weights) * cells, 1.0)


def region_colour_loss(real, fake, segmap):
    """Mean absolute difference between each class's mean colour in `fake` and in the (fixed)
    `real` images (B, H, W, 3), averaged over RGB and over the classes present in each
    sample's one-hot `segmap` (B, H, W, C), every class counting alike whatever its area: in a
    pixel L1 the large regions outweigh the small ones.

    Examples:
        >>> segmap = model.segmap(labels)  # (B, H, W, C)
        >>> loss = region_colour_loss(images, model.decode(mu, segmap), segmap)
    """
    present = _present_classes(segmap)
    gap = region_mean_colours(fake, segmap) - ops.stop_gradient(region_mean_colours(real, segmap))
    return ops.sum(ops.mean(ops.abs(gap), axis=-1) * present) / ops.maximum(ops.sum(present), 1.0)


def region_spectrum_loss(real, fake, segmap, eps: float = 1e-6):
    """L1 between the amplitude spectra of every present class's region in `fake` and in the
    (fixed) `real` images (B, H, W, 3), averaged over the classes present in each sample's
    one-hot `segmap` (B, H, W, C), every class counting alike.

    Each class's region, less its mean colour and zero outside, is transformed channel by
    channel (`ops.fft2`); the amplitudes are divided by the region's area, so a sinusoid of
    amplitude a gives peaks of a / 2 whatever the region's size, and their differences are
    summed over frequencies and averaged over RGB. Amplitudes do not depend on
    where a pattern lies, so the term compares textures (orientation, frequency, contrast)
    without asking for their phase, which a pixel L1 punishes when it is wrong: a blotch in a
    flat region and a stripe at the wrong angle cost alike, a stripe shifted by half a period
    costs nothing.

    Examples:
        >>> segmap = model.segmap(labels)  # (B, H, W, C)
        >>> loss = region_spectrum_loss(images, model.decode(mu, segmap), segmap)
    """
    segmap = ops.cast(segmap, "float32")
    present = _present_classes(segmap)
    area = ops.maximum(ops.sum(segmap, axis=(1, 2)), 1.0)  # (B, C)
    masks = ops.transpose(segmap, (0, 3, 1, 2))[:, :, None]  # (B, C, 1, H, W)

    def amplitudes(images):
        images = ops.cast(images, "float32")
        means = region_mean_colours(images, segmap)  # (B, C, 3)
        channels = ops.transpose(images, (0, 3, 1, 2))[:, None]  # (B, 1, 3, H, W)
        residual = (channels - means[..., None, None]) * masks  # (B, C, 3, H, W)
        re, im = ops.fft2((residual, ops.zeros_like(residual)))
        return ops.sqrt(re * re + im * im + eps) / area[:, :, None, None, None]

    gap = ops.abs(amplitudes(fake) - ops.stop_gradient(amplitudes(real)))
    per_class = ops.mean(ops.sum(gap, axis=(3, 4)), axis=2)  # (B, C): summed over frequencies
    return ops.sum(per_class * present) / ops.maximum(ops.sum(present), 1.0)


def _present_classes(segmap):
    """(B, C) float32: 1 where class c has a pixel in sample b's one-hot `segmap`, else 0."""
    return ops.cast(ops.max(segmap, axis=(1, 2)) > 0, "float32")


def perceptual_loss(
    real_features: Sequence, fake_features: Sequence, weights: Sequence[float] = VGG_LAYER_WEIGHTS
):
    """Weighted L1 between feature maps (VGG19 relu1_1..relu5_1 with weights 1/32 ... 1)."""
    if len(real_features) != len(weights):
        raise ValueError(
            f"`weights` must have one entry per feature map ({len(real_features)}); "
            f"received {len(weights)}"
        )
    total = 0.0
    for real, fake, weight in zip(real_features, fake_features, weights, strict=True):
        total = total + weight * ops.mean(ops.abs(fake - ops.stop_gradient(real)))
    return total
