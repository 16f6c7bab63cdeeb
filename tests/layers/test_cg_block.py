import keras
import numpy as np
import pytest

from smis_layers import CGBlock
from tests import torch_reference as ref
from tests.helpers import (
    assert_all_weights_get_gradient,
    assert_fits,
    assert_save_load_round_trip,
    blocky_segmap,
    to_numpy,
)

C = 4


def _x(channels, size=8, seed=0):
    return np.random.default_rng(seed).normal(size=(2, size, size, channels)).astype("float32")


@pytest.mark.parametrize("spectral_norm", [False, True])
@pytest.mark.parametrize("in_channels, filters", [(8, 8), (16, 8)])
def test_group_isolation(in_channels, filters, spectral_norm):
    block = CGBlock(filters, groups=C, norm_hidden_channels=8, spectral_norm=spectral_norm)
    x, segmap = _x(in_channels), blocky_segmap(2, 16, 16, C, block=2)
    base = to_numpy(block(x, segmap, training=False))
    per_in, per_out = in_channels // C, filters // C
    rng = np.random.default_rng(5)
    for g in range(C):
        changed = x.copy()
        changed[..., g * per_in : (g + 1) * per_in] += rng.normal(size=(2, 8, 8, per_in))
        mask_changed = segmap.copy()
        mask_changed[:, 4:12, :, g] = 1.0 - mask_changed[:, 4:12, :, g]
        for out in (block(changed, segmap, training=False), block(x, mask_changed, training=False)):
            diff = np.abs(to_numpy(out) - base).reshape(2, 8, 8, C, per_out).max((0, 1, 2, 4))
            assert diff[g] > 1e-3 and np.all(np.delete(diff, g) <= 1e-6), diff


@pytest.mark.parametrize("in_channels, filters", [(8, 8), (16, 8), (8, 12)])
def test_matches_pytorch_reference(in_channels, filters):
    torch = pytest.importorskip("torch")
    block = CGBlock(
        filters,
        groups=2,
        norm_hidden_channels=8,
        norm_shared_groups=C,
        spectral_norm=False,
        norm="instance",
        kernel_initializer="random_normal",
    )
    x, segmap = _x(in_channels, seed=1), blocky_segmap(2, 32, 32, C, block=1, seed=3)
    out = to_numpy(block(x, segmap))
    assert block.learned_shortcut == (in_channels != filters)
    assert out.shape == (2, 8, 8, filters) == block.compute_output_shape(x.shape, segmap.shape)
    with torch.no_grad():
        expected = ref.nhwc(ref.cg_block(ref.nchw(x), ref.nchw(segmap), block))
    np.testing.assert_allclose(out, expected, atol=1e-4, rtol=1e-4)


def test_structure_matches_the_official_block():
    block = CGBlock(8, groups=2, norm_hidden_channels=16)
    block.build((None, 8, 8, 16), (None, 32, 32, C))
    names = sorted({v.path.split("/")[1] for v in block.weights})
    assert names == ["conv_0_sn", "conv_1_sn", "conv_s_sn", "norm_0", "norm_1", "norm_s"]
    assert block.conv_s.layer.bias is None and block.conv_s.layer.kernel_size == (1, 1)
    assert tuple(block.conv_0.layer.kernel.shape) == (3, 3, 8, 8)  # fin -> min(fin, fout)


def test_gradients_save_load_fit(tmp_path):
    x, segmap = _x(8), blocky_segmap(2, 16, 16, C, block=2)
    assert_all_weights_get_gradient(
        CGBlock(4, groups=2, norm_hidden_channels=4, spectral_norm=False), [x, segmap]
    )
    x_in, seg_in = keras.Input((8, 8, 8)), keras.Input((16, 16, C))
    out = CGBlock(4, groups=2, norm_hidden_channels=4, name="blk")(x_in, seg_in)
    model = keras.Model([x_in, seg_in], out)
    restored = assert_save_load_round_trip(model, [x, segmap], tmp_path)
    assert restored.get_layer("blk").get_config() == model.get_layer("blk").get_config()
    # conv_0's bias feeds norm_1's normalization, which removes it: zero gradient, as officially.
    assert_fits(
        model, [x, segmap], np.zeros((2, 8, 8, 4), "float32"), unchanged_ok=("conv_0/bias",)
    )
    config = model.get_layer("blk").get_config()
    assert CGBlock.from_config(config).get_config() == config


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"`filters` \(6\) must be divisible by `groups` \(4\)"):
        CGBlock(6, groups=4)
    with pytest.raises(ValueError, match=r"`x channels` \(6\) must be divisible by `groups`"):
        CGBlock(8, groups=4, norm_hidden_channels=8)(_x(6), blocky_segmap(2, 8, 8, 4))
    with pytest.raises(ValueError, match="`norm` must be one of"):
        CGBlock(8, groups=4, norm="group")
