import numpy as np
import pytest

from smis_layers import GroupDecreasingSchedule
from smis_layers.models import VSPADE, FittedCodePrior, GroupDNet

H, W, K, C = 2, 2, 3, 3  # latent grid, channels per class, classes of the fake model


class CodeTable:
    """Stands in for a trained model: `encode` returns fixed per-image codes."""

    num_classes = C
    latent_shape = (H, W, K * C)
    class_owned_codes = True

    def __init__(self, codes):
        self.codes = codes

    def encode(self, images, masks):
        rows = images[:, 0, 0, 0].astype(int)  # each image carries its row index
        return self.codes[rows], np.zeros_like(self.codes[rows])


def _table(n=4000, seed=0):
    """Class c's code ~ N(c + 1, diag(0.1 * (c + 1))^2); class 2 is absent from odd images,
    whose class-2 codes are a constant 100 the fit must not see."""
    rng = np.random.default_rng(seed)
    codes = np.zeros((n, H, W, K * C), "float32")
    for c in range(C):
        codes[..., c * K : (c + 1) * K] = (c + 1) + 0.1 * (c + 1) * rng.standard_normal(
            (n, H, W, K)
        )
    codes[1::2, ..., 2 * K :] = 100.0
    images = np.zeros((n, 8, 8, 3), "float32")
    images[:, 0, 0, 0] = np.arange(n)
    masks = np.zeros((n, 8, 8), "int32")
    masks[:, :4] = 1
    masks[::2, 4:] = 2  # class 2 covers 32 pixels of even images only
    return CodeTable(codes), images, masks


def test_fit_estimates_each_present_class_and_skips_absent_ones():
    model, images, masks = _table()
    prior = FittedCodePrior.fit(model, images, masks)
    assert prior.counts.tolist() == [2000, 4000, 2000]  # class 0 covers 32 pixels of odd images
    for c in range(C):
        np.testing.assert_allclose(prior.mean[c], c + 1, atol=0.05 * (c + 1))
        covariance = prior.scale[c] @ prior.scale[c].T
        np.testing.assert_allclose(np.diag(covariance), (0.1 * (c + 1)) ** 2, rtol=0.15)


def test_min_pixels_excludes_small_regions():
    model, images, masks = _table()
    masks[::2, 4:, 4:] = 0  # class 2 now covers 16 pixels of even images
    assert FittedCodePrior.fit(model, images, masks, min_pixels=16).counts[2] == 2000
    prior = FittedCodePrior.fit(model, images, masks, min_pixels=17)
    assert prior.counts[2] == 0  # never seen: the standard prior
    np.testing.assert_array_equal(prior.mean[2], 0.0)
    np.testing.assert_array_equal(prior.scale[2], np.eye(H * W * K))


def test_codes_of_models_without_class_codes_get_one_joint_gaussian():
    """VSPADE-like codes: one Gaussian over the whole code, so its parts stay correlated."""
    model, images, masks = _table()
    model.class_owned_codes = False
    model.codes[..., :K] = model.codes[..., K : 2 * K]  # class 0's block copies class 1's
    prior = FittedCodePrior.fit(model, images, masks, max_rank=10)
    assert prior.num_groups == 1 and prior.counts.tolist() == [4000]
    assert prior.scale.shape == (1, H * W * K * C, 10)
    z = prior.sample(500, seed=0)
    np.testing.assert_allclose(z[..., :K], z[..., K : 2 * K], atol=0.05)


def test_samples_follow_the_fitted_gaussians_in_the_model_layout():
    rng = np.random.default_rng(1)
    d = H * W * K
    mean = rng.normal(size=(C, d)) * 3
    scale = rng.normal(size=(C, d, d - 2)) * 0.3  # rank d - 2: a scale need not be square
    prior = FittedCodePrior(mean, scale, np.full(C, 10), (H, W, K * C))
    z = prior.sample(20000, seed=0)
    assert z.shape == (20000, H, W, K * C) and z.dtype == np.float32
    for c in range(C):
        flat = z[..., c * K : (c + 1) * K].reshape(len(z), d)
        np.testing.assert_allclose(flat.mean(0), mean[c], atol=0.1)
        expected = scale[c] @ scale[c].T
        np.testing.assert_allclose(np.cov(flat, rowvar=False), expected, atol=0.15)
    np.testing.assert_array_equal(prior.sample(3, seed=5), prior.sample(3, seed=5))
    assert not np.array_equal(prior.sample(3, seed=5), prior.sample(3, seed=6))


def test_save_load_round_trip_and_bad_files(tmp_path):
    model, images, masks = _table(200)
    prior = FittedCodePrior.fit(model, images, masks)
    restored = FittedCodePrior.load(prior.save(tmp_path / "prior.npz"))
    np.testing.assert_array_equal(restored.sample(4, seed=0), prior.sample(4, seed=0))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "prior.npz").read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        FittedCodePrior.load(tmp_path / "cut.npz")
    np.savez(tmp_path / "other.npz", mean=prior.mean)
    with pytest.raises(ValueError, match="lacks the arrays"):
        FittedCodePrior.load(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="`scale` must have shape"):
        FittedCodePrior(prior.mean, prior.scale[:, :2], prior.counts, prior.latent_shape)


def test_fit_rejects_bad_arguments():
    model, images, masks = _table(10)
    with pytest.raises(ValueError, match="same number"):
        FittedCodePrior.fit(model, images, masks[:5])
    with pytest.raises(ValueError, match="shrinkage"):
        FittedCodePrior.fit(model, images, masks, shrinkage=2.0)


def _groupdnet(cls=GroupDNet):
    return cls(
        num_classes=4,
        image_size=32,
        encoder_channels=8 if cls is GroupDNet else 4,
        schedule=GroupDecreasingSchedule.decreasing(4, 4, 32),
        seed=0,
    )


def _fitted(model, n=24):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (n, 32, 32, 3)).astype("float32")
    masks = rng.integers(0, 4, (n, 32, 32))
    return FittedCodePrior.fit(model, images, masks)


def test_sample_z_prior_choice():
    model = _groupdnet()
    with pytest.raises(ValueError, match="no `code_prior`"):
        model.sample_z(2, seed=0, prior="fitted")
    standard = model.sample_z(2, seed=0)
    model.code_prior = _fitted(model)
    fitted = model.code_prior.sample(2, seed=0)
    np.testing.assert_array_equal(model.sample_z(2, seed=0), fitted)  # "auto"
    np.testing.assert_array_equal(model.sample_z(2, seed=0, prior="fitted"), fitted)
    np.testing.assert_array_equal(model.sample_z(2, seed=0, prior="standard"), standard)
    shared = model.sample_z(2, seed=0, spatially_shared=True)  # auto: the standard prior
    np.testing.assert_array_equal(shared, np.broadcast_to(shared[:, :1, :1], shared.shape))
    with pytest.raises(ValueError, match="standard prior only"):
        model.sample_z(2, seed=0, spatially_shared=True, prior="fitted")
    with pytest.raises(ValueError, match="prior"):
        model.sample_z(2, seed=0, prior="learned")
    labels = np.zeros((2, 32, 32), "int32")
    np.testing.assert_allclose(
        model.generate(labels, seed=0), model.generate(labels, z=fitted), atol=1e-6
    )


def test_preset_ships_the_prior_verified_by_sha256(tmp_path):
    model = _groupdnet()
    model.code_prior = _fitted(model)
    model.save_to_preset(tmp_path / "p")
    restored = GroupDNet.from_preset(tmp_path / "p")
    np.testing.assert_array_equal(restored.sample_z(3, seed=1), model.sample_z(3, seed=1))
    path = tmp_path / "p" / "code_prior.npz"
    data = bytearray(path.read_bytes())
    data[-10] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"code_prior\.npz is corrupted"):
        GroupDNet.from_preset(tmp_path / "p")
    model.code_prior = None
    model.save_to_preset(tmp_path / "p", overwrite=True)  # no stale prior left behind
    assert not path.exists() and GroupDNet.from_preset(tmp_path / "p").code_prior is None


def test_preset_rejects_a_prior_of_another_model(tmp_path):
    model = _groupdnet()
    other = GroupDNet(
        num_classes=4,
        image_size=32,
        encoder_channels=8,
        schedule=GroupDecreasingSchedule.decreasing(4, 4, 32, latent_channels=4),
    )
    model.code_prior = _fitted(other)
    model.save_to_preset(tmp_path / "p")
    with pytest.raises(ValueError, match="does not match the preset's model"):
        GroupDNet.from_preset(tmp_path / "p")


def test_vspade_prior_is_one_gaussian_over_the_whole_code(tmp_path):
    model = _groupdnet(VSPADE)
    model.code_prior = _fitted(model, n=6)
    assert model.code_prior.counts.tolist() == [6]
    model.save_to_preset(tmp_path / "p")
    np.testing.assert_array_equal(
        VSPADE.from_preset(tmp_path / "p").sample_z(2, seed=0), model.sample_z(2, seed=0)
    )


def test_measured_channels_are_drawn_together_from_the_training_regions(tmp_path):
    """With `region_colour_code` and `region_texture_code` the prior keeps every class's
    measured colour and waves (the regions of at least `min_pixels`) and draws a class's
    measured channels as one of its rows, colour and waves from the same region, the same over
    the grid; the rows survive save / load. Without measured channels there is no bank."""
    from smis_layers.data import SyntheticShapes
    from smis_layers.models.region_codes import region_mean_colours, region_texture_waves

    classes, size = 4, 64
    schedule = GroupDecreasingSchedule.decreasing(classes, 1, size, norm_hidden_channels=4)
    config = {
        "num_classes": classes,
        "image_size": size,
        "schedule": schedule,
        "encoder_channels": 8,
    }
    model = GroupDNet(**config, region_colour_code=True, region_texture_code=True)
    batch = SyntheticShapes(size, num_classes=classes, seed=0).batch(np.arange(24))
    prior = FittedCodePrior.fit(model, batch["images"], batch["masks"], min_pixels=16)
    segmap = np.eye(classes, dtype="float32")[batch["masks"]]
    measured = np.concatenate(
        [
            region_mean_colours(batch["images"], segmap),
            region_texture_waves(batch["images"], segmap),
        ],
        axis=-1,
    )
    present = (segmap.sum(axis=(1, 2)) >= 16).T  # (C, N)
    np.testing.assert_allclose(
        prior.measured,
        np.concatenate([measured[p, c] for c, p in enumerate(present)]),
        atol=1e-6,
    )
    assert prior.measured_counts.tolist() == present.sum(1).tolist()
    assert prior.measured_channels == (0, 7)
    loaded = FittedCodePrior.load(prior.save(tmp_path / "prior.npz"))
    z = loaded.sample(32, seed=1).reshape(32, 4, 4, classes, 8)
    for c in range(classes):
        drawn = z[..., c, :7]
        np.testing.assert_array_equal(drawn, np.broadcast_to(drawn[:, :1, :1], drawn.shape))
        rows = measured[present[c], c]
        gaps = np.abs(drawn[:, 0, 0, None] - rows[None]).max(-1).min(-1)
        assert gaps.max() < 1e-6  # colour and waves of one and the same training region
        learned = z[..., c, 7]
        assert np.std(learned) > 0  # the encoder's channel still comes from the Gaussian
    # The standard prior: N(0, 1) for the encoder's channels, the regions' values for the
    # measured ones (not codes of the VAE's prior); without a bank, one N(0, 1) value per class.
    plain_standard = model.sample_z(32, seed=2, prior="standard").reshape(32, 4, 4, classes, 8)
    model.code_prior = loaded
    standard = model.sample_z(32, seed=2, prior="standard").reshape(32, 4, 4, classes, 8)
    np.testing.assert_array_equal(standard[..., 7], plain_standard[..., 7])
    for c in range(classes):
        rows = measured[present[c], c]
        gaps = np.abs(standard[:, :, :, c, None, :7] - rows).max(-1).min(-1)
        assert gaps.max() < 1e-6
    # Files written before the bank held the colour name it `waves`: the same arrays.
    legacy = tmp_path / "legacy.npz"
    names = {
        "measured": "waves",
        "measured_counts": "wave_counts",
        "measured_channels": "wave_channels",
    }
    np.savez(legacy, **{names.get(k, k): v for k, v in np.load(tmp_path / "prior.npz").items()})
    np.testing.assert_array_equal(
        FittedCodePrior.load(legacy).sample(4, seed=3), loaded.sample(4, seed=3)
    )
    colour_only = FittedCodePrior.fit(
        GroupDNet(**config, region_colour_code=True), batch["images"], batch["masks"]
    )
    assert colour_only.measured_channels == (0, 3) and colour_only.measured.shape[1] == 3
    assert (
        FittedCodePrior.fit(GroupDNet(**config), batch["images"], batch["masks"]).measured is None
    )
    with pytest.raises(ValueError, match="go together"):
        FittedCodePrior(
            prior.mean, prior.scale, prior.counts, prior.latent_shape, measured=prior.measured
        )
