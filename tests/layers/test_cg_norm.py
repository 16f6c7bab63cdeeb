import keras
import numpy as np
import pytest

from smis_layers import CGNorm
from tests import torch_reference as ref
from tests.helpers import (
    assert_all_weights_get_gradient,
    assert_fits,
    assert_save_load_round_trip,
    blocky_segmap,
    to_numpy,
)

C = 4


def _x(channels=8, size=8, seed=0):
    return np.random.default_rng(seed).normal(size=(2, size, size, channels)).astype("float32")


def _group_diffs(out, base, groups):
    return np.abs(out - base).reshape(*out.shape[:3], groups, -1).max(axis=(0, 1, 2, 4))


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_group_isolation_through_x_and_mask(norm):
    layer = CGNorm(groups=C, hidden_channels=2 * C, norm=norm)
    x, segmap = _x(), blocky_segmap(2, 16, 16, C, block=2)
    base = to_numpy(layer(x, segmap, training=True))
    rng = np.random.default_rng(3)
    for g in range(C):
        x_changed = x.copy()
        x_changed[..., 2 * g : 2 * g + 2] += rng.normal(size=(2, 8, 8, 2))
        diff = _group_diffs(to_numpy(layer(x_changed, segmap, training=True)), base, C)
        assert diff[g] > 1e-3 and np.all(np.delete(diff, g) <= 1e-6), diff

        mask_changed = segmap.copy()
        mask_changed[:, :8, :, g] = 1.0 - mask_changed[:, :8, :, g]
        diff = _group_diffs(to_numpy(layer(x, mask_changed, training=True)), base, C)
        assert diff[g] > 1e-3 and np.all(np.delete(diff, g) <= 1e-6), diff


@pytest.mark.parametrize("norm", ["batch", "instance"])
@pytest.mark.parametrize(
    "variant",
    [
        {"groups": 2, "hidden_channels": 16, "mask_channels": C},  # DeepFashion-style
        {"groups": C, "hidden_channels": C * 2, "shared_groups": C, "mask_channels": 2 * C},
        {"groups": 2, "hidden_channels": 2 * C, "shared_groups": C, "mask_channels": C},  # ADE
    ],
    ids=["deepfashion", "cityscapes", "ade20k"],
)
def test_matches_pytorch_reference(variant, norm):
    torch = pytest.importorskip("torch")
    variant = dict(variant)
    mask_channels = variant.pop("mask_channels")
    layer = CGNorm(norm=norm, kernel_initializer="random_normal", **variant)
    x = _x(seed=1)
    segmap = blocky_segmap(2, 32, 32, mask_channels, block=1, seed=2)  # 32 -> 8: true downsampling
    out = to_numpy(layer(x, segmap, training=True))
    with torch.no_grad():
        expected = ref.nhwc(ref.cg_norm(ref.nchw(x), ref.nchw(segmap), layer))
    np.testing.assert_allclose(out, expected, atol=2e-5, rtol=1e-4)


def test_official_variant_parameter_counts():
    # Trainable parameters of the official GROUP_SPADE, from its constructor's formulas.
    def official_count(norm_nc, seg_nc, hidden, shared_groups, groups, k=3):
        shared = hidden * (seg_nc // shared_groups) * k * k + hidden
        return shared + 2 * (norm_nc * (hidden // groups) * k * k + norm_nc)

    cases = [  # (norm_nc, segmap channels, CGNorm kwargs)
        (2560, 8, {"groups": 8, "hidden_channels": 128}),  # DeepFashion head_0
        (4480, 70, {"groups": 35, "hidden_channels": 35 * 20, "shared_groups": 35}),  # Cityscapes
        (2416, 151, {"groups": 16, "hidden_channels": 151 * 16, "shared_groups": 151}),  # ADE20K
    ]
    for norm_nc, seg_nc, kwargs in cases:
        layer = CGNorm(**kwargs)
        layer.build((None, 4, 4, norm_nc), (None, 16, 16, seg_nc))
        count = sum(int(np.prod(v.shape)) for v in layer.trainable_variables)
        assert count == official_count(
            norm_nc,
            seg_nc,
            kwargs["hidden_channels"],
            kwargs.get("shared_groups", kwargs["groups"]),
            kwargs["groups"],
        )


def test_gradients_save_load_fit(tmp_path):
    layer = CGNorm(groups=2, hidden_channels=8, norm="batch", name="cgn")
    x, segmap = _x(4, 8), blocky_segmap(2, 16, 16, C, block=2)
    assert_all_weights_get_gradient(layer, [x, segmap])

    x_in, seg_in = keras.Input((8, 8, 4)), keras.Input((16, 16, C))
    model = keras.Model(
        [x_in, seg_in], CGNorm(groups=2, hidden_channels=8, name="cgn")(x_in, seg_in)
    )
    restored = assert_save_load_round_trip(model, [x, segmap], tmp_path)
    assert restored.get_layer("cgn").get_config() == model.get_layer("cgn").get_config()
    assert_fits(model, [x, segmap], np.zeros((2, 8, 8, 4), "float32"))
    config = layer.get_config()
    assert CGNorm.from_config(config).get_config() == config
    assert layer.compute_output_shape((2, 8, 8, 4), (2, 16, 16, C)) == (2, 8, 8, 4)


def test_bad_inputs():
    with pytest.raises(
        ValueError, match=r"`hidden_channels` \(10\) must be divisible by `shared_groups`"
    ):
        CGNorm(groups=4, hidden_channels=10)
    with pytest.raises(ValueError, match="`norm` must be one of"):
        CGNorm(groups=2, hidden_channels=8, norm="layer")
    with pytest.raises(ValueError, match=r"`x channels` \(6\) must be divisible by `groups` \(4\)"):
        CGNorm(groups=4, hidden_channels=8)(_x(6), blocky_segmap(2, 8, 8, 4))
    with pytest.raises(ValueError, match=r"`segmap channels` \(3\) must be divisible"):
        CGNorm(groups=4, hidden_channels=8)(_x(8), blocky_segmap(2, 8, 8, 3))
    with pytest.raises(ValueError, match="`segmap` must have rank 4"):
        CGNorm(groups=4, hidden_channels=8)(_x(8), np.zeros((2, 8, 8), "float32"))
