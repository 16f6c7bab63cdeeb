import keras
import numpy as np
import pytest

from smis_layers.models import MultiScaleDiscriminator
from smis_layers.models.discriminator import downsample_average
from tests.helpers import assert_save_load_round_trip, to_numpy


def test_official_structure():
    d = MultiScaleDiscriminator()  # official: 2 scales, n_layers_D 4, ndf 64
    outputs = d(np.zeros((1, 256, 256, 11), "float32"))
    assert len(outputs) == 2
    shapes = [[tuple(f.shape) for f in scale] for scale in outputs]
    assert shapes[0] == [
        (1, 129, 129, 64),
        (1, 65, 65, 128),
        (1, 33, 33, 256),
        (1, 34, 34, 512),
        (1, 35, 35, 1),
    ]
    assert shapes[1][0] == (1, 65, 65, 64)
    assert d.layer_filters == [64, 128, 256, 512]
    trainable = sum(int(np.prod(v.shape)) for v in d.trainable_variables)
    # Official NLayerDiscriminator x 2 with 8 + 3 input channels: first conv with bias, middle
    # convs spectral + instance norm (bias removed), last conv with bias.
    per_scale = (
        (64 * 11 * 16 + 64) + 128 * 64 * 16 + 256 * 128 * 16 + 512 * 256 * 16 + (512 * 16 + 1)
    )
    assert trainable == 2 * per_scale == 5_544_066  # official MultiscaleDiscriminator, C=8


def test_downsample_matches_pytorch_avg_pool():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).normal(size=(2, 9, 10, 3)).astype("float32")
    expected = (
        torch.nn.functional.avg_pool2d(
            torch.from_numpy(x.transpose(0, 3, 1, 2)),
            3,
            stride=2,
            padding=1,
            count_include_pad=False,
        )
        .numpy()
        .transpose(0, 2, 3, 1)
    )
    np.testing.assert_allclose(to_numpy(downsample_average(x)), expected, atol=1e-6)


def test_features_save_load_and_gradients(tmp_path):
    d = MultiScaleDiscriminator(num_scales=2, num_layers=3, base_filters=4)
    inputs = keras.Input((16, 16, 5))
    outputs = d(inputs)
    model = keras.Model(inputs, [f for scale in outputs for f in scale])
    x = np.random.rand(2, 16, 16, 5).astype("float32")
    assert_save_load_round_trip(model, x, tmp_path)
    clone = MultiScaleDiscriminator.from_config(d.get_config())
    assert clone.get_config() == d.get_config()


def test_bad_arguments():
    with pytest.raises(ValueError, match="`norm` must be one of"):
        MultiScaleDiscriminator(norm="group")
    with pytest.raises(ValueError, match="`num_scales` must be a positive integer"):
        MultiScaleDiscriminator(num_scales=0)
