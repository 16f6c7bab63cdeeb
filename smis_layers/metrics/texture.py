"""Do reconstructions keep each region's texture? The dominant 2D-FFT peak of a region against
the synthetic benchmark's texture parameters.

The benchmark (`smis_layers.data.synthetic`) paints a class's region with a texture family and
parameters (freq, angle, phase) on normalised coordinates `xx, yy` that run from 0 at the first
pixel centre to 1 at the last one (`np.linspace(0, 1, size)`, so one pixel is 1 / (size - 1)),
`xx` along the columns and `yy` along the rows (downwards). With `along = cos(angle) xx +
sin(angle) yy` and `across = -sin(angle) xx + cos(angle) yy`:

- stripes, `sin(2 pi (freq along + phase))`: one spatial frequency, the wave vector
  freq (cos angle, sin angle) in cycles per unit of `xx, yy`; its FFT peak is at frequency
  `freq` and angle `angle` (modulo pi: a stripe at angle a and a + pi is the same);
- checker, `(floor(freq along + phase) + floor(freq across)) % 2`: the product of two square
  waves of period 2 / freq along `along` and `across`, so its strongest Fourier components are
  the products of their fundamentals, at (+-freq / 2, +-freq / 2) in the (along, across) frame:
  frequency freq / sqrt(2) and angle angle +- pi / 4, both diagonals equally strong. A checker's
  peak is therefore compared as the implied cell frequency `sqrt(2) * peak frequency` and
  orientation `peak angle - pi / 4`, modulo pi / 2 (a checker turned by 90 degrees is the same);
- dots (a disk per cell of the same lattice): the fundamentals at (freq, 0) and (0, freq) in
  the (along, across) frame, so frequency freq and angle angle modulo pi / 2.

Flat and radial regions have no periodic peak and cannot be scored. `dominant_frequency`
returns the peak in the benchmark's units, `frequency_peaks` the strongest two in different
directions (a checker's two diagonals, which a single wave does not have), `texture_agreement`
the fraction of (image, class) regions of a texture family whose peak (or, asked, both
fundamentals) matches the benchmark's parameters within tolerances.
`scripts/texture_and_morph.py` prints it for presets' reconstructions and for the real images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from smis_layers.data.synthetic import TEXTURES
from smis_layers.utils.validation import require_positive_int

#: Families `texture_agreement` can score: name -> (frequency factor, angle offset, angle period)
#: turning the benchmark's (freq, angle) into the expected FFT peak (see the module docstring).
PEAK_GEOMETRY = {
    "stripes": (1.0, 0.0, np.pi),
    "checker": (1.0 / np.sqrt(2.0), np.pi / 4, np.pi / 2),
    "dots": (1.0, 0.0, np.pi / 2),
}
#: Fourier fundamentals of each family: a checker's two diagonals and a lattice's two axes are
#: equally strong (`frequency_peaks` finds the second), a stripe has one.
FUNDAMENTALS = {"stripes": 1, "checker": 2, "dots": 2}


def dominant_frequency(
    image,
    region,
    padding: int = 4,
    min_frequency: float = 1.0,
    window: bool = False,
) -> tuple[float, float]:
    """The dominant non-DC spatial frequency of an image inside a region.

    The region's mean colour is subtracted and everything outside the region set to 0; the
    power spectra of the channels (zero-padded FFTs, `padding` times the image size) are summed,
    so a texture shows whichever colours it alternates between; the highest peak at a frequency
    of at least `min_frequency` is returned.

    Args:
        image: (H, W, channels) or (H, W) image (any range; the benchmark's are in [-1, 1]).
        region: (H, W) boolean mask of the region, at least 2 pixels.
        padding: FFT size over the image size (>= 1); 4 gives 0.25 cycles per unit on a 64-pixel
            image.
        min_frequency: frequencies below this (cycles per unit) are not peaks: they are the
            region's shape rather than a texture (the benchmark's textures have 4 to 10).
        window: taper the region's bounding box with a Hann window. On the benchmark's real
            images it lowers the checker agreement (0.81 -> 0.74 of the regions of at least 64
            pixels in 64 held-out scenes; stripes 0.98 either way), so it is off by default.

    Returns:
        (frequency, angle): frequency in cycles per unit of the benchmark's normalised
        coordinates (the image spans 1 unit from the first to the last pixel centre, so one
        pixel is 1 / (size - 1)), angle in radians in [0, pi), the direction of the wave vector
        measured from the columns' axis towards the rows' (the benchmark's `angle`). (NaN, NaN)
        when the region is uniform (no texture to measure).

    Examples:
        >>> batch = SyntheticShapes(64, seed=1000).batch(np.arange(5))
        >>> batch["texture"][4, 1], batch["params"][4, 1, :2]  # striped class 1 of scene 4
        (1, array([9.12, 2.471]))
        >>> dominant_frequency(batch["images"][4], batch["masks"][4] == 1)
        (9.109, 2.471)
    """
    spectrum = _region_spectrum(image, region, padding, min_frequency, window)
    if spectrum is None:
        return float("nan"), float("nan")
    power, frequency, angle = spectrum
    peak = int(np.argmax(power))
    return float(frequency.flat[peak]), float(angle.flat[peak])


def frequency_peaks(
    image,
    region,
    padding: int = 4,
    min_frequency: float = 1.0,
    window: bool = False,
    separation_deg: float = 45.0,
) -> np.ndarray:
    """The two strongest spectral peaks of an image inside a region, in different directions.

    The first is `dominant_frequency`'s; the second is the highest peak whose direction differs
    from the first's by more than `separation_deg` (modulo 180 degrees), so that neither the
    first peak's mirror image nor its harmonics count. A checker has two equally strong
    fundamentals on its diagonals and a lattice of dots two along its axes, 90 degrees apart;
    a single wave (stripes) has one, and its second peak is far weaker.

    Args:
        image / region / padding / min_frequency / window: `dominant_frequency`'s.
        separation_deg: smallest angle between the two peaks' directions, in degrees (0 to 90).

    Returns:
        (2, 3) float64 array, a row per peak: (frequency, angle, power), frequency and angle as
        `dominant_frequency` returns them, power the summed power spectrum at the peak (the
        ratio of the rows' powers says how strong the second is). NaN rows when the region is
        uniform.

    Examples:
        >>> batch = SyntheticShapes(64, seed=1000).batch(np.arange(64))
        >>> b, c = np.argwhere(batch["texture"] == TEXTURES.index("checker"))[0]
        >>> peaks = frequency_peaks(batch["images"][b], batch["masks"][b] == c)
        >>> np.degrees(peaks[1, 1] - peaks[0, 1]) % 180, peaks[1, 2] / peaks[0, 2]  # ~90, ~1
    """
    if not 0 <= separation_deg <= 90:
        raise ValueError(f"`separation_deg` must be in [0, 90]; received {separation_deg}")
    spectrum = _region_spectrum(image, region, padding, min_frequency, window)
    if spectrum is None:
        return np.full((2, 3), np.nan)
    power, frequency, angle = spectrum
    first = int(np.argmax(power))
    turn = np.abs((angle - angle.flat[first] + np.pi / 2) % np.pi - np.pi / 2)
    second = int(np.argmax(np.where(turn > np.radians(separation_deg), power, -1.0)))
    return np.asarray(
        [
            (frequency.flat[k], angle.flat[k], max(float(power.flat[k]), 0.0))
            for k in (first, second)
        ]
    )


def _region_spectrum(image, region, padding: int, min_frequency: float, window: bool):
    """(power, frequency, angle) over the bins of the region's zero-padded FFT, the power -1
    below `min_frequency`; None for a uniform region. Validates the arguments."""
    image = np.asarray(image, dtype="float64")
    region = np.asarray(region)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3:
        raise ValueError(
            f"`image` must be (H, W, channels) or (H, W); received shape {np.shape(image)}"
        )
    if region.shape != image.shape[:2]:
        raise ValueError(
            f"`region` must be (H, W) = {image.shape[:2]} like the image; received shape "
            f"{region.shape}"
        )
    if region.dtype != bool:
        raise ValueError(f"`region` must be a boolean mask; received dtype {region.dtype}")
    count = int(region.sum())
    if count < 2:
        raise ValueError(f"`region` must hold at least 2 pixels; received {count}")
    padding = require_positive_int("padding", padding)
    if not np.isfinite(min_frequency) or min_frequency < 0:
        raise ValueError(
            f"`min_frequency` must be a finite number >= 0; received min_frequency={min_frequency}"
        )
    height, width = region.shape
    if height < 2 or width < 2:
        raise ValueError(f"`image` must be at least 2 x 2 pixels; received {height} x {width}")
    values = image[region]
    centred = np.where(region[..., None], image - values.mean(axis=0), 0.0)
    if window:
        centred = centred * _bounding_box_hann(region)[..., None]
    size = (padding * height, padding * width)
    power = (np.abs(np.fft.fft2(centred, s=size, axes=(0, 1))) ** 2).sum(axis=-1)
    if power.max() <= 1e-12 * max(1.0, float(np.square(values).sum())):
        return None
    # Bin k of an FFT of n samples spaced 1 / (size - 1) units is k (size - 1) / n cycles per unit.
    fy = np.fft.fftfreq(size[0]) * (height - 1)
    fx = np.fft.fftfreq(size[1]) * (width - 1)
    fy, fx = np.meshgrid(fy, fx, indexing="ij")
    radius = np.hypot(fy, fx)
    power = np.where(radius >= max(min_frequency, 1e-9), power, -1.0)
    return power, radius, np.arctan2(fy, fx) % np.pi


def _bounding_box_hann(region: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(region)
    window = np.zeros(region.shape)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    window[r0:r1, c0:c1] = np.outer(np.hanning(r1 - r0 + 2)[1:-1], np.hanning(c1 - c0 + 2)[1:-1])
    return window


def texture_agreement(
    images,
    labels,
    texture,
    params,
    families: Sequence[str] = ("stripes", "checker"),
    angle_tolerance_deg: float = 15.0,
    frequency_tolerance: float = 0.2,
    min_pixels: int = 128,
    padding: int = 4,
    min_frequency: float = 1.0,
    second_peak_ratio: float | None = None,
) -> dict[str, dict]:
    """Per texture family: how often a region's dominant FFT peak matches the benchmark's
    texture angle and frequency.

    Every (image, class) region whose class has a texture of `families` in that image (the
    benchmark's `texture` factor) is measured with `dominant_frequency`; the peak is converted
    to the family's (frequency, angle) (a checker's peak lies at freq / sqrt(2) and angle + pi / 4,
    see the module docstring) and compared with the benchmark's `params`: it matches when the
    angle is within `angle_tolerance_deg` (modulo pi for stripes, pi / 2 for checkers and dots)
    and the frequency within `frequency_tolerance` relative error. Pass the real images to
    validate the estimator, reconstructions (the same label maps and factors) to score a model.

    The dominant peak alone cannot tell a checker from stripes along one of its diagonals. With
    `second_peak_ratio`, a checked or dotted region matches only when its second fundamental is
    there too: `frequency_peaks`' second peak must match the same angle (modulo 90 degrees) and
    frequency, with at least `second_peak_ratio` times the first's power (the benchmark's own
    checkers have 0.8-1.0 in 9 of 10 regions; stripes drawn over a checked region, about 0.07).

    Args:
        images: (B, H, W, 3) images (real or reconstructed) of the label maps.
        labels: (B, H, W) integer label maps.
        texture: (B, C) the benchmark's texture family index per class (into `TEXTURES`).
        params: (B, C, 3) the benchmark's (freq, angle, phase) per class.
        families: texture families to score, among "stripes", "checker" and "dots".
        angle_tolerance_deg: largest angle error of a match, in degrees (0 to 90).
        frequency_tolerance: largest relative frequency error of a match (> 0).
        min_pixels: smaller regions are skipped (too few cycles to measure) and counted.
        padding / min_frequency: `dominant_frequency`'s.
        second_peak_ratio: None (default) scores the dominant peak alone; a number in (0, 1]
            also asks checked and dotted regions for their second fundamental (above). Stripes
            are scored alike either way.

    Returns:
        dict family -> dict with `agreement` (fraction of the measured regions that match, NaN
        if none), `count` (regions measured), `skipped` (regions of the family under
        `min_pixels`), and per measured region (N,) or (N, 2) arrays: `regions` (image, class),
        `measured` and `expected` (frequency, angle in radians) in the family's terms,
        `angle_error_deg` (signed, wrapped to the family's period), `frequency_error`
        (measured / expected - 1) and `matches`. A uniform region measures NaN and does not
        match. With `second_peak_ratio`, checker and dots add the second peak's
        `second_measured`, `second_angle_error_deg`, `second_frequency_error` and
        `power_ratio` (second over first), and `matches` requires both peaks.

    Examples:
        >>> batch = SyntheticShapes(64, seed=1000).batch(np.arange(64))
        >>> scores = texture_agreement(
        ...     batch["images"], batch["masks"], batch["texture"], batch["params"]
        ... )
        >>> scores["stripes"]["agreement"], scores["checker"]["count"]
    """
    images, labels = np.asarray(images), np.asarray(labels)
    texture, params = np.asarray(texture), np.asarray(params)
    if images.ndim != 4 or labels.shape != images.shape[:3]:
        raise ValueError(
            f"`images` (B, H, W, channels) and `labels` (B, H, W) must match; received "
            f"{images.shape} and {labels.shape}"
        )
    if texture.ndim != 2 or texture.shape[0] != len(labels):
        raise ValueError(
            f"`texture` must be (B, C) with B = {len(labels)}; received shape {texture.shape}"
        )
    if params.shape != (*texture.shape, 3):
        raise ValueError(
            f"`params` must be (B, C, 3) = {(*texture.shape, 3)} (freq, angle, phase); "
            f"received shape {params.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= texture.shape[1]):
        raise ValueError(
            f"`labels` must be in [0, {texture.shape[1]}) (C from `texture`); received values in "
            f"[{labels.min()}, {labels.max()}]"
        )
    families = [families] if isinstance(families, str) else list(families)
    for family in families:
        if family not in PEAK_GEOMETRY:
            raise ValueError(
                f"`families` must name textures among {tuple(PEAK_GEOMETRY)} (those with a "
                f"periodic peak); received {family!r}"
            )
    if not 0 < angle_tolerance_deg <= 90:
        raise ValueError(
            f"`angle_tolerance_deg` must be in (0, 90]; received {angle_tolerance_deg}"
        )
    if not 0 < frequency_tolerance < np.inf:
        raise ValueError(
            f"`frequency_tolerance` must be a finite number > 0; received {frequency_tolerance}"
        )
    require_positive_int("min_pixels", min_pixels)
    if second_peak_ratio is not None and not 0 < second_peak_ratio <= 1:
        raise ValueError(
            f"`second_peak_ratio` must be None or in (0, 1]; received {second_peak_ratio}"
        )
    results = {}
    for family in families:
        index = TEXTURES.index(family)
        period = PEAK_GEOMETRY[family][2]
        both = second_peak_ratio is not None and FUNDAMENTALS[family] == 2
        regions, peaks, expected, skipped = [], [], [], 0
        for b, c in zip(*np.nonzero(texture == index), strict=True):
            region = labels[b] == c
            pixels = int(region.sum())
            if pixels == 0:
                continue
            if pixels < min_pixels:
                skipped += 1
                continue
            regions.append((int(b), int(c)))
            peaks.append(frequency_peaks(images[b], region, padding, min_frequency))
            expected.append((float(params[b, c, 0]), float(params[b, c, 1]) % period))
        peaks_array = np.asarray(peaks, "float64").reshape(-1, 2, 3)
        expected_array = np.asarray(expected, "float64").reshape(-1, 2)
        measured, angle_error, frequency_error, matches = _compare_peaks(
            peaks_array[:, 0], expected_array, family, angle_tolerance_deg, frequency_tolerance
        )
        result = {
            "regions": np.asarray(regions, "int64").reshape(-1, 2),
            "measured": measured,
            "expected": expected_array,
            "angle_error_deg": angle_error,
            "frequency_error": frequency_error,
        }
        if both:
            second, second_angle, second_frequency, second_matches = _compare_peaks(
                peaks_array[:, 1], expected_array, family, angle_tolerance_deg, frequency_tolerance
            )
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = peaks_array[:, 1, 2] / peaks_array[:, 0, 2]
                matches = matches & second_matches & (ratio >= second_peak_ratio)
            result.update(
                second_measured=second,
                second_angle_error_deg=second_angle,
                second_frequency_error=second_frequency,
                power_ratio=ratio,
            )
        results[family] = {
            "agreement": float(matches.mean()) if matches.size else float("nan"),
            "count": int(matches.size),
            "skipped": skipped,
            **result,
            "matches": matches,
        }
    return results


def _compare_peaks(
    peaks: np.ndarray,
    expected: np.ndarray,
    family: str,
    angle_tolerance_deg: float,
    frequency_tolerance: float,
):
    """(measured, angle error in degrees, relative frequency error, matches) of (N, 3) peaks
    against the family's (N, 2) expected (frequency, angle)."""
    factor, offset, period = PEAK_GEOMETRY[family]
    measured = np.stack([peaks[:, 0] / factor, (peaks[:, 1] - offset) % period], axis=-1)
    gap = measured[:, 1] - expected[:, 1]
    angle_error = np.degrees((gap + period / 2) % period - period / 2)
    frequency_error = measured[:, 0] / expected[:, 0] - 1.0
    with np.errstate(invalid="ignore"):
        matches = (np.abs(angle_error) <= angle_tolerance_deg) & (
            np.abs(frequency_error) <= frequency_tolerance
        )
    return measured, angle_error, frequency_error, matches
