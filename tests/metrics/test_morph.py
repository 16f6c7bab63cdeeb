import numpy as np
import pytest

from smis_layers.metrics.fid import feature_statistics, frechet_distance
from smis_layers.metrics.morph import morph_fid_ratio
from tests.metrics.fakes import ColourCodeGenerator


def _colour_images(count, seed, size=8):
    """Flat images of random unit-length colours (what ColourCodeGenerator reconstructs)."""
    colours = np.random.default_rng(seed).normal(size=(count, 3))
    colours /= np.linalg.norm(colours, axis=-1, keepdims=True)
    return np.broadcast_to(colours[:, None, None, :], (count, size, size, 3)).astype("float32")


def _mean_colour(images):
    return np.asarray(images).mean(axis=(1, 2))


def test_identical_ends_make_every_frame_the_same():
    a, labels = _colour_images(12, 0), np.zeros((12, 8, 8), "int32")
    result = morph_fid_ratio(
        ColourCodeGenerator(), _mean_colour, a, labels, a, _colour_images(12, 1), steps=4
    )
    np.testing.assert_allclose(result["fid_per_step"], result["fid_start"], rtol=1e-6)
    assert result["ratio"] == pytest.approx(1.0)
    np.testing.assert_allclose(result["t"], [0, 1 / 3, 2 / 3, 1])
    assert result["num_morphs"] == 12


def test_middle_frames_off_the_code_set_raise_the_ratio():
    # Codes on the unit sphere; the chord between two of them passes closer to 0: darker
    # middle frames, whose colours no real image has.
    a, b, labels = _colour_images(64, 0), _colour_images(64, 1), np.zeros((64, 8, 8), "int32")
    reference = _colour_images(64, 2)
    result = morph_fid_ratio(ColourCodeGenerator(), _mean_colour, a, labels, b, reference, steps=5)
    fids = result["fid_per_step"]
    # The ends are exact reconstructions: their FID is the real-vs-real one.
    expected = frechet_distance(
        *feature_statistics(_mean_colour(reference)), *feature_statistics(_mean_colour(a))
    )
    assert result["fid_start"] == pytest.approx(expected, rel=1e-5)  # float32 codes
    assert result["fid_middle"] == fids[2] and result["fid_middle"] > 2 * result["fid_ends"]
    assert result["ratio"] == pytest.approx(result["fid_middle"] / result["fid_ends"])
    assert fids[1] < fids[2] > fids[3]


def test_a_tiny_untrained_groupdnet_and_segmenter():
    from smis_layers import GroupDecreasingSchedule
    from smis_layers.data.synthetic import SyntheticShapes
    from smis_layers.models import GroupDNet
    from smis_layers.models.segmenter import ShapesSegmenter

    classes = 4
    model = GroupDNet(
        schedule=GroupDecreasingSchedule.decreasing(classes, 2, 64),
        num_classes=classes,
        image_size=64,
        encoder_channels=8,
    )
    segmenter = ShapesSegmenter(classes, filters=(4, 6, 8))
    batch = SyntheticShapes(64, classes, seed=1000).batch(np.arange(9))
    a, labels, b = batch["images"][:3], batch["masks"][:3], batch["images"][3:6][:, ::-1]
    reference = batch["images"][6:]
    result = morph_fid_ratio(model, segmenter.features, a, labels, b, reference, steps=4)
    assert result["fid_per_step"].shape == (4,) and np.all(result["fid_per_step"] >= 0)
    assert result["fid_middle"] == pytest.approx(result["fid_per_step"][1:3].mean())
    assert result["ratio"] == pytest.approx(result["fid_middle"] / result["fid_ends"])
    # The first frames are the reconstructions of A from the encoder's means.
    rebuilt = model.generate(labels, z=model.encode(a, labels)[0])
    real = feature_statistics(np.asarray(segmenter.features(reference), "float64"))
    fake = feature_statistics(np.asarray(segmenter.features(rebuilt), "float64"))
    assert result["fid_start"] == pytest.approx(frechet_distance(*real, *fake), rel=1e-3)


def test_bad_arguments_are_named():
    model, labels = ColourCodeGenerator(), np.zeros((4, 8, 8), "int32")
    a, reference = _colour_images(4, 0), _colour_images(4, 1)
    with pytest.raises(ValueError, match=r"`steps` must be an int >= 3.*received 2"):
        morph_fid_ratio(model, _mean_colour, a, labels, a, reference, steps=2)
    with pytest.raises(ValueError, match=r"`images_b` must have `images_a`'s shape"):
        morph_fid_ratio(model, _mean_colour, a, labels, a[:3], reference)
    with pytest.raises(ValueError, match=r"`images_a` must be \(N, H, W, 3\) matching"):
        morph_fid_ratio(model, _mean_colour, a, labels[:3], a, reference)
    with pytest.raises(ValueError, match=r"`reference` must be \(M, 8, 8, 3\) with M >= 2"):
        morph_fid_ratio(model, _mean_colour, a, labels, a, reference[:1])
    with pytest.raises(ValueError, match=r"at least 2 label maps"):
        morph_fid_ratio(model, _mean_colour, a[:1], labels[:1], a[:1], reference)
    with pytest.raises(ValueError, match=r"`features` must be callable"):
        morph_fid_ratio(model, "segmenter", a, labels, a, reference)
