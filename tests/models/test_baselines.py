import keras
import numpy as np
import pytest

from smis_layers import GroupDecreasingSchedule
from smis_layers.models import VSPADE, GroupDNet, GroupEnc, GroupNet, MulNet
from tests.helpers import blocky_segmap

C, SIZE = 4, 32
BASELINES = [GroupNet, GroupEnc, VSPADE, MulNet]


def tiny(model_class, **overrides):
    schedule = model_class.default_schedule(C, SIZE)
    # Narrow version of the default schedule: same groups, 1/4 of the width.
    narrow = {
        GroupDNet: GroupDecreasingSchedule.decreasing(C, 4, SIZE),
        GroupNet: GroupDecreasingSchedule.constant(C, 4, SIZE),
        GroupEnc: GroupDecreasingSchedule.constant(C, 4, SIZE, groups=1),
        VSPADE: GroupDecreasingSchedule.constant(C, 4, SIZE, groups=1),
        MulNet: GroupDecreasingSchedule.constant(C, 4, SIZE),
    }[model_class]
    assert narrow.groups == schedule.groups
    return model_class(
        num_classes=C, image_size=SIZE, schedule=narrow, encoder_channels=8, **overrides
    )


def _labels(batch=2, seed=0):
    return blocky_segmap(batch, SIZE, SIZE, C, block=8, seed=seed).argmax(-1)


def _images(batch=2, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, SIZE, SIZE, 3)).astype("float32")


@pytest.mark.parametrize("model_class", BASELINES)
def test_same_api_as_groupdnet(model_class, tmp_path):
    model = tiny(model_class)
    out = model({"images": _images(), "masks": _labels()}, training=True)
    assert tuple(out["images"].shape) == (2, SIZE, SIZE, 3)
    assert tuple(out["mu"].shape) == (2, 4, 4, 8 * C)
    mu, _ = model.encode(_images(), _labels())
    z = model.sample_z(2, seed=0)
    expected = model.generate(_labels(), z=z)
    assert expected.shape == (2, SIZE, SIZE, 3) and mu.shape == z.shape
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert type(restored) is model_class
    np.testing.assert_allclose(restored.generate(_labels(), z=z), expected, atol=1e-6)


def test_default_schedules_express_each_baseline():
    assert set(GroupNet.default_schedule(8, 64).groups) == {8}
    assert set(GroupEnc.default_schedule(8, 64).groups) == {1}
    assert set(VSPADE.default_schedule(8, 64).groups) == {1}
    assert GroupDNet.default_schedule(8, 64).groups == (8, 8, 4, 4, 1)


def test_mulnet_is_exactly_disentangled():
    model = tiny(MulNet)
    labels = _labels()
    z = model.sample_z(2, seed=2)
    base = model.generate(labels, z=z)
    for c in range(C):
        changed = model.generate(
            labels, z=model.with_class_code(z, c, z[..., 8 * c : 8 * c + 8] + 1.0)
        )
        diff = np.abs(changed - base).max(-1)
        assert diff[labels == c].max() > 1e-4
        assert diff[labels != c].max() == 0.0


def test_groupnet_keeps_classes_apart_until_the_rgb_convolution():
    """Class c's code reaches only group c of the last block's features (groups = C in every
    block); the RGB convolution then mixes the groups into every pixel (docs/zoo.md: why the
    first GroupNet drew noise)."""
    model = tiny(GroupNet)
    labels = _labels()
    segmap = model.segmap(labels)
    z = model.sample_z(2, seed=3)
    features = keras.ops.convert_to_numpy(model.decoder_features(z, segmap))
    image = keras.ops.convert_to_numpy(model.render_features(features, segmap))
    np.testing.assert_allclose(image, model.decode(z, segmap), atol=1e-6)
    changed_z = model.with_class_code(z, 1, z[..., 8:16] + 1.0)
    diff = np.abs(keras.ops.convert_to_numpy(model.decoder_features(changed_z, segmap)) - features)
    per_group = diff.reshape(*diff.shape[:3], C, -1).max(axis=(0, 1, 2, 4))
    assert per_group[1] > 1e-4 and np.all(np.delete(per_group, 1) == 0.0), per_group
    moved = np.abs(keras.ops.convert_to_numpy(model.decode(changed_z, segmap)) - image).max(-1)
    assert moved[labels != 1].max() > 1e-4  # outside class 1: leaked in by the RGB convolution


def test_vspade_code_is_not_per_class():
    model = tiny(VSPADE)
    labels, images = _labels(), _images()
    mu, _ = model.encode(images, labels)
    edited = np.where((labels == 1)[..., None], -images, images)
    mu_edited, _ = model.encode(edited, labels)
    per_class = np.abs(mu_edited - mu).reshape(2, 4, 4, C, 8).max(axis=(0, 1, 2, 4))
    assert np.all(per_class > 0)  # editing one class moves every "class" slice


def test_groupenc_codes_are_per_class():
    model = tiny(GroupEnc)
    labels, images = _labels(), _images()
    mu, _ = model.encode(images, labels)
    edited = np.where((labels == 1)[..., None], -images, images)
    mu_edited, _ = model.encode(edited, labels)
    per_class = np.abs(mu_edited - mu).reshape(2, 4, 4, C, 8).max(axis=(0, 1, 2, 4))
    assert per_class[1] > 0 and np.all(np.delete(per_class, 1) <= 1e-6)


def test_mulnet_rejects_mixing_schedules():
    with pytest.raises(ValueError, match="MulNet needs num_classes"):
        MulNet(
            num_classes=C,
            image_size=SIZE,
            schedule=GroupDecreasingSchedule.decreasing(C, 4, SIZE),
            encoder_channels=8,
        )


def test_mulnet_refuses_instance_edges_at_construction():
    with pytest.raises(ValueError, match=r"`use_instance_edges` must be False; received True"):
        MulNet(4, 32, use_instance_edges=True)
