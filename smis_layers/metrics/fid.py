"""Fréchet distance between feature distributions (FID), with any feature extractor."""

from __future__ import annotations

import os
from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from smis_layers.utils.validation import require_positive_int

INCEPTION_SIZE = 299


def _as_matrix(name: str, value, dim: int | None = None) -> np.ndarray:
    value = np.atleast_2d(np.asarray(value, dtype="float64"))
    if value.ndim != 2 or value.shape[0] != value.shape[1]:
        raise ValueError(f"`{name}` must be a square (D, D) matrix; received shape {value.shape}")
    if dim is not None and value.shape[0] != dim:
        raise ValueError(f"`{name}` must be ({dim}, {dim}); received shape {value.shape}")
    return value


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a (numerically) symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def trace_sqrt_product(sigma1, sigma2) -> float:
    """tr((sigma1 sigma2)^(1/2)) for symmetric PSD matrices, computed stably as the sum of the
    square roots of the eigenvalues of the symmetric PSD matrix sigma1^(1/2) sigma2 sigma1^(1/2)
    (it has the same eigenvalues as sigma1 sigma2). Unlike `scipy.linalg.sqrtm(sigma1 @ sigma2)`
    this needs no offset for singular covariances (fewer samples than dimensions)."""
    root = _psd_sqrt(np.asarray(sigma1, "float64"))
    inner = root @ np.asarray(sigma2, "float64") @ root
    values = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(np.sqrt(np.clip(values, 0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet (2-Wasserstein) distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    d^2 = ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2)); the FID is this
    value for Inception-v3 pool features of real and generated images.

    Args:
        mu1, mu2: (D,) means.
        sigma1, sigma2: (D, D) symmetric positive semi-definite covariances.

    Returns:
        The squared distance d^2 as a float (>= 0 up to round-off; that is what "FID" reports).

    Examples:
        >>> frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2))  # 2 + 2*(1+4-4)
        4.0

    Reference:
        Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
        Equilibrium", NeurIPS 2017. Dowson & Landau, "The Fréchet distance between multivariate
        normal distributions", J. Multivariate Analysis 1982.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype="float64"))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype="float64"))
    if mu1.ndim != 1 or mu1.shape != mu2.shape:
        raise ValueError(
            f"`mu1` and `mu2` must be vectors of the same length; received shapes {mu1.shape} "
            f"and {mu2.shape}"
        )
    sigma1 = _as_matrix("sigma1", sigma1, mu1.shape[0])
    sigma2 = _as_matrix("sigma2", sigma2, mu1.shape[0])
    diff = mu1 - mu2
    value = (
        diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    )
    return float(value)


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), covariance (D, D)) of features (N, D), the covariance with N - 1 (as the
    reference FID implementations)."""
    features = np.asarray(features, dtype="float64")
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"`features` must be (N, D) with N >= 2; received shape {features.shape}")
    return features.mean(0), np.cov(features, rowvar=False).reshape(
        features.shape[1], features.shape[1]
    )


@keras.saving.register_keras_serializable(package="smis_layers")
class FrechetDistance(keras.metrics.Metric):
    """Streaming Fréchet distance between the features of real and generated images (FID with
    an Inception-v3 extractor; a "domain FID" with a segmenter's features).

    `update_state(real_images, generated_images)` adds a batch of either or both (pass None for
    one of them to add only the other); the running sums of the features and of their outer
    products are kept in float64, so the result equals the batch formula on all the features.
    `result()` is the squared Fréchet distance of the two Gaussians fitted to the features.

    Args:
        feature_extractor: a callable (a Keras model or a function) mapping images in [-1, 1]
            (B, H, W, 3) to features (B, D) (e.g. `inception_v3_feature_extractor(path)` or
            `ShapesSegmenter.features`).
        feature_dim: D; None infers it on the first batch.
        name / dtype: `keras.metrics.Metric` arguments.

    Examples:
        >>> fid = FrechetDistance(inception_v3_feature_extractor("inception_notop.h5"))
        >>> for real, fake in batches:
        ...     fid.update_state(real, fake)
        >>> float(fid.result())

    Reference:
        Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
        Equilibrium", NeurIPS 2017.
    """

    def __init__(
        self,
        feature_extractor: Callable,
        feature_dim: int | None = None,
        name: str = "frechet_distance",
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        if not callable(feature_extractor):
            raise ValueError(
                f"`feature_extractor` must be callable (images -> (B, D) features); received "
                f"{feature_extractor!r}"
            )
        self.feature_extractor = feature_extractor
        self.feature_dim = None
        if feature_dim is not None:
            self._create_accumulators(require_positive_int("feature_dim", feature_dim))

    def _create_accumulators(self, dim: int):
        self.feature_dim = dim
        self.sums = {}
        for kind in ("real", "generated"):
            self.sums[kind] = (
                self.add_variable((), "zeros", dtype="float64", name=f"{kind}_count"),
                self.add_variable((dim,), "zeros", dtype="float64", name=f"{kind}_sum"),
                self.add_variable((dim, dim), "zeros", dtype="float64", name=f"{kind}_outer"),
            )

    def _features(self, images, name):
        features = ops.convert_to_tensor(self.feature_extractor(images))
        if len(features.shape) != 2:
            raise ValueError(
                f"The feature extractor must return (B, D) features; it returned shape "
                f"{tuple(features.shape)} for `{name}` of shape {tuple(np.shape(images))}"
            )
        if self.feature_dim is None:
            self._create_accumulators(int(features.shape[1]))
        elif features.shape[1] != self.feature_dim:
            raise ValueError(
                f"The feature extractor returned {features.shape[1]} features for `{name}`; "
                f"expected feature_dim={self.feature_dim}"
            )
        features = ops.cast(features, "float64")
        if not np.all(np.isfinite(ops.convert_to_numpy(features))):
            raise ValueError(
                f"The feature extractor returned NaN or infinite features for `{name}`; check "
                "the images (expected finite values in [-1, 1])"
            )
        return features

    def update_state(self, real_images=None, generated_images=None, sample_weight=None):
        """Adds real and/or generated images (either may be None). `sample_weight` is not
        supported."""
        if sample_weight is not None:
            raise ValueError("`sample_weight` is not supported by FrechetDistance; pass None")
        for kind, images in (("real", real_images), ("generated", generated_images)):
            if images is None:
                continue
            features = self._features(images, f"{kind}_images")
            count, total, outer = self.sums[kind]
            count.assign_add(ops.cast(ops.shape(features)[0], "float64"))
            total.assign_add(ops.sum(features, axis=0))
            outer.assign_add(ops.matmul(ops.transpose(features), features))

    def update_features(self, real_features=None, generated_features=None):
        """Adds precomputed features (B, D) instead of images."""
        for kind, features in (("real", real_features), ("generated", generated_features)):
            if features is None:
                continue
            features = np.asarray(features, "float64")
            if not np.all(np.isfinite(features)):
                raise ValueError(f"`{kind}_features` holds NaN or infinite values")
            if features.ndim != 2:
                raise ValueError(
                    f"`{kind}_features` must be (B, D); received shape {features.shape}"
                )
            if self.feature_dim is None:
                self._create_accumulators(features.shape[1])
            count, total, outer = self.sums[kind]
            count.assign_add(float(features.shape[0]))
            total.assign_add(features.sum(0))
            outer.assign_add(features.T @ features)

    def statistics(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """(mean, covariance) of the "real" or "generated" features added so far."""
        if kind not in ("real", "generated"):
            raise ValueError(f'`kind` must be "real" or "generated"; received {kind!r}')
        if self.feature_dim is None:
            raise ValueError("FrechetDistance has no features yet; call update_state first")
        count, total, outer = (np.asarray(ops.convert_to_numpy(v)) for v in self.sums[kind])
        count = float(count)
        if count < 2:
            raise ValueError(
                f"FrechetDistance needs at least 2 {kind} samples; it has {int(count)}"
            )
        mean = total / count
        covariance = (outer - count * np.outer(mean, mean)) / (count - 1)
        return mean, covariance

    def result(self):
        """The squared Fréchet distance (a float64 scalar tensor). Computed eagerly in NumPy
        (float64 eigendecompositions), so call it outside compiled functions."""
        mu1, sigma1 = self.statistics("real")
        mu2, sigma2 = self.statistics("generated")
        return ops.convert_to_tensor(frechet_distance(mu1, sigma1, mu2, sigma2), dtype="float64")

    def reset_state(self):
        if self.feature_dim is None:
            return
        for variables in self.sums.values():
            for variable in variables:
                variable.assign(ops.zeros_like(variable))

    def get_config(self):
        return {
            **super().get_config(),
            "feature_extractor": keras.saving.serialize_keras_object(self.feature_extractor),
            "feature_dim": self.feature_dim,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["feature_extractor"] = keras.saving.deserialize_keras_object(
            config["feature_extractor"]
        )
        return cls(**config)


def inception_v3_feature_extractor(weights_path: str | os.PathLike) -> keras.Model:
    """Inception-v3 pool3 features (B, 2048) of images in [-1, 1], the FID's feature extractor.

    The images are resized (bilinear) to 299 x 299; [-1, 1] is already Inception-v3's input
    range in Keras (`keras.applications.inception_v3.preprocess_input` maps 0-255 to [-1, 1]).

    Args:
        weights_path: a local file of `keras.applications.InceptionV3(include_top=False)`
            weights, e.g. `inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5` as Keras
            caches its download (see docs/evaluation.md). Nothing is downloaded.

    Returns:
        A `keras.Model` mapping (B, H, W, 3) images in [-1, 1] to (B, 2048) features.

    Note: Keras's ImageNet Inception-v3 is not the TF1 graph of the original FID code
    (pytorch-fid's `pt_inception-2015-12-05` weights); scores are comparable between models
    measured with the same extractor, not with published FIDs.

    Examples:
        >>> fid = FrechetDistance(inception_v3_feature_extractor("inception_notop.h5"))
    """
    if not os.path.isfile(weights_path):
        raise FileNotFoundError(
            f"Inception-v3 weights file not found: {weights_path!r}. It is never downloaded; "
            "see docs/evaluation.md for how to obtain "
            "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
        )
    inception = keras.applications.InceptionV3(
        include_top=False,
        weights=None,
        input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3),
        pooling="avg",
    )
    inception.load_weights(weights_path)
    inception.trainable = False
    inputs = keras.Input((None, None, 3), name="images")
    resized = keras.layers.Resizing(
        INCEPTION_SIZE, INCEPTION_SIZE, interpolation="bilinear", name="resize_299"
    )(inputs)
    return keras.Model(inputs, inception(resized), name="inception_v3_features")
