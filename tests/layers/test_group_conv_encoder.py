import keras
import numpy as np
import pytest

from smis_layers import ClassMaskSplit, GroupConvEncoder
from tests import torch_reference as ref
from tests.helpers import (
    assert_all_weights_get_gradient,
    assert_fits,
    assert_save_load_round_trip,
    blocky_segmap,
    to_numpy,
)

C = 4


def _split_input(size=32, seed=0):
    return np.random.default_rng(seed).normal(size=(2, size, size, 3 * C)).astype("float32")


def test_shapes_and_latent_layout():
    encoder = GroupConvEncoder(C, base_channels=8, num_layers=3, latent_channels=8)
    mu, logvar = encoder(_split_input())
    assert tuple(mu.shape) == tuple(logvar.shape) == (2, 4, 4, 8 * C)
    assert encoder.compute_output_shape((2, 32, 32, 3 * C)) == ((2, 4, 4, 32),) * 2
    assert encoder.layer_channels == [8, 16, 32]
    assert GroupConvEncoder(C, 8, 6).layer_channels == [8, 16, 32, 64, 64, 64]


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_class_isolation(norm):
    encoder = GroupConvEncoder(C, base_channels=8, num_layers=3, latent_channels=2, norm=norm)
    x = _split_input()
    base = [to_numpy(t) for t in encoder(x, training=False)]
    rng = np.random.default_rng(1)
    for c in range(C):
        changed = x.copy()
        changed[..., 3 * c : 3 * c + 3] += rng.normal(size=(2, 32, 32, 3))
        for out, ref_out in zip(encoder(changed, training=False), base, strict=True):
            diff = np.abs(to_numpy(out) - ref_out).reshape(2, 4, 4, C, 2).max((0, 1, 2, 4))
            assert diff[c] > 1e-4 and np.all(np.delete(diff, c) <= 1e-6), diff


def test_class_code_depends_only_on_class_pixels():
    split = ClassMaskSplit(C, mode="crop_resize")
    encoder = GroupConvEncoder(C, base_channels=8, num_layers=3, latent_channels=2)
    rng = np.random.default_rng(2)
    images = rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    segmap = blocky_segmap(2, 32, 32, C, block=8, seed=4)
    mu, _ = encoder(split(images, segmap))
    for c in range(C):
        changed = np.where(segmap[..., c : c + 1] > 0, -images, images)
        mu_changed, _ = encoder(split(changed, segmap))
        diff = np.abs(to_numpy(mu_changed) - to_numpy(mu)).reshape(2, 4, 4, C, 2).max((0, 1, 2, 4))
        assert diff[c] > 1e-4 and np.all(np.delete(diff, c) <= 1e-6), diff


@pytest.mark.parametrize("norm", ["instance", "none"])
def test_instance_norm_codes_ignore_a_class_contrast(norm):
    # Bias-free convolutions followed by instance norm are blind to scaling a class's pixels
    # around 0 (a darker or paler copy of a flat colour gives the same code); without the
    # normalization the codes see it.
    split = ClassMaskSplit(C, mode="crop_resize")
    encoder = GroupConvEncoder(C, base_channels=8, num_layers=3, latent_channels=2, norm=norm)
    images = np.random.default_rng(5).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    segmap = blocky_segmap(2, 32, 32, C, block=8, seed=4)
    mu, _ = encoder(split(images, segmap))
    mu_scaled, _ = encoder(split(0.5 * images, segmap))
    change = np.abs(to_numpy(mu_scaled) - to_numpy(mu)).max()
    relative = change / np.abs(to_numpy(mu)).max()
    assert relative < 1e-3 if norm == "instance" else relative > 0.1, relative


@pytest.mark.parametrize(
    "num_classes, ndf, official_count",
    [(8, 256, 12_835_712), (35, 350, 5_768_210), (151, 604, 4_411_012)],
    ids=["deepfashion", "cityscapes", "ade20k"],
)
def test_official_parameter_counts(num_classes, ndf, official_count):
    # Counts of the official ConvEncoder (crop >= 256: six stride-2 layers), computed by
    # instantiating the official PyTorch code.
    encoder = GroupConvEncoder(
        num_classes, base_channels=ndf, num_layers=6, kernel_initializer="zeros"
    )
    encoder.build((None, 256, 256, 3 * num_classes))
    trainable = sum(int(np.prod(v.shape)) for v in encoder.trainable_variables)
    assert trainable == official_count
    assert all(conv.layer.bias is None for conv in encoder.convs)  # bias dropped before norm


def test_matches_pytorch_reference():
    torch = pytest.importorskip("torch")
    encoder = GroupConvEncoder(
        C,
        base_channels=8,
        num_layers=3,
        latent_channels=2,
        spectral_norm=False,
        kernel_initializer="random_normal",
    )
    x = _split_input(size=30, seed=3)  # even and odd sizes after stride 2: PyTorch padding
    mu, logvar = (to_numpy(t) for t in encoder(x))
    with torch.no_grad():
        h = ref.nchw(x)
        for conv in encoder.convs:
            h = torch.nn.functional.leaky_relu(
                ref.param_free_norm(ref.grouped_conv(h, conv, 1), "instance"), 0.2
            )
        expected_mu = ref.nhwc(ref.grouped_conv(h, encoder.fc_mu, 1))
        expected_logvar = ref.nhwc(ref.grouped_conv(h, encoder.fc_var, 1))
    np.testing.assert_allclose(mu, expected_mu, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(logvar, expected_logvar, atol=1e-4, rtol=1e-4)


def test_reparameterize():
    mu = keras.ops.convert_to_tensor(np.full((2000, 8), 3.0, "float32"))
    logvar = keras.ops.convert_to_tensor(np.full((2000, 8), np.log(4.0), "float32"))
    z = to_numpy(GroupConvEncoder.reparameterize(mu, logvar, seed=7))
    np.testing.assert_array_equal(z, to_numpy(GroupConvEncoder.reparameterize(mu, logvar, seed=7)))
    assert abs(z.mean() - 3.0) < 0.1 and abs(z.std() - 2.0) < 0.1


def test_gradients_save_load_fit(tmp_path):
    x = _split_input(16)
    assert_all_weights_get_gradient(
        GroupConvEncoder(C, 4, 2, latent_channels=2, spectral_norm=False, norm="none"), [x]
    )
    inputs = keras.Input((16, 16, 3 * C))
    mu, logvar = GroupConvEncoder(C, 4, 2, latent_channels=2, name="enc")(inputs)
    model = keras.Model(inputs, keras.layers.Concatenate()([mu, logvar]))
    restored = assert_save_load_round_trip(model, x, tmp_path)
    assert restored.get_layer("enc").get_config() == model.get_layer("enc").get_config()
    assert_fits(model, x, np.zeros((2, 4, 4, 4 * C), "float32"))


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"`base_channels` \(6\) must be divisible by"):
        GroupConvEncoder(4, 6, 3)
    with pytest.raises(ValueError, match=r"`inputs` must have 12 channels .*9 channels"):
        GroupConvEncoder(4, 8, 3)(np.zeros((1, 16, 16, 9), "float32"))
    with pytest.raises(ValueError, match="`norm` must be one of"):
        GroupConvEncoder(4, 8, 3, norm="layer")
