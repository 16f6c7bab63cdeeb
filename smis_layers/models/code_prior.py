"""FittedCodePrior: a Gaussian per class fitted to the encoder's codes of real images.

The paper draws random codes from the VAE prior N(0, 1). That is right only when the encoder's
posterior matches the prior, which the KL term enforces only as strongly as its weight allows.
With the small KL weights that keep the codes informative on the synthetic benchmark, the
posterior means of a trained model lie far inside the unit ball (per-class standard deviations
of 0.08-0.66 in the shipped GroupDNet), so N(0, 1) codes are out of distribution and decode to
noise. Ex-post density estimation (Ghosh et al., "From Variational to Deterministic
Autoencoders", ICLR 2020) fits a density to the posterior means of training images after
training and samples from it instead; this module fits one full-covariance Gaussian per class.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import keras
import numpy as np

from smis_layers.ops.checks import require_positive_int

_ARRAYS = ("mean", "scale_tril", "counts", "latent_shape")


class FittedCodePrior:
    """One Gaussian per class over that class's codes (its h x w x k latent block).

    Class c's code is modelled as N(mean[c], L[c] L[c]^T), fitted to the encoder's posterior
    means of the training images in which class c covers at least `min_pixels` pixels (every
    image for models whose code belongs to no class, such as VSPADE). A class seen in fewer
    than two images keeps the standard prior N(0, 1). Attach one to a model
    (`model.code_prior = prior`) and `sample_z` draws from it; presets ship it as
    `code_prior.npz`, which `from_preset` loads.

    Args:
        mean: (C, d) per-class means, d = h * w * k.
        scale_tril: (C, d, d) lower-triangular Cholesky factors of the covariances.
        counts: (C,) the number of codes each class was fitted to (0: standard prior).
        latent_shape: (h, w, k * C), the model's `latent_shape`.

    Example:

    >>> batch = SyntheticShapes(64, seed=0).batch(np.arange(2048))
    >>> model.code_prior = FittedCodePrior.fit(model, batch["images"], batch["masks"])
    >>> images = model.generate(masks, seed=0)  # codes drawn from the fitted prior

    Reference: Ghosh et al., "From Variational to Deterministic Autoencoders", ICLR 2020
    (ex-post density estimation).
    """

    def __init__(self, mean, scale_tril, counts, latent_shape):
        self.mean = np.asarray(mean, "float32")
        self.scale_tril = np.asarray(scale_tril, "float32")
        self.counts = np.asarray(counts, "int64")
        self.latent_shape = tuple(int(v) for v in latent_shape)
        if len(self.latent_shape) != 3:
            raise ValueError(
                f"`latent_shape` must be (h, w, channels); received {self.latent_shape}"
            )
        h, w, channels = self.latent_shape
        classes = self.mean.shape[0] if self.mean.ndim == 2 else -1
        if classes < 1 or channels % classes or self.mean.shape[1] != h * w * channels // classes:
            raise ValueError(
                f"`mean` must be (C, h * w * channels / C) for latent_shape {self.latent_shape}; "
                f"received {self.mean.shape}"
            )
        d = self.mean.shape[1]
        if self.scale_tril.shape != (classes, d, d):
            raise ValueError(
                f"`scale_tril` must have shape {(classes, d, d)}; received {self.scale_tril.shape}"
            )
        if self.counts.shape != (classes,):
            raise ValueError(f"`counts` must have shape {(classes,)}; received {self.counts.shape}")
        if not (np.isfinite(self.mean).all() and np.isfinite(self.scale_tril).all()):
            raise ValueError("`mean` and `scale_tril` must be finite")

    @property
    def num_classes(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def fit(
        cls,
        model,
        images,
        masks,
        batch_size: int = 64,
        min_pixels: int = 16,
        shrinkage: float = 0.05,
    ) -> FittedCodePrior:
        """Fits the prior to `model`'s posterior means of `images` and `masks`.

        Args:
            model: a GroupDNet-family model (`encode`, `latent_shape`, `num_classes`).
            images: (N, H, W, 3) training images in [-1, 1].
            masks: their label maps or one-hot masks.
            batch_size: images encoded at once.
            min_pixels: a class contributes an image's code only where it covers at least this
                many pixels (a few pixels give a code the decoder never sees at full size).
            shrinkage: weight of the covariance's diagonal in its shrunk estimate
                (1 - s) * S + s * diag(S), which keeps it well conditioned for few images.
        """
        batch_size = require_positive_int("batch_size", batch_size)
        min_pixels = require_positive_int("min_pixels", min_pixels)
        if not 0.0 <= float(shrinkage) <= 1.0:
            raise ValueError(f"`shrinkage` must be in [0, 1]; received {shrinkage!r}")
        images, masks = np.asarray(images), np.asarray(masks)
        if len(images) != len(masks) or len(images) < 2:
            raise ValueError(
                "`images` and `masks` must hold the same number (at least 2) of samples; "
                f"received {len(images)} images and {len(masks)} masks"
            )
        mu = np.concatenate(
            [
                model.encode(images[i : i + batch_size], masks[i : i + batch_size])[0]
                for i in range(0, len(images), batch_size)
            ]
        ).astype("float64")
        h, w, channels = model.latent_shape
        classes = model.num_classes
        k = channels // classes
        labels = masks.argmax(-1) if masks.ndim == 4 and masks.shape[-1] > 1 else masks
        labels = labels.reshape(len(labels), -1)
        class_owned = getattr(model, "class_owned_codes", True)
        d = h * w * k
        mean = np.zeros((classes, d))
        scale_tril = np.tile(np.eye(d), (classes, 1, 1))
        counts = np.zeros(classes, "int64")
        for c in range(classes):
            rows = (labels == c).sum(1) >= min_pixels if class_owned else slice(None)
            codes = mu[rows][..., c * k : (c + 1) * k].reshape(-1, d)
            if len(codes) < 2:
                continue
            covariance = np.cov(codes, rowvar=False)
            covariance = (1 - shrinkage) * covariance + shrinkage * np.diag(np.diag(covariance))
            covariance += 1e-6 * np.eye(d)
            mean[c], counts[c] = codes.mean(0), len(codes)
            scale_tril[c] = np.linalg.cholesky(covariance)
        return cls(mean, scale_tril, counts, model.latent_shape)

    def sample(self, batch_size: int, seed: int | None = None) -> np.ndarray:
        """Codes (batch_size, h, w, channels) as a float32 NumPy array."""
        batch_size = require_positive_int("batch_size", batch_size)
        h, w, channels = self.latent_shape
        classes, d = self.mean.shape
        eps = keras.ops.convert_to_numpy(
            keras.random.normal((batch_size, classes, d), seed=seed)
        ).astype("float32")
        codes = self.mean[None] + np.einsum("cij,bcj->bci", self.scale_tril, eps)
        codes = codes.reshape(batch_size, classes, h, w, channels // classes)
        return np.ascontiguousarray(codes.transpose(0, 2, 3, 1, 4).reshape(batch_size, h, w, -1))

    def save(self, path: str | os.PathLike) -> Path:
        """Writes the prior as a compressed .npz (no pickled objects)."""
        from smis_layers.presets import atomic_write_bytes

        buffer = io.BytesIO()
        np.savez_compressed(buffer, **{name: np.asarray(getattr(self, name)) for name in _ARRAYS})
        atomic_write_bytes(Path(path), buffer.getvalue())
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> FittedCodePrior:
        """Reads a `save`d prior; a missing, truncated or foreign file is a ValueError."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
            raise ValueError(
                f"{path} is not a readable code prior .npz (missing, truncated or corrupted?): "
                f"{error}"
            ) from None
        missing = [name for name in _ARRAYS if name not in arrays]
        if missing:
            raise ValueError(f"{path} is not a code prior: it lacks the arrays {missing}")
        return cls(**{name: arrays[name] for name in _ARRAYS})
