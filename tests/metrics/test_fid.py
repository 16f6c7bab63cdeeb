import keras
import numpy as np
import pytest

from smis_layers.metrics.fid import (
    FrechetDistance,
    feature_statistics,
    frechet_distance,
    inception_v3_feature_extractor,
)


def _random_covariance(rng, d, rank=None):
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / d


def _scipy_frechet(mu1, s1, mu2, s2):
    linalg = pytest.importorskip("scipy.linalg")
    root = linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * np.real(root)))


def test_closed_form_for_diagonal_covariances():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    s1, s2 = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
    expected = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    actual = frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert actual == pytest.approx(expected, rel=1e-10)


def test_full_covariances_match_scipy_sqrtm():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = _random_covariance(rng, 6), _random_covariance(rng, 6)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(
        _scipy_frechet(mu1, s1, mu2, s2), rel=1e-8
    )


def test_identical_and_singular_distributions():
    rng = np.random.default_rng(2)
    mu = rng.normal(size=8)
    sigma = _random_covariance(rng, 8, rank=3)  # singular, as with fewer samples than features
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6
    assert frechet_distance(mu, sigma, mu + 1, sigma) == pytest.approx(8.0, abs=1e-6)


def test_streaming_metric_on_large_samples_approaches_the_closed_form():
    rng = np.random.default_rng(3)
    d, n = 3, 40000
    mu1, mu2 = np.array([0.0, 1.0, -1.0]), np.array([0.5, 0.0, -1.0])
    s1, s2 = _random_covariance(rng, d), _random_covariance(rng, d)
    x1 = rng.multivariate_normal(mu1, s1, n).astype("float32")
    x2 = rng.multivariate_normal(mu2, s2, n).astype("float32")
    metric = FrechetDistance(lambda images: keras.ops.reshape(images, (-1, d)))
    for i in range(0, n, 10000):  # "images" of shape (B, 1, 1, 3)
        metric.update_state(x1[i : i + 10000, None, None], None)
        metric.update_state(None, x2[i : i + 10000, None, None])
    value = float(np.asarray(metric.result()))
    exact = frechet_distance(mu1, s1, mu2, s2)
    assert value == pytest.approx(exact, rel=0.05)
    # the streaming sums equal the batch formula on all the features
    batch = frechet_distance(*feature_statistics(x1), *feature_statistics(x2))
    assert value == pytest.approx(batch, rel=1e-6)
    mean, covariance = metric.statistics("real")
    np.testing.assert_allclose(mean, x1.astype("float64").mean(0), atol=1e-9)
    np.testing.assert_allclose(covariance, np.cov(x1.astype("float64"), rowvar=False), atol=1e-9)


def test_update_features_reset_and_errors():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(60, 4)) + 2
    metric = FrechetDistance(lambda x: x, feature_dim=4)
    metric.update_features(a, b)
    expected = frechet_distance(*feature_statistics(a), *feature_statistics(b))
    assert float(np.asarray(metric.result())) == pytest.approx(expected, rel=1e-9)
    metric.reset_state()
    with pytest.raises(ValueError, match="at least 2 real samples; it has 0"):
        metric.result()
    with pytest.raises(ValueError, match="expected feature_dim=4"):
        metric.update_state(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"must return \(B, D\) features"):
        FrechetDistance(lambda x: x).update_state(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="`feature_extractor` must be callable"):
        FrechetDistance("inception")
    with pytest.raises(ValueError, match="`sigma1` must be"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="`mu1` and `mu2` must be vectors of the same length"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_inception_extractor_needs_a_local_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        inception_v3_feature_extractor(tmp_path / "missing.h5")
