"""The code channels measured from the image: region colours and texture waves."""

import numpy as np
import pytest

from smis_layers.data import SyntheticShapes
from smis_layers.data.synthetic import TEXTURES
from smis_layers.models.region_codes import (
    REGION_TEXTURE_FREQUENCY_SCALE,
    region_mean_colours,
    region_texture_waves,
    texture_carriers,
)
from tests.helpers import to_numpy

C, SIZE = 8, 64


@pytest.fixture(scope="module")
def scenes():
    batch = SyntheticShapes(SIZE, seed=1000).batch(np.arange(24))
    segmap = np.eye(C, dtype="float32")[batch["masks"]]
    waves = to_numpy(region_texture_waves(batch["images"], segmap))
    return batch, segmap, waves


def _regions(batch, family, min_pixels=128):
    index = TEXTURES.index(family)
    return [
        (b, c)
        for b in range(len(batch["masks"]))
        for c in range(C)
        if batch["texture"][b, c] == index and (batch["masks"][b] == c).sum() >= min_pixels
    ]


def test_stripes_give_their_wave_vector_and_phase(scenes):
    """A striped region's wave is the benchmark's: its frequency within 5 %, its angle within
    3 degrees (modulo pi), and the drawn carrier follows the region's pixels (correlation
    > 0.8 with every channel that alternates)."""
    batch, segmap, waves = scenes
    regions = _regions(batch, "stripes")
    assert len(regions) >= 6
    carriers = to_numpy(texture_carriers(waves, (SIZE, SIZE)))
    means = to_numpy(region_mean_colours(batch["images"], segmap))
    for b, c in regions:
        fx, fy = waves[b, c, :2] * REGION_TEXTURE_FREQUENCY_SCALE
        frequency, angle = batch["params"][b, c, :2]
        assert np.hypot(fx, fy) == pytest.approx(frequency, rel=0.05)
        error = (np.arctan2(fy, fx) - angle + np.pi / 2) % np.pi - np.pi / 2
        assert abs(np.degrees(error)) < 3.0
        region = batch["masks"][b] == c
        centred = (batch["images"][b] - means[b, c])[region]
        for channel in np.flatnonzero(centred.std(axis=0) > 0.05):
            correlation = np.corrcoef(centred[:, channel], carriers[b][..., c][region])[0, 1]
            assert abs(correlation) > 0.8, (b, c, channel, correlation)


def test_flat_and_absent_regions_give_zeros(scenes):
    batch, _, waves = scenes
    flat = [(b, c) for b, c in _regions(batch, "flat", min_pixels=1)]
    absent = [
        (b, c) for b in range(len(waves)) for c in range(C) if not (batch["masks"][b] == c).any()
    ]
    assert flat and absent
    for b, c in flat + absent:
        np.testing.assert_array_equal(waves[b, c], 0.0)
    textured = _regions(batch, "stripes") + _regions(batch, "checker")
    assert min(np.hypot(*waves[b, c, 2:]) for b, c in textured) > 0.3


def test_waves_are_the_same_for_a_shifted_phase_up_to_the_phase():
    """Moving a stripe pattern's phase by a quarter period turns the complex amplitude by a
    quarter turn and leaves the wave vector and the amplitude."""
    data = SyntheticShapes(SIZE, seed=1000)
    batch = data.batch(np.arange(24))
    b, c = _regions(batch, "stripes")[0]
    params = batch["params"].copy()
    params[b, c, 2] = (params[b, c, 2] + 0.25) % 1.0  # a quarter period
    images = data.render(batch["masks"], batch["palette"], batch["texture"], params)
    segmap = np.eye(C, dtype="float32")[batch["masks"]]
    before = to_numpy(region_texture_waves(batch["images"][b : b + 1], segmap[b : b + 1]))[0, c]
    after = to_numpy(region_texture_waves(images[b : b + 1], segmap[b : b + 1]))[0, c]
    np.testing.assert_allclose(after[:2], before[:2], atol=0.01)  # 0.08 cycles per unit
    assert np.hypot(*after[2:]) == pytest.approx(np.hypot(*before[2:]), rel=0.05)
    turned = np.angle(complex(*after[2:]) / complex(*before[2:]))
    # The phase is taken at the pixel origin: the frequencies' small differences (the peak
    # refined on other pixels) move it by up to 2 pi 0.03 over the unit image.
    assert abs(abs(turned) - np.pi / 2) < 0.35


@pytest.mark.parametrize("instance_edges", [False, True])
def test_a_model_fine_tuned_into_the_texture_code_starts_as_it_was(instance_edges):
    """`weights_for_texture_code`: the widened network decodes every code as the source did
    (the carrier inputs start at zero) and refuses a target that differs otherwise."""
    from smis_layers import GroupDecreasingSchedule
    from smis_layers.models import GroupDNet
    from smis_layers.models.region_codes import weights_for_texture_code

    classes, size = 4, 32
    config = {
        "num_classes": classes,
        "image_size": size,
        "schedule": GroupDecreasingSchedule.decreasing(classes, 2, size).get_config(),
        "encoder_channels": 8,
        "region_colour_code": True,
        "use_instance_edges": instance_edges,
    }
    source = GroupDNet(**config, seed=1)
    target = GroupDNet(**config, region_texture_code=True, seed=2)
    target.set_weights(weights_for_texture_code(source, target))
    labels = np.random.default_rng(0).integers(0, classes, (2, size, size))
    condition = source.condition_segmap(
        source.segmap(labels), instance_edges=np.zeros((2, size, size), "float32")
    )
    z = np.random.default_rng(1).normal(size=(2, *source.latent_shape)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(target.decode(z, condition)), to_numpy(source.decode(z, condition)), atol=1e-5
    )
    other = GroupDNet(**{**config, "encoder_channels": 4}, region_texture_code=True)
    with pytest.raises(ValueError, match=r"differ in \['encoder_channels'\]"):
        weights_for_texture_code(source, other)
    with pytest.raises(ValueError, match="region_texture_code=True"):
        weights_for_texture_code(target, target)
