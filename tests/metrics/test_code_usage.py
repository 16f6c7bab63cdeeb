import numpy as np
import pytest

from smis_layers import GroupDecreasingSchedule
from smis_layers.data.synthetic import SyntheticShapes
from smis_layers.metrics.code_usage import code_information, gaussian_kl_nats
from smis_layers.models import GroupDNet
from smis_layers.training.losses import kl_divergence_loss
from tests.metrics.fakes import CopyGenerator

C = 4


def small_groupdnet(**config) -> GroupDNet:
    schedule = GroupDecreasingSchedule.decreasing(C, 2, 64)
    return GroupDNet(num_classes=C, image_size=64, schedule=schedule, encoder_channels=8, **config)


def test_gaussian_kl_matches_the_closed_form():
    mu, logvar = np.array([0.0, 1.0, 0.5]), np.array([0.0, 0.0, np.log(4.0)])
    expected = 0.5 * (np.exp(logvar) + mu**2 - 1.0 - logvar)
    np.testing.assert_allclose(gaussian_kl_nats(mu, logvar), expected)
    assert gaussian_kl_nats(0.0, 0.0) == 0.0


def test_each_class_is_charged_for_its_own_channels():
    """CopyGenerator stores each class's pixels in its own 3 channels with logvar 0, so a class's
    nats are 0.5 * sum of its pixels' squares; a class absent from an image carries nothing."""
    masks = np.zeros((2, 4, 4), "int32")
    masks[0, :2] = 1  # image 0: classes 0 and 1; image 1: class 0 only
    images = np.full((2, 4, 4, 3), 0.5, "float32")
    info = code_information(CopyGenerator(C, 4), images, masks, batch_size=1)
    pixels = np.array([[8, 8, 0, 0], [16, 0, 0, 0]])  # pixels per (image, class)
    per_image_class = 0.5 * 0.25 * 3 * pixels
    np.testing.assert_allclose(info["nats_per_class"], per_image_class.mean(0))
    np.testing.assert_allclose(info["nats_present_class"][:2], [per_image_class[:, 0].mean(), 3.0])
    assert np.isnan(info["nats_present_class"][2:]).all()
    assert info["nats_per_image"] == pytest.approx(per_image_class.sum(1).mean())


def test_groupdnet_nats_equal_the_training_kl_per_image():
    data = SyntheticShapes(image_size=64, num_classes=C, seed=3).batch(np.arange(3))
    model = small_groupdnet()
    info = code_information(model, data["images"], data["masks"], batch_size=2)
    mu, logvar = model.encode(data["images"], data["masks"])
    assert info["nats_per_image"] == pytest.approx(
        float(kl_divergence_loss(mu, logvar)) / 3, rel=1e-4
    )
    assert info["nats_per_class"].sum() == pytest.approx(info["nats_per_image"], rel=1e-6)
    with pytest.raises(ValueError, match="as many samples"):
        code_information(model, data["images"][:2], data["masks"])


def test_region_colour_channels_are_not_counted():
    """The colour channels hold the region's mean colour with a fixed variance, not the
    encoder's output: the count is the KL of the encoder's channels alone."""
    from smis_layers.models.groupdnet.groupdnet import REGION_COLOUR_CHANNELS

    data = SyntheticShapes(image_size=64, num_classes=C, seed=3).batch(np.arange(2))
    model = small_groupdnet(region_colour_code=True)
    info = code_information(model, data["images"], data["masks"])
    mu, logvar = model.encode(data["images"], data["masks"])
    kl = gaussian_kl_nats(mu, logvar)
    per_class = kl.reshape(*kl.shape[:3], C, -1)
    colour = per_class[..., :REGION_COLOUR_CHANNELS].sum() / 2
    learned = per_class[..., REGION_COLOUR_CHANNELS:].sum() / 2
    assert colour > 4 * REGION_COLOUR_CHANNELS * C  # what the count would be inflated by
    assert info["nats_per_image"] == pytest.approx(learned, rel=1e-6)
    assert info["nats_per_class"].sum() == pytest.approx(learned, rel=1e-6)
