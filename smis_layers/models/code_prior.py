"""FittedCodePrior: a Gaussian per class fitted to the encoder's codes of real images.

The paper draws random codes from the VAE prior N(0, 1). That is right only when the encoder's
posterior matches the prior, which the KL term enforces only as strongly as its weight allows.
With the small KL weights that keep the codes informative on the synthetic benchmark, the
posterior means of a trained model lie far inside the unit ball (per-class standard deviations
of 0.02 to 0.62 in the shipped GroupDNet, docs/zoo.md), so N(0, 1) codes are out of distribution
and decode to noise. Ex-post density estimation (Ghosh et al., "From Variational to
Deterministic Autoencoders", ICLR 2020) fits a density to the posterior means of training images
after training and samples from it instead; this module fits one full-covariance Gaussian per
class (or one over the whole code for models whose code belongs to no class). A model's measured
channels (`region_colour_code`, `region_texture_code`: a region's mean colour and texture waves,
not learned codes) are drawn instead, together, from the values measured in the training
regions: a class's regions come in a few discrete appearances (a palette, flat or textured),
which a Gaussian fills with colours and faint waves that no region of the class has, and a
colour goes with its texture.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np

from smis_layers.utils.deprecation import renamed_keywords
from smis_layers.utils.validation import require_positive_int

_ARRAYS = ("mean", "scale", "counts", "latent_shape")
#: Optional arrays: the measured channels (colour, waves) of the training regions, by class.
_MEASURED_ARRAYS = ("measured", "measured_counts", "measured_channels")
#: Their names in files written before the bank held the colour too.
_WAVE_ARRAYS = ("waves", "wave_counts", "wave_channels")
#: Where `sample_z(prior=...)` draws random codes from.
CODE_PRIORS = ("auto", "standard", "fitted")


class FittedCodePrior:
    """A Gaussian per class over that class's codes (its h x w x k latent block), or one over
    the whole code for models whose code belongs to no class (VSPADE).

    Group g's code is modelled as N(mean[g], scale[g] scale[g]^T), fitted to the encoder's
    posterior means of training images: for a class, the images in which it covers at least
    `min_pixels` pixels (a class seen in fewer than two images keeps the standard prior N(0, 1));
    for a whole code, every image. `scale` holds the covariance's leading eigenvectors times the
    square roots of their eigenvalues, at most `max_rank` of them (all of them for the classes'
    codes of the official sizes). A model's measured channels (its regions' mean colour and
    texture waves) are drawn instead as one row of the training regions' values, the same over
    the grid. Attach one to a model (`model.code_prior = prior`) and
    `sample_z` draws from it; presets ship it as `code_prior.npz`, which `from_preset` loads.

    Args:
        mean: (G, d) per-group means; G = C groups of d = h * w * k, or 1 group of
            d = h * w * channels.
        scale: (G, d, r): group g's codes are mean[g] + scale[g] @ eps, eps ~ N(0, I_r).
        counts: (G,) the number of codes each group was fitted to (0: standard prior).
        latent_shape: (h, w, channels), the model's `latent_shape`.
        measured: (N, k) measured-channel values of training regions, class by class (k: the
            model's `measured_code_channels`: 3 for the colour, 4 per texture wave), or None:
            `sample` draws each class's measured channels, one row for the whole grid, from its
            rows instead of its Gaussian.
        measured_counts: (G,) each class's rows in `measured` (0: the Gaussian's values are
            kept).
        measured_channels: (first, end) of the measured channels in each class's code.

    Examples:
        >>> batch = SyntheticShapes(64, seed=0).batch(np.arange(2048))
        >>> model.code_prior = FittedCodePrior.fit(model, batch["images"], batch["masks"])
        >>> images = model.generate(labels, seed=0)  # codes drawn from the fitted prior

    Reference:
        Ghosh et al., "From Variational to Deterministic Autoencoders", ICLR 2020 (ex-post
        density estimation).
    """

    def __init__(
        self,
        mean,
        scale,
        counts,
        latent_shape,
        measured=None,
        measured_counts=None,
        measured_channels=None,
    ):
        self.mean = np.asarray(mean, "float32")
        self.scale = np.asarray(scale, "float32")
        self.counts = np.asarray(counts, "int64")
        self.latent_shape = tuple(int(v) for v in np.asarray(latent_shape).reshape(-1))
        if len(self.latent_shape) != 3:
            raise ValueError(
                f"`latent_shape` must be (h, w, channels); received {self.latent_shape}"
            )
        h, w, channels = self.latent_shape
        groups = self.mean.shape[0] if self.mean.ndim == 2 else -1
        if groups < 1 or channels % groups or self.mean.shape[1] != h * w * channels // groups:
            raise ValueError(
                f"`mean` must be (G, h * w * channels / G) for latent_shape {self.latent_shape}; "
                f"received {self.mean.shape}"
            )
        d = self.mean.shape[1]
        if self.scale.ndim != 3 or self.scale.shape[:2] != (groups, d):
            raise ValueError(
                f"`scale` must have shape {(groups, d)} + (rank,); received {self.scale.shape}"
            )
        if self.counts.shape != (groups,):
            raise ValueError(f"`counts` must have shape {(groups,)}; received {self.counts.shape}")
        if not (np.isfinite(self.mean).all() and np.isfinite(self.scale).all()):
            raise ValueError("`mean` and `scale` must be finite")
        self.measured = None if measured is None else np.asarray(measured, "float32")
        self.measured_counts = (
            None if measured_counts is None else np.asarray(measured_counts, "int64")
        )
        self.measured_channels = (
            None
            if measured_channels is None
            else tuple(int(v) for v in np.ravel(measured_channels))
        )
        bank = (self.measured, self.measured_counts, self.measured_channels)
        given = [v is not None for v in bank]
        if any(given) and not all(given):
            raise ValueError("`measured`, `measured_counts` and `measured_channels` go together")
        if all(given):
            first, end = self.measured_channels
            rows, width = self.measured.shape if self.measured.ndim == 2 else (-1, -1)
            if (
                self.measured_counts.shape != (groups,)
                or self.measured_counts.sum() != rows
                or not 0 <= first < end <= channels // groups
                or width != end - first
            ):
                raise ValueError(
                    f"`measured` ({self.measured.shape}) must hold `measured_counts` "
                    f"({self.measured_counts}) rows of the channels `measured_channels` "
                    f"{self.measured_channels} of each of the {groups} groups' "
                    f"{channels // groups} channels"
                )

    @property
    def num_groups(self) -> int:
        """C (one Gaussian per class) or 1 (one over the whole code)."""
        return int(self.mean.shape[0])

    @classmethod
    @renamed_keywords(masks="labels")
    def fit(
        cls,
        model,
        images,
        labels,
        batch_size: int = 64,
        min_pixels: int = 16,
        shrinkage: float = 0.05,
        max_rank: int = 256,
    ) -> FittedCodePrior:
        """Fits the prior to `model`'s posterior means of `images` and `labels`.

        Args:
            model: a GroupDNet-family model (`encode`, `latent_shape`, `num_classes`,
                `class_owned_codes`).
            images: (N, H, W, 3) training images in [-1, 1].
            labels: their label maps (or their one-hot segmaps).
            batch_size: images encoded at once.
            min_pixels: a class contributes an image's code only where it covers at least this
                many pixels (a few pixels give a code the decoder never sees at full size).
            shrinkage: weight of the covariance's diagonal in its shrunk estimate
                (1 - s) * S + s * diag(S), which keeps it well conditioned for few images.
            max_rank: the most eigenvectors kept per group (bounds the file's size for
                image-level codes).
        """
        batch_size = require_positive_int("batch_size", batch_size)
        min_pixels = require_positive_int("min_pixels", min_pixels)
        max_rank = require_positive_int("max_rank", max_rank)
        if not 0.0 <= float(shrinkage) <= 1.0:
            raise ValueError(f"`shrinkage` must be in [0, 1]; received {shrinkage!r}")
        images, labels = np.asarray(images), np.asarray(labels)
        if len(images) != len(labels) or len(images) < 2:
            raise ValueError(
                "`images` and `labels` must hold the same number (at least 2) of samples; "
                f"received {len(images)} images and {len(labels)} labels"
            )
        mu = np.concatenate(
            [
                model.encode(images[i : i + batch_size], labels[i : i + batch_size])[0]
                for i in range(0, len(images), batch_size)
            ]
        ).astype("float64")
        if not getattr(model, "class_owned_codes", True):
            group = _gaussian(mu.reshape(len(mu), -1), shrinkage, max_rank)
            return cls(*(np.stack([a]) for a in group), model.latent_shape)
        labels = labels.argmax(-1) if labels.ndim == 4 and labels.shape[-1] > 1 else labels
        labels = labels.reshape(len(labels), -1)
        h, w, channels = model.latent_shape
        k = channels // model.num_classes
        groups, rows = [], []
        width = getattr(model, "measured_code_channels", 0)
        for c in range(model.num_classes):
            present = (labels == c).sum(1) >= min_pixels
            codes = mu[present][..., c * k : (c + 1) * k]
            if width:
                rows.append(codes[:, 0, 0, :width])  # the same over the grid
            codes = codes.reshape(len(codes), h * w * k)
            groups.append(_gaussian(codes, shrinkage, max_rank))
        mean, scale, counts = (np.stack(arrays) for arrays in zip(*groups, strict=True))
        if not rows:
            return cls(mean, scale, counts, model.latent_shape)
        bank = {
            "measured": np.concatenate(rows),
            "measured_counts": [len(r) for r in rows],
            "measured_channels": (0, width),
        }
        return cls(mean, scale, counts, model.latent_shape, **bank)

    def sample(self, batch_size: int, seed: int | None = None) -> np.ndarray:
        """Codes (batch_size, h, w, channels) as a float32 NumPy array."""
        batch_size = require_positive_int("batch_size", batch_size)
        h, w, channels = self.latent_shape
        groups, _, rank = self.scale.shape
        eps = keras.ops.convert_to_numpy(
            keras.random.normal((batch_size, groups, rank), seed=seed)
        ).astype("float32")
        codes = self.mean[None] + np.einsum("gdr,bgr->bgd", self.scale, eps)
        codes = codes.reshape(batch_size, groups, h, w, channels // groups)
        codes = codes.transpose(0, 2, 3, 1, 4).reshape(batch_size, h, w, -1)
        return self.with_measured_channels(codes, seed)

    def with_measured_channels(self, codes, seed: int | None = None) -> np.ndarray:
        """A float32 copy of `codes` (B, h, w, channels) whose classes' measured channels are
        each one training region's values, the same over the grid (`codes` itself when the prior
        holds none). `sample` draws them so; `sample_z(prior="standard")` too, since they are
        region measurements, not codes of the VAE's N(0, 1) prior.

        Examples:
            >>> z = model.code_prior.with_measured_channels(np.random.randn(2, 4, 4, 96), seed=0)
        """
        codes = np.array(codes, dtype="float32", copy=True)
        if codes.ndim != 4 or codes.shape[1:] != self.latent_shape:
            raise ValueError(
                f"`codes` must be (batch, {', '.join(map(str, self.latent_shape))}); received "
                f"shape {codes.shape}"
            )
        if self.measured is None:
            return codes
        batch_size, groups = len(codes), self.num_groups
        per_group = codes.reshape(*codes.shape[:3], groups, -1)  # a view of `codes`
        rng = np.random.default_rng(seed)
        first, end = self.measured_channels
        starts = np.concatenate([[0], np.cumsum(self.measured_counts)[:-1]])
        for g in np.flatnonzero(self.measured_counts):
            rows = starts[g] + rng.integers(0, self.measured_counts[g], batch_size)
            per_group[:, :, :, g, first:end] = self.measured[rows][:, None, None]
        return codes

    def save(self, path: str | os.PathLike) -> Path:
        """Writes the prior as a compressed .npz (no pickled objects)."""
        from smis_layers.utils.io import atomic_save_arrays

        names = _ARRAYS + (_MEASURED_ARRAYS if self.measured is not None else ())
        atomic_save_arrays(path, {name: np.asarray(getattr(self, name)) for name in names})
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> FittedCodePrior:
        """Reads a `save`d prior; a missing, truncated or foreign file is a ValueError."""
        from smis_layers.utils.io import read_npz_arrays

        arrays = read_npz_arrays(path, "code prior .npz")
        for old, new in zip(_WAVE_ARRAYS, _MEASURED_ARRAYS, strict=True):
            if old in arrays and new not in arrays:
                arrays[new] = arrays.pop(old)  # the same bank, of the texture channels only
        missing = [name for name in _ARRAYS if name not in arrays]
        if missing:
            raise ValueError(f"{path} is not a code prior: it lacks the arrays {missing}")
        return cls(**{name: arrays[name] for name in _ARRAYS + _MEASURED_ARRAYS if name in arrays})


def _gaussian(codes: np.ndarray, shrinkage: float, max_rank: int):
    """(mean, scale, count) of codes (n, d): scale (d, r) holds the shrunk covariance's r
    leading eigenvectors times the square roots of their eigenvalues; fewer than two codes give
    the standard prior."""
    d = codes.shape[1]
    rank = min(d, max_rank)
    if len(codes) < 2:
        return np.zeros(d), np.eye(d)[:, :rank], 0
    covariance = np.cov(codes, rowvar=False)
    covariance = (1 - shrinkage) * covariance + shrinkage * np.diag(np.diag(covariance))
    values, vectors = np.linalg.eigh(covariance)  # ascending
    values, vectors = values[::-1][:rank], vectors[:, ::-1][:, :rank]
    return codes.mean(0), vectors * np.sqrt(np.clip(values, 0.0, None)), len(codes)
