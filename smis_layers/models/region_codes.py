"""Code channels measured from the image rather than encoded: a region's mean colour and its
texture waves, the dominant one and optionally a second in another direction (GroupDNet's
`region_colour_code` and `region_texture_code`, not in the paper).

Both are per-class summaries of the real image that the decoder receives noise-free in training
and that generation draws from the code prior like the encoder's channels. The texture waves
are also rendered at full resolution inside their region (`texture_carriers`), because a
decoder fed a spatially constant code has no coordinate from which to draw a wave of a given
phase: it sees a constant code and a label map, and everything it computes from them is
invariant to a shift of the texture. One wave draws stripes; a checker or a dot lattice has
two fundamentals, 90 degrees apart, whose sum the second wave completes.
"""

from __future__ import annotations

import math

import numpy as np
from keras import ops

#: Latent channels per class that carry the region's mean RGB with `region_colour_code`.
REGION_COLOUR_CHANNELS = 3
#: Their log-variance: a noise standard deviation of 0.0067, negligible against colours in
#: [-1, 1]. The KL term counts these channels like the others (about 4.5 nats each).
REGION_COLOUR_LOGVAR = -10.0
#: Latent channels per class and texture wave, after the colour channels, with
#: `region_texture_code`: (fx, fy) / `REGION_TEXTURE_FREQUENCY_SCALE` and the complex
#: amplitude (a cos phi, a sin phi).
REGION_TEXTURE_CHANNELS = 4
#: Most texture waves per class: the dominant one and the strongest in another direction.
REGION_TEXTURE_MAX_WAVES = 2
#: The second wave's direction differs from the first's by more than this (degrees, modulo
#: 180), so that neither the first's mirror image nor its harmonics count: a checker's two
#: diagonals and a dot lattice's two axes are 90 degrees apart.
REGION_TEXTURE_SEPARATION_DEG = 45.0
#: A second wave weaker than this fraction of the first's amplitude is the region's outline or
#: noise rather than a texture (a checker's two are equal): its channels are set to 0.
REGION_TEXTURE_SECOND_WAVE_RATIO = 0.5
#: Cycles per unit (the image spans one unit) that a frequency channel's 1.0 stands for: the
#: benchmark's textures have 4 to 10, so a standard normal draw covers them.
REGION_TEXTURE_FREQUENCY_SCALE = 8.0
#: Lower frequencies are the region's shape, not a texture.
REGION_TEXTURE_MIN_FREQUENCY = 2.0
#: FFT size over the image size: 2 resolves 0.5 cycles per unit on a 64-pixel image.
REGION_TEXTURE_PADDING = 2
#: Waves of a smaller amplitude (image units) are numerical noise of a flat region: their
#: channels are set to 0.
REGION_TEXTURE_MIN_AMPLITUDE = 0.02


def region_mean_colours(images, segmap):
    """(B, C, 3) float32 mean RGB of every class's region in `images` (B, H, W, 3) under the
    one-hot `segmap` (B, H, W, C); 0 for a class absent from an image.

    Examples:
        >>> labels = np.random.randint(0, 4, (2, 32, 32))
        >>> segmap = np.eye(4, dtype="float32")[labels]
        >>> region_mean_colours(np.random.uniform(-1, 1, (2, 32, 32, 3)), segmap).shape
        (2, 4, 3)
    """
    segmap = ops.cast(segmap, "float32")
    area = ops.maximum(ops.sum(segmap, axis=(1, 2)), 1.0)
    totals = ops.einsum("bhwc,bhwk->bck", segmap, ops.cast(images, "float32"))
    return totals / area[..., None]


def _frequency_grid(height: int, width: int, padding: int) -> tuple[np.ndarray, np.ndarray]:
    """(fy, fx) of every bin of a (padding H, padding W) FFT, in cycles per unit (the image
    spans one unit from its first to its last pixel centre), flattened."""
    rows, cols = padding * height, padding * width
    fy = np.fft.fftfreq(rows) * (height - 1)
    fx = np.fft.fftfreq(cols) * (width - 1)
    fy, fx = np.meshgrid(fy, fx, indexing="ij")
    return fy.reshape(-1).astype("float32"), fx.reshape(-1).astype("float32")


def _wave_angles(fx, fy, size: tuple[int, int]):
    """(..., H, W) `2 pi (fx x + fy y)` for wave vectors `fx`, `fy` (...) in cycles per unit,
    x and y the pixel centres in units (0 to 1 from the first to the last)."""
    height, width = size
    x = ops.convert_to_tensor(np.linspace(0.0, 1.0, width, dtype="float32"))
    y = ops.convert_to_tensor(np.linspace(0.0, 1.0, height, dtype="float32"))
    return (2.0 * math.pi) * (fx[..., None, None] * x[None, :] + fy[..., None, None] * y[:, None])


def region_texture_waves(images, segmap, padding: int = REGION_TEXTURE_PADDING, waves: int = 1):
    """(B, C, 4 waves) float32 texture waves of every class's region, each as (fx, fy) over
    `REGION_TEXTURE_FREQUENCY_SCALE` and the complex amplitude (a cos phi, a sin phi).

    Each region, less its mean colour and zero outside, is transformed channel by channel
    (zero-padded 2D FFT); the highest peak of the summed power at a frequency of at least
    `REGION_TEXTURE_MIN_FREQUENCY` gives the first wave vector, taken in the half-plane fy > 0
    (or fy = 0, fx > 0) since a real wave has two. With `waves=2` the second is the highest
    peak whose direction differs from the first's by more than `REGION_TEXTURE_SEPARATION_DEG`
    (a checker's other diagonal, a dot lattice's other axis); it is set to 0 when its amplitude
    is under `REGION_TEXTURE_SECOND_WAVE_RATIO` times the first's (stripes have one wave). The
    amplitude `a` is the RGB norm of the peak's coefficients over half the region's area, the
    phase `phi` that of its strongest channel: `a cos(2 pi (fx x + fy y) + phi)` is the wave, x
    and y the pixel centres in units (`texture_carriers` draws their sum). A flat or absent
    region gives zeros. The amplitude channels are differentiable in the images (the
    latent-regression term reads them back from generated images); the frequencies, argmaxes,
    are not.

    Examples:
        >>> batch = SyntheticShapes(64, seed=1000).batch(np.arange(5))
        >>> batch["texture"][4, 1], batch["params"][4, 1, :2]  # striped class 1 of scene 4
        (1, array([9.12, 2.471]))
        >>> waves = np.asarray(region_texture_waves(batch["images"], np.eye(8)[batch["masks"]]))
        >>> fx, fy = waves[4, 1, :2] * REGION_TEXTURE_FREQUENCY_SCALE
        >>> np.hypot(fx, fy), np.arctan2(fy, fx)  # about 9.1 and 2.47
    """
    if waves not in range(1, REGION_TEXTURE_MAX_WAVES + 1):
        raise ValueError(f"`waves` must be 1 or {REGION_TEXTURE_MAX_WAVES}; received {waves!r}")
    images = ops.cast(images, "float32")
    segmap = ops.cast(segmap, "float32")
    height, width = int(images.shape[1]), int(images.shape[2])
    rows, cols = padding * height, padding * width
    centred = images[:, :, :, None, :] - region_mean_colours(images, segmap)[:, None, None]
    centred = ops.transpose(centred * segmap[..., None], (0, 3, 4, 1, 2))  # (B, C, 3, H, W)
    padded = ops.pad(centred, [(0, 0)] * 3 + [(0, rows - height), (0, cols - width)])
    real, imag = ops.fft2((padded, ops.zeros_like(padded)))
    power = ops.sum(real * real + imag * imag, axis=2)  # (B, C, rows, cols)
    power = ops.stop_gradient(ops.reshape(power, (*ops.shape(power)[:2], rows * cols)))
    fy, fx = _frequency_grid(height, width, padding)
    upper = (fy > 0) | ((fy == 0) & (fx > 0))
    allowed = ops.convert_to_tensor(upper & (np.hypot(fx, fy) >= REGION_TEXTURE_MIN_FREQUENCY))
    candidates = ops.where(allowed[None, None], power, -1.0)
    area = ops.maximum(ops.sum(segmap, axis=(1, 2)), 1.0)
    first = ops.argmax(candidates, axis=-1)  # (B, C)
    grid = (fy, fx, padding)
    found = [_region_wave(centred, power, first, area, grid)]
    if waves == 2:
        # Directions in [0, pi): the bins' and the first peak's.
        direction = ops.convert_to_tensor(np.arctan2(fy, fx) % np.pi)
        turn = direction[None, None] - ops.take(direction, first)[..., None]
        turn = ops.abs(ops.mod(turn + 0.5 * math.pi, math.pi) - 0.5 * math.pi)
        apart = turn > math.radians(REGION_TEXTURE_SEPARATION_DEG)
        second = ops.argmax(ops.where(apart, candidates, -1.0), axis=-1)
        wave = _region_wave(centred, power, second, area, grid)
        first_amplitude = ops.sqrt(ops.sum(ops.square(found[0][..., 2:]), axis=-1))
        amplitude = ops.sqrt(ops.sum(ops.square(wave[..., 2:]), axis=-1))
        strong = amplitude >= REGION_TEXTURE_SECOND_WAVE_RATIO * first_amplitude
        found.append(wave * ops.cast(strong, "float32")[..., None])
    return ops.concatenate(found, axis=-1)


def _region_wave(centred, power, index, area, grid: tuple[np.ndarray, np.ndarray, int]):
    """(B, C, 4) the wave at FFT bin `index` (B, C) of every class: the frequency refined
    between bins, the complex amplitude over the region (`region_texture_waves`). `grid`:
    `_frequency_grid`'s (fy, fx) and the padding it was made with."""
    fy, fx, padding = grid
    height, width = int(centred.shape[-2]), int(centred.shape[-1])
    size = (height, width)
    rows, cols = padding * height, padding * width
    row, col = index // cols, index % cols

    def log_power(row_step: int, col_step: int):
        neighbour = ((row + row_step) % rows) * cols + (col + col_step) % cols
        return ops.log(ops.take_along_axis(power, neighbour[..., None], axis=-1)[..., 0] + 1e-12)

    # The peak between bins: a parabola through the log power of the bin and its neighbours.
    centre = log_power(0, 0)
    refined = []
    for grid, steps, spacing in (
        (fx, (0, 1), (width - 1) / cols),
        (fy, (1, 0), (height - 1) / rows),
    ):
        below, above = log_power(-steps[0], -steps[1]), log_power(*steps)
        curvature = below - 2.0 * centre + above
        offset = 0.5 * (below - above) / ops.where(curvature < -1e-6, curvature, -1.0)
        offset = ops.where(curvature < -1e-6, ops.clip(offset, -0.5, 0.5), 0.0)
        refined.append(ops.take(ops.convert_to_tensor(grid), index) + offset * spacing)
    wave_fx, wave_fy = refined

    # The complex amplitude at that frequency, summed over the region's pixels.
    angle = _wave_angles(wave_fx, wave_fy, size)
    peak_real = ops.sum(centred * ops.cos(angle)[:, :, None], axis=(-2, -1))  # (B, C, 3)
    peak_imag = -ops.sum(centred * ops.sin(angle)[:, :, None], axis=(-2, -1))
    magnitude = peak_real * peak_real + peak_imag * peak_imag
    strongest = ops.one_hot(ops.argmax(magnitude, axis=-1), 3, dtype="float32")
    ref_real = ops.sum(peak_real * strongest, axis=-1)
    ref_imag = ops.sum(peak_imag * strongest, axis=-1)
    # The small constants keep the square roots' gradients finite for flat or absent regions.
    amplitude = 2.0 * ops.sqrt(ops.sum(magnitude, axis=-1) + 1e-12) / area
    phase_norm = ops.sqrt(ref_real * ref_real + ref_imag * ref_imag + 1e-12)
    textured = ops.cast(amplitude >= REGION_TEXTURE_MIN_AMPLITUDE, "float32")
    scale = textured / REGION_TEXTURE_FREQUENCY_SCALE
    wave = [
        wave_fx * scale,
        wave_fy * scale,
        textured * amplitude * ref_real / phase_norm,
        textured * amplitude * ref_imag / phase_norm,
    ]
    return ops.stack(wave, axis=-1)


def texture_carriers(waves, size: tuple[int, int]):
    """(B, H, W, C) every class's waves `sum a cos(2 pi (fx x + fy y) + phi)` over the whole
    image, from `waves` (B, C, 4 waves) as `region_texture_waves` returns them (x, y: pixel
    centres in units, 0 to 1 from the first to the last). Two waves of equal amplitude in
    directions 90 degrees apart sum to a smooth checker.

    Examples:
        >>> waves = region_texture_waves(images, segmap)
        >>> texture_carriers(waves, (64, 64)) * segmap  # each class's wave inside its region
    """
    waves = ops.cast(waves, "float32")
    shape = ops.shape(waves)
    waves = ops.reshape(
        waves, (*shape[:2], shape[2] // REGION_TEXTURE_CHANNELS, REGION_TEXTURE_CHANNELS)
    )
    scaled = waves[..., :2] * REGION_TEXTURE_FREQUENCY_SCALE
    angle = _wave_angles(scaled[..., 0], scaled[..., 1], size)  # (B, C, waves, H, W)
    carriers = waves[..., 2, None, None] * ops.cos(angle) - waves[..., 3, None, None] * ops.sin(
        angle
    )
    return ops.transpose(ops.sum(carriers, axis=2), (0, 2, 3, 1))


def weights_for_texture_code(source, target) -> list[np.ndarray]:
    """`source`'s weights for `target`, the same network with `region_texture_code` switched on
    or given more waves, and as many or more latent channels per class: fine-tuning a trained
    model into the texture code.

    Where `source` has no texture code, every CGNorm's shared kernel gains inputs for the
    classes' texture carriers, starting at zero. Where `target` has more latent channels per
    class (`schedule.latent_channels`), the new ones are inserted after `source`'s measured
    channels in the encoder's output convolutions and the decoder's `fc`, starting at zero;
    the channels that follow keep their weights (so the channels `target` measures in addition
    take over the positions after `source`'s measured ones, as they do at the same width). So
    `target` decodes a code as `source` does (with zeros in the inserted channels) until
    training moves the new weights, as long as the waves it adds draw nothing: a second wave,
    where a region has one, changes its carrier from the start. The other weights are copied.

    Examples:
        >>> source = GroupDNet.from_preset("groupdnet_shapes64")
        >>> target = GroupDNet.from_config({**source.get_config(), "region_texture_code": True})
        >>> target.set_weights(weights_for_texture_code(source, target))
    """
    ignored = ("name", "dtype", "trainable", "seed", "region_texture_code", "schedule")
    source_config, target_config = source.get_config(), target.get_config()
    differ = sorted(
        key
        for key in set(source_config) | set(target_config)
        if key not in ignored and source_config.get(key) != target_config.get(key)
    )
    schedules = [
        {**config["schedule"], "latent_channels": None} for config in (source_config, target_config)
    ]
    if schedules[0] != schedules[1]:
        differ.append("schedule")
    old_waves = int(getattr(source, "region_texture_code", 0))
    new_waves = int(getattr(target, "region_texture_code", 0))
    old_k, new_k = source.schedule.latent_channels, target.schedule.latent_channels
    if differ or new_waves <= old_waves or new_k < old_k:
        raise ValueError(
            "`target` must be `source` with `region_texture_code` switched on or more waves, "
            f"and at least as many latent channels per class; received region_texture_code "
            f"{old_waves} -> {new_waves}, latent channels {old_k} -> {new_k}, and configs "
            f"that differ in {differ}"
        )
    # Class c's latent channel j of `source` is channel c * new_k + moved[j] of `target`.
    moved = np.arange(old_k)
    moved[source.measured_code_channels :] += new_k - old_k
    latent_layers = (target.fc, target.encoder.fc_mu, target.encoder.fc_var)
    latent_weights = {id(v) for layer in latent_layers for v in layer.weights}
    per_class = source.condition_channels // source.num_classes  # condition channels per class
    weights = []
    pairs = zip(source.get_weights(), target.weights, strict=True)
    for old, variable in pairs:
        new_shape = tuple(variable.shape)
        if old.shape == new_shape:
            weights.append(old)
            continue
        widened = np.zeros(new_shape, old.dtype)
        if id(variable) in latent_weights:
            # Every axis that grew runs over the latent channels of one or more whole classes.
            index = []
            for old_size, new_size in zip(old.shape, new_shape, strict=True):
                local = np.arange(old_size)
                if old_size == new_size:
                    index.append(local)
                else:
                    index.append(local // old_k * new_k + moved[local % old_k])
            widened[np.ix_(*index)] = old
        else:
            # A CGNorm shared kernel (kh, kw, inputs per group, filters): each class's
            # `per_class` condition channels are followed by its carrier in `target`.
            local = np.arange(old.shape[2])
            carriers = old.shape[2] // per_class
            if old_waves or new_shape != (*old.shape[:2], old.shape[2] + carriers, old.shape[3]):
                raise ValueError(
                    f"Unexpected weight {variable.path}: {old.shape} in `source`, {new_shape} "
                    "in `target`"
                )
            widened[:, :, local + local // per_class] = old
        weights.append(widened)
    return weights
