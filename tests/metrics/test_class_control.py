import numpy as np
import pytest

from smis_layers.metrics.class_control import class_code_control, reconstruction_colour_errors
from tests.metrics.fakes import CopyGenerator, FakeGenerator


class _Sampling(FakeGenerator):
    """FakeGenerator with `sample_z`'s keywords (`resample_class` passes them)."""

    def sample_z(self, batch, seed=None, spatially_shared=False, prior="auto"):
        return super().sample_z(batch, seed).astype("float32")


def _labels(scenes=3, size=8):
    labels = np.zeros((scenes, size, size), "int32")
    labels[:, :4] = 1  # class 1 covers half of every scene, class 2 one row of the first
    labels[0, -1] = 2
    return labels


def test_a_code_that_paints_only_its_region_is_used_and_isolated():
    control = class_code_control(_Sampling(kind="isolated"), _labels(), 1, min_pixels=8)
    assert control["usage"].shape == (3,) and np.all(control["usage"] > 0.1)
    assert np.all(control["isolation"] > 1e3)  # nothing outside the region moves


def test_an_ignored_code_has_no_usage_and_an_entangled_one_no_isolation():
    ignored = class_code_control(_Sampling(kind="ignore_z"), _labels(), 1, min_pixels=8)
    np.testing.assert_array_equal(ignored["usage"], 0.0)
    entangled = class_code_control(_Sampling(kind="entangled"), _labels(), 1, min_pixels=8)
    np.testing.assert_allclose(entangled["isolation"], 1.0, rtol=1e-5)


def test_small_regions_are_skipped_and_bad_arguments_named():
    model = _Sampling(kind="isolated")
    assert class_code_control(model, _labels(), 2, min_pixels=8)["usage"].shape == (1,)
    assert class_code_control(model, _labels(), 2, min_pixels=9)["usage"].size == 0
    with pytest.raises(ValueError, match=r"num_redraws.*at least 2; received 1"):
        class_code_control(model, _labels(), 1, num_redraws=1)


def test_reconstruction_errors_per_class():
    labels = _labels()
    images = np.random.default_rng(0).uniform(-1, 1, (3, 8, 8, 3)).astype("float32")
    # A perfect autoencoder: 0 for the classes present, NaN for one never present.
    errors = reconstruction_colour_errors(CopyGenerator(4, 8), images, labels, min_pixels=8)
    np.testing.assert_allclose(errors[:3], 0.0, atol=1e-6)
    assert np.isnan(errors[3])

    class Shifted(CopyGenerator):  # every reconstruction 0.2 too bright
        def generate(self, labels, z=None, seed=None):
            return super().generate(labels, z) + 0.2

    errors = reconstruction_colour_errors(Shifted(4, 8), images, labels, min_pixels=8)
    np.testing.assert_allclose(errors[:3], 0.2, atol=1e-6)
    with pytest.raises(ValueError, match=r"must match; received \(3, 8, 8, 3\) and \(2, 8, 8\)"):
        reconstruction_colour_errors(CopyGenerator(4, 8), images, labels[:2])
