"""scripts/quality_gap_probe.py's measures: the mean-colour painting and the code probe, which
must find texture where the features carry it and none where they do not."""

from __future__ import annotations

import numpy as np
import pytest

from smis_layers.data.synthetic import SyntheticShapes
from tests.helpers import load_script


@pytest.fixture(scope="module")
def probe():
    return load_script("quality_gap_probe")


def test_mean_colour_images_paint_each_region_its_own_mean(probe):
    batch = SyntheticShapes(64, 4, seed=3).batch(np.arange(2))
    images, labels = batch["images"], batch["masks"]
    painted = probe.mean_colour_images(images, labels, 4)
    for b in range(2):
        for c in np.unique(labels[b]):
            region = labels[b] == c
            expected = np.broadcast_to(images[b][region].mean(axis=0), (region.sum(), 3))
            np.testing.assert_allclose(painted[b][region], expected, atol=2e-5)  # float32 sums


class _StandIn:
    """A model whose class code holds the region's (cos 2a, sin 2a, frequency) in 3 of its 5
    channels (`informative`) or only noise; `_Scenes` hands it each batch's factors."""

    num_classes = 4

    def __init__(self, informative: bool):
        self.informative = informative
        self.rng = np.random.default_rng(0)
        self.params = None

    def encode(self, images, labels):
        code = self.rng.normal(size=(len(images), 4, 5))
        if self.informative:
            angle, frequency = self.params[..., 1], self.params[..., 0]
            code[..., :3] = np.stack([np.cos(2 * angle), np.sin(2 * angle), frequency], -1)
        return code.reshape(len(images), 1, 1, 20), None

    def class_code(self, mu, class_index):
        return mu[..., 5 * class_index : 5 * (class_index + 1)]


class _Scenes(SyntheticShapes):
    """SyntheticShapes that hands each batch's factors to the stand-in model."""

    model: _StandIn | None = None

    def batch(self, indices):
        batch = super().batch(indices)
        self.model.params = batch["params"]
        return batch


@pytest.mark.parametrize("informative", [True, False])
def test_code_probe_finds_texture_only_where_the_codes_carry_it(probe, informative):
    model = _StandIn(informative)
    scenes = _Scenes(64, 4, seed=5)
    scenes.model = model
    result = probe.code_probe(model, scenes, 256)
    assert result["stripe_regions"] > 50
    if informative:
        assert result["stripe_angle_r2"] > 0.95 and result["stripe_frequency_r2"] > 0.95
    else:
        assert result["stripe_angle_r2"] < 0.1 and result["stripe_frequency_r2"] < 0.1
    colour = probe.code_probe(None, scenes, 256)  # the mean colour says nothing of orientation
    assert colour["stripe_angle_r2"] < 0.1
