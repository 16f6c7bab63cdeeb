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


def test_a_second_wave_is_a_checkers_other_diagonal_and_absent_from_stripes(scenes):
    """`waves=2`: checked and dotted regions get a second wave of about the first's frequency
    and amplitude, 90 degrees from it, and their summed carrier follows the pixels better than
    the first wave's alone; striped regions get none."""
    batch, segmap, one = scenes
    two = to_numpy(region_texture_waves(batch["images"], segmap, waves=2))
    np.testing.assert_array_equal(two[..., :4], one)
    carriers = to_numpy(texture_carriers(two, (SIZE, SIZE)))
    first_only = to_numpy(texture_carriers(one, (SIZE, SIZE)))
    means = to_numpy(region_mean_colours(batch["images"], segmap))
    gains, turns, frequencies, amplitudes = [], [], [], []
    for b, c in _regions(batch, "checker") + _regions(batch, "dots"):
        first, second = two[b, c, :4], two[b, c, 4:]
        turn = np.degrees(np.arctan2(second[1], second[0]) - np.arctan2(first[1], first[0]))
        turns.append(abs(turn % 180 - 90))
        frequencies.append(np.hypot(*second[:2]) / np.hypot(*first[:2]))
        amplitudes.append(np.hypot(*second[2:]) / np.hypot(*first[2:]))
        region = batch["masks"][b] == c
        pixels = (batch["images"][b] - means[b, c])[region].sum(axis=-1)
        gains.append(
            abs(np.corrcoef(pixels, carriers[b][..., c][region])[0, 1])
            - abs(np.corrcoef(pixels, first_only[b][..., c][region])[0, 1])
        )
    assert len(gains) >= 6 and np.median(gains) > 0.1, gains
    assert np.median(turns) < 2.0 and np.mean(np.less(turns, 10.0)) >= 0.8, turns
    assert np.median(np.abs(np.log(frequencies))) < 0.05 and np.median(amplitudes) > 0.8
    stripes = _regions(batch, "stripes")
    assert np.mean([not two[b, c, 4:].any() for b, c in stripes]) >= 0.9
    with pytest.raises(ValueError, match=r"`waves` must be 1 or 2; received 3"):
        region_texture_waves(batch["images"][:1], segmap[:1], waves=3)


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
    with pytest.raises(ValueError, match="region_texture_code 1 -> 1, latent channels 8 -> 8"):
        weights_for_texture_code(target, target)


def test_a_one_wave_model_fine_tuned_into_two_waves_starts_as_it_was():
    """Two waves need 12 latent channels per class: the 4 inserted after the first wave start
    at zero in the decoder's `fc`, the encoder's channel moves after them, so the widened
    network decodes and encodes as the one-wave one (its second waves zero)."""
    from smis_layers import GroupDecreasingSchedule
    from smis_layers.models import GroupDNet
    from smis_layers.models.region_codes import weights_for_texture_code

    classes, size = 4, 32

    def model(latent_channels, waves, seed):
        schedule = GroupDecreasingSchedule.decreasing(
            classes, 2, size, latent_channels=latent_channels
        )
        return GroupDNet(
            classes,
            size,
            schedule=schedule,
            encoder_channels=8,
            region_colour_code=True,
            region_texture_code=waves,
            seed=seed,
        )

    source, target = model(8, 1, seed=1), model(12, 2, seed=2)
    target.set_weights(weights_for_texture_code(source, target))
    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, (2, size, size))
    condition = source.segmap(labels)
    z = rng.normal(size=(2, 4, 4, classes, 8)).astype("float32")
    z[..., 3:7] = z[:, :1, :1, :, 3:7]  # one wave per class over the grid
    widened = np.zeros((2, 4, 4, classes, 12), "float32")
    widened[..., :7], widened[..., 11] = z[..., :7], z[..., 7]
    np.testing.assert_allclose(
        to_numpy(target.decode(widened.reshape(2, 4, 4, -1), condition)),
        to_numpy(source.decode(z.reshape(2, 4, 4, -1), condition)),
        atol=1e-5,
    )
    images = rng.uniform(-1, 1, (2, size, size, 3)).astype("float32")
    ours = to_numpy(target.encode_segmap(images, condition)[0]).reshape(2, 4, 4, classes, 12)
    theirs = to_numpy(source.encode_segmap(images, condition)[0]).reshape(2, 4, 4, classes, 8)
    np.testing.assert_allclose(ours[..., :7], theirs[..., :7], atol=1e-5)
    np.testing.assert_allclose(ours[..., 11], theirs[..., 7], atol=1e-5)
    with pytest.raises(ValueError, match="latent channels 12 -> 8"):
        weights_for_texture_code(model(12, 0, seed=3), model(8, 1, seed=3))
