import keras
import numpy as np
import pytest

from smis_layers import GroupDecreasingSchedule
from smis_layers.models import GroupDNet
from smis_layers.models.segmaps import instance_edge_map, pair_with_instance_edges
from tests.helpers import blocky_segmap, to_numpy

C, SIZE = 4, 32


def tiny(**overrides):
    config = {
        "num_classes": C,
        "image_size": SIZE,
        "schedule": GroupDecreasingSchedule.decreasing(C, base_filters=2, image_size=SIZE),
        "encoder_channels": 8,
    }
    return GroupDNet(**{**config, **overrides})


def _labels(batch=2, seed=0):
    return blocky_segmap(batch, SIZE, SIZE, C, block=8, seed=seed).argmax(-1)


def _images(batch=2, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, SIZE, SIZE, 3)).astype("float32")


def test_training_call_shapes():
    model = tiny()
    out = model({"images": _images(), "masks": _labels()}, training=True)
    assert tuple(out["images"].shape) == (2, SIZE, SIZE, 3)
    assert tuple(out["mu"].shape) == tuple(out["logvar"].shape) == (2, 4, 4, 8 * C)
    assert model.latent_shape == (4, 4, 8 * C)
    images = to_numpy(out["images"])
    assert np.all(np.abs(images) <= 1.0)


def test_mask_formats_are_equivalent():
    model = tiny()
    labels = _labels()
    z = model.sample_z(2, seed=3)
    reference = model.generate(labels, z=z)
    np.testing.assert_allclose(model.generate(labels[..., None], z=z), reference, atol=1e-6)
    one_hot = np.eye(C, dtype="float32")[labels]
    np.testing.assert_allclose(model.generate(one_hot, z=z), reference, atol=1e-6)


def test_generate_is_deterministic_given_seed():
    model = tiny()
    labels = _labels()
    a, b = model.generate(labels, seed=7), model.generate(labels, seed=7)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, model.generate(labels, seed=8))


def test_encode_then_generate_and_class_codes():
    model = tiny()
    mu, logvar = model.encode(_images(), _labels())
    assert mu.shape == logvar.shape == (2, 4, 4, 8 * C)
    code = model.class_code(mu, 2)
    np.testing.assert_array_equal(code, mu[..., 16:24])
    z = model.with_class_code(mu, 2, 0.0)
    assert np.all(z[..., 16:24] == 0) and np.array_equal(z[..., :16], mu[..., :16])
    assert model.generate(_labels(), z=z).shape == (2, SIZE, SIZE, 3)
    with pytest.raises(ValueError, match=r"`class_index` must be in \[0, 4\); received 4"):
        model.class_code(mu, 4)


def test_class_isolation_where_the_architecture_guarantees_it():
    """Class c's code reaches only group c of fc, head_0 (groups = C); later blocks mix."""
    model = tiny()
    labels = _labels()
    segmap = keras.ops.convert_to_tensor(np.eye(C, dtype="float32")[labels])
    z = model.sample_z(2, seed=1)
    groups = model.schedule.groups
    assert groups[0] == C

    def head_output(codes):
        x = model.fc(keras.ops.convert_to_tensor(codes))
        return to_numpy(model.blocks[0](x, segmap, training=False))

    base = head_output(z)
    for c in range(C):
        changed = model.with_class_code(z, c, z[..., 8 * c : 8 * c + 8] + 1.0)
        diff = np.abs(head_output(changed) - base)
        per_group = diff.reshape(*diff.shape[:3], C, -1).max(axis=(0, 1, 2, 4))
        assert per_group[c] > 1e-4 and np.all(np.delete(per_group, c) <= 1e-6), per_group

    # The image itself: class c's pixels must change; how much other classes' pixels move is
    # learned (the paper's disentanglement), not architectural, for an untrained decoder.
    image = model.generate(labels, z=z)
    changed = model.generate(labels, z=model.with_class_code(z, 1, z[..., 8:16] + 1.0))
    inside = np.abs(changed - image)[labels == 1].mean()
    assert inside > 1e-4


def test_region_colour_code_carries_each_class_mean_colour_and_nothing_else():
    """With `region_colour_code`, class c's first 3 channels are its region's mean RGB over the
    whole grid (noise-free in training), its other channels the encoder's; a class's colour
    moves only its own channels. Off (the default, the official networks), codes are the
    encoder's alone."""
    images, labels = _images(), _labels()
    plain = tiny(seed=3)
    model = tiny(seed=3, region_colour_code=True)
    model.set_weights(plain.get_weights())
    mu, logvar = model.encode(images, labels)
    plain_mu, _ = plain.encode(images, labels)
    for c in range(C):
        region = labels == c
        code, learned = mu[..., 8 * c : 8 * c + 8], plain_mu[..., 8 * c : 8 * c + 8]
        for b in range(2):
            expected = images[b][region[b]].mean(axis=0) if region[b].any() else np.zeros(3)
            np.testing.assert_allclose(
                code[b, ..., :3], np.broadcast_to(expected, (4, 4, 3)), atol=1e-5
            )
        np.testing.assert_allclose(code[..., 3:], learned[..., 3:], atol=1e-6)
        assert np.all(logvar[..., 8 * c : 8 * c + 3] == -10.0)
    assert not np.allclose(plain_mu[..., :3], mu[..., :3])

    recoloured = images.copy()
    recoloured[labels == 1] = -recoloured[labels == 1]
    moved = np.abs(model.encode(recoloured, labels)[0] - mu).reshape(2, 4, 4, C, 8)
    assert moved[..., 1, :3].min() > 1e-3
    np.testing.assert_allclose(np.delete(moved, 1, axis=3), 0.0, atol=1e-6)

    out = model({"images": images, "masks": labels}, training=True)
    np.testing.assert_allclose(to_numpy(out["z"])[..., :3], to_numpy(out["mu"])[..., :3], atol=0.05)
    assert GroupDNet.from_config(model.get_config()).region_colour_code
    assert tiny().get_config()["region_colour_code"] is False


def test_standard_codes_draw_one_colour_per_class_in_the_image_range():
    """N(0, 1) codes of a model with the region colour code: the encoder's channels as the paper
    draws them (one code per grid position), each class's colour channels one colour for the
    whole grid in [-1, 1], the only form a region's mean RGB takes. Without it, plain N(0, 1)."""
    model = tiny(region_colour_code=True)
    assert model.region_colour_channels == 3 and tiny().region_colour_channels == 0
    z = model.sample_z(64, seed=4, prior="standard").reshape(64, 4, 4, C, 8)
    colours, learned = z[..., :3], z[..., 3:]
    np.testing.assert_array_equal(colours, np.broadcast_to(colours[:, :1, :1], colours.shape))
    assert colours.min() == -1.0 and colours.max() == 1.0  # clipped, and clipping happened
    assert 0.3 < np.mean(np.abs(colours) < 1.0) < 0.9
    assert learned.std(axis=(1, 2)).mean() > 0.5  # every position draws its own
    assert abs(learned.std() - 1.0) < 0.05 and np.abs(learned).max() > 2.0
    plain = tiny().sample_z(64, seed=4, prior="standard")
    np.testing.assert_array_equal(plain.reshape(z.shape)[..., 3:], learned)
    assert np.abs(plain).max() > 2.0


def test_region_colour_code_refuses_models_it_cannot_serve():
    from smis_layers.models import VSPADE

    with pytest.raises(ValueError, match="needs per-class codes; VSPADE"):
        VSPADE(num_classes=C, image_size=SIZE, region_colour_code=True)
    schedule = GroupDecreasingSchedule.decreasing(
        C, base_filters=2, image_size=SIZE, latent_channels=3
    )
    with pytest.raises(
        ValueError, match="more than 3 latent channels per class; the schedule has 3"
    ):
        tiny(schedule=schedule, region_colour_code=True)


def test_region_texture_code_carries_each_class_wave_and_hands_it_to_cgnorm():
    """With `region_texture_code`, class c's channels 3-6 (after its colour) are its region's
    texture wave, noise-free; the decoder's CGNorms see the wave drawn inside class c's region,
    right after class c's segmap channel; a class's texture channels move its carrier alone."""
    from smis_layers.models.region_codes import region_texture_waves, texture_carriers

    images, labels = _images(), _labels()
    segmap = np.eye(C, dtype="float32")[labels]
    plain = tiny(seed=3)
    model = tiny(seed=3, region_colour_code=True, region_texture_code=True)
    assert (model.measured_code_channels, model.decoder_condition_channels) == (7, 2 * C)
    model.encoder.set_weights(plain.encoder.get_weights())
    mu, logvar = model.encode(images, labels)
    waves = to_numpy(region_texture_waves(images, segmap))
    per_class = mu.reshape(2, 4, 4, C, 8)
    np.testing.assert_allclose(
        per_class[..., 3:7],
        np.broadcast_to(waves[:, None, None], per_class[..., 3:7].shape),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        per_class[..., 7],
        plain.encode(images, labels)[0].reshape(2, 4, 4, C, 8)[..., 7],
        atol=1e-6,
    )
    assert np.all(logvar.reshape(2, 4, 4, C, 8)[..., :7] == -10.0)

    condition = to_numpy(model.decoder_condition(mu, segmap))
    assert condition.shape == (2, SIZE, SIZE, 2 * C)
    np.testing.assert_array_equal(condition[..., 0::2], segmap)
    carriers = to_numpy(texture_carriers(waves, (SIZE, SIZE))) * segmap
    np.testing.assert_allclose(condition[..., 1::2], carriers, atol=1e-4)
    assert np.abs(carriers).max() > 0.1

    retextured = per_class.copy()
    retextured[..., 1, 3:7] = [0.5, 0.25, 1.0, 0.0]  # fx 4, fy 2, amplitude 1, phase 0
    retextured = retextured.reshape(mu.shape)
    moved = np.abs(to_numpy(model.decoder_condition(retextured, segmap)) - condition)
    assert moved[..., 3][labels == 1].max() > 0.5
    np.testing.assert_array_equal(np.delete(moved, 3, axis=-1), 0.0)
    changed = model.generate(labels, z=retextured) - model.generate(labels, z=mu)
    assert np.abs(changed)[labels == 1].mean() > 1e-4
    assert GroupDNet.from_config(model.get_config()).region_texture_code == 1
    assert tiny().get_config()["region_texture_code"] == 0


def test_two_texture_waves_take_eight_channels_and_share_one_carrier():
    """`region_texture_code=2`: channels 3-10 of each class hold its region's two waves
    (`region_texture_waves(waves=2)`), CGNorm sees their sum as the class's one carrier, and a
    class's second wave moves its carrier alone. Two waves and the colour need 12 latent
    channels per class."""
    from smis_layers.models.region_codes import region_texture_waves, texture_carriers

    images, labels = _images(), _labels()
    segmap = np.eye(C, dtype="float32")[labels]
    schedule = GroupDecreasingSchedule.decreasing(
        C, base_filters=2, image_size=SIZE, latent_channels=12
    )
    model = tiny(schedule=schedule, region_colour_code=True, region_texture_code=2, seed=3)
    assert (model.measured_code_channels, model.decoder_condition_channels) == (11, 2 * C)
    mu, logvar = model.encode(images, labels)
    per_class = mu.reshape(2, 4, 4, C, 12)
    waves = to_numpy(region_texture_waves(images, segmap, waves=2))
    np.testing.assert_allclose(
        per_class[..., 3:11], np.broadcast_to(waves[:, None, None], (2, 4, 4, C, 8)), atol=1e-5
    )
    assert np.all(logvar.reshape(2, 4, 4, C, 12)[..., :11] == -10.0)
    condition = to_numpy(model.decoder_condition(mu, segmap))
    carriers = to_numpy(texture_carriers(waves, (SIZE, SIZE))) * segmap
    np.testing.assert_allclose(condition[..., 1::2], carriers, atol=1e-4)
    second = per_class.copy()
    second[..., 1, 7:11] = [0.5, 0.25, 1.0, 0.0]  # class 1's second wave: fx 4, fy 2
    moved = np.abs(to_numpy(model.decoder_condition(second.reshape(mu.shape), segmap)) - condition)
    assert moved[..., 3][labels == 1].max() > 0.5
    np.testing.assert_array_equal(np.delete(moved, 3, axis=-1), 0.0)
    z = model.sample_z(16, seed=4, prior="standard").reshape(16, 4, 4, C, 12)
    np.testing.assert_array_equal(
        z[..., :11], np.broadcast_to(z[:, :1, :1, :, :11], z[..., :11].shape)
    )
    assert GroupDNet.from_config(model.get_config()).region_texture_code == 2
    with pytest.raises(ValueError, match=r"needs more than 11 latent channels per class; the sch"):
        tiny(region_colour_code=True, region_texture_code=2)
    for bad in (3, -1, "2", 1.5):
        with pytest.raises(
            ValueError, match=r"`region_texture_code` must be False, True or a number of texture"
        ):
            tiny(region_texture_code=bad)


def test_region_texture_code_draws_one_wave_per_class_and_checks_its_room():
    model = tiny(region_colour_code=True, region_texture_code=True)
    z = model.sample_z(64, seed=4, prior="standard").reshape(64, 4, 4, C, 8)
    measured = z[..., :7]
    np.testing.assert_array_equal(measured, np.broadcast_to(measured[:, :1, :1], measured.shape))
    assert np.abs(z[..., :3]).max() == 1.0 and np.abs(z[..., 3:7]).max() > 2.0  # not clipped
    assert z[..., 7].std(axis=(1, 2)).mean() > 0.5
    drawn = to_numpy(model.training_prior_z(np.zeros((3, 4, 4, 8 * C), "float32")))
    drawn = drawn.reshape(3, 4, 4, C, 8)  # the training step's random codes: the same waves
    np.testing.assert_array_equal(
        drawn[..., 3:7], np.broadcast_to(drawn[:, :1, :1, :, 3:7], (3, 4, 4, C, 4))
    )
    assert drawn[..., 3:7].std() > 0.5 and drawn[..., 7].std(axis=(1, 2)).mean() > 0.5
    schedule = GroupDecreasingSchedule.decreasing(
        C, base_filters=2, image_size=SIZE, latent_channels=7
    )
    with pytest.raises(
        ValueError,
        match=r"`region_colour_code` and `region_texture_code` needs more than 7 "
        "latent channels per class",
    ):
        tiny(schedule=schedule, region_colour_code=True, region_texture_code=True)
    tiny(schedule=schedule, region_texture_code=True)  # 4 measured channels leave 3


def test_save_load_round_trip(tmp_path):
    model = tiny(seed=5)
    labels, z = _labels(), model.sample_z(2, seed=0)
    expected = model.generate(labels, z=z)
    path = tmp_path / "groupdnet.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, GroupDNet)
    np.testing.assert_allclose(restored.generate(labels, z=z), expected, atol=1e-6)
    assert restored.get_config()["schedule"] == model.get_config()["schedule"]


def test_config_round_trip_and_summary_names():
    model = tiny()
    clone = GroupDNet.from_config(model.get_config())
    assert clone.schedule == model.schedule
    assert clone.count_params() == model.count_params()
    names = [layer.name for layer in model.layers]
    assert names[:3] == ["class_mask_split", "encoder", "fc"]
    assert [b.name for b in model.blocks] == ["head_0", "up_0", "up_1", "up_2"]
    assert "conv_img" in names


def test_instance_edges_pairing():
    ids = np.array([[[1, 1, 2], [1, 1, 2], [3, 3, 3]]])
    edges = to_numpy(instance_edge_map(ids))[0, ..., 0]
    np.testing.assert_array_equal(edges, [[0, 1, 1], [1, 1, 1], [1, 1, 1]])
    segmap = np.eye(2, dtype="float32")[np.array([[[0, 1, 1], [0, 0, 1], [1, 1, 1]]])]
    paired = to_numpy(pair_with_instance_edges(segmap, to_numpy(instance_edge_map(ids))))
    np.testing.assert_array_equal(paired[..., 0::2], segmap)
    np.testing.assert_array_equal(paired[..., 1::2], np.repeat(edges[None, ..., None], 2, -1))


def test_model_with_instance_edges():
    model = tiny(use_instance_edges=True)
    assert model.condition_channels == 2 * C
    instances = np.random.default_rng(0).integers(0, 3, (2, SIZE, SIZE))
    out = model.generate(_labels(), seed=0, instances=instances)
    assert out.shape == (2, SIZE, SIZE, 3)
    with pytest.raises(ValueError, match="pass `instances`"):
        model.generate(_labels(), seed=0)


def test_bad_inputs():
    model = tiny()
    with pytest.raises(ValueError, match=r"`labels` must be \(batch, 32, 32"):
        model.generate(np.zeros((1, 16, 16), int), seed=0)
    with pytest.raises(ValueError, match=r"must have 1 .* or 4 .* channels"):
        model.generate(np.zeros((1, SIZE, SIZE, 5), "float32"), seed=0)
    with pytest.raises(ValueError, match=r"label values must lie in \[0, 4\)"):
        model.generate(np.full((1, SIZE, SIZE), 4), seed=0)
    with pytest.raises(ValueError, match=r"`z` must have shape \(1, 4, 4, 32\)"):
        model.generate(np.zeros((1, SIZE, SIZE), int), z=np.zeros((1, 4, 4, 8)))
    with pytest.raises(ValueError, match=r"`images` must be \(batch, 32, 32, 3\)"):
        model.encode(np.zeros((1, SIZE, SIZE, 1)), np.zeros((1, SIZE, SIZE), int))
    with pytest.raises(ValueError, match="The schedule generates"):
        tiny(image_size=48)
    with pytest.raises(ValueError, match="must equal `num_classes`"):
        tiny(num_classes=5, encoder_channels=10)


OFFICIAL_COUNTS = {  # computed by instantiating the official PyTorch code
    "deepfashion": {"generator": 96_324_451, "encoder": 12_835_712},
    "cityscapes": {"generator": 76_501_358, "encoder": 5_768_210},
    # The official ADE20KGenerator also builds an `up_4` block its forward never uses
    # (1,868,132 parameters); the official count 68,326,847 includes it.
    "ade20k": {"generator": 68_326_847 - 1_868_132, "encoder": 4_411_012},
}


@pytest.mark.parametrize("dataset", sorted(OFFICIAL_COUNTS))
def test_official_architectures_parameter_counts(dataset):
    model = GroupDNet.official(dataset)
    assert model.parameter_counts() == OFFICIAL_COUNTS[dataset]
    assert model.latent_shape == (
        (4, 8, 280) if dataset == "cityscapes" else (4, 4, 8 * model.num_classes)
    )
