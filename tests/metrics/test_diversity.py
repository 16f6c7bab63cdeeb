import numpy as np
import pytest

from smis_layers import GroupDecreasingSchedule
from smis_layers.metrics.distances import masked_feature_distance, masked_l1_distance
from smis_layers.metrics.diversity import class_specific_diversity, overall_diversity
from smis_layers.models import GroupDNet, MulNet
from tests.metrics.fakes import FakeGenerator

C, SIZE = 3, 8


def _masks():
    masks = np.zeros((3, SIZE, SIZE), "int32")
    masks[0, :4] = 1  # classes 0, 1
    masks[1, :, :3] = 2  # classes 0, 2
    masks[1, 6:, 6:] = 1  # ... and 1
    masks[2] = 2  # class 2 only: no OCD for it
    return masks


def test_isolated_model_has_zero_mocd_and_the_exact_mcsd():
    model = FakeGenerator(C, SIZE, kind="isolated")
    masks = _masks()
    n = 4
    scores = class_specific_diversity(model, masks, masked_l1_distance(), num_samples=n, seed=3)
    assert scores["mocd"] == 0.0
    assert scores["mcsd"] > 0.1
    # Recompute CSD from the codes the model saw: the class's pixels are tanh(code[0]).
    z = np.concatenate(model.seen_z)
    per_class, offset = {c: [] for c in range(C)}, 0
    for mask in masks:
        for c in np.unique(mask):
            values = np.tanh(z[offset : offset + n, 0, 0, 2 * c])
            offset += n
            pairs = [abs(values[i] - values[j]) for i in range(n) for j in range(i + 1, n)]
            per_class[c].append(np.mean(pairs))
    expected = np.mean([np.mean(v) for v in per_class.values()])
    assert scores["mcsd"] == pytest.approx(expected, rel=1e-5)
    assert offset == len(z) and scores["evaluations"] == 6
    # class 2 fills image 2: that image gives class 2 a CSD but no OCD
    assert np.isfinite(scores["ocd_per_class"]).all()


def test_model_ignoring_z_has_no_diversity():
    model = FakeGenerator(C, SIZE, kind="ignore_z")
    scores = class_specific_diversity(model, _masks(), num_samples=3, seed=0)
    assert scores["mcsd"] == 0.0 and scores["mocd"] == 0.0
    assert overall_diversity(model, _masks(), num_samples=3)["diversity"] == 0.0


def test_entangled_model_changes_other_classes():
    model = FakeGenerator(C, SIZE, kind="entangled")
    scores = class_specific_diversity(model, _masks(), num_samples=4, seed=0)
    assert scores["mocd"] > 0.05
    # every pixel moves by the same amount: CSD == OCD per class
    np.testing.assert_allclose(scores["csd_per_class"][:2], scores["ocd_per_class"][:2], rtol=1e-5)


def test_deterministic_given_seed_and_classes_and_several_distances():
    masks = _masks()
    a = class_specific_diversity(FakeGenerator(kind="isolated"), masks, num_samples=3, seed=5)
    b = class_specific_diversity(FakeGenerator(kind="isolated"), masks, num_samples=3, seed=5)
    c = class_specific_diversity(FakeGenerator(kind="isolated"), masks, num_samples=3, seed=6)
    assert a["mcsd"] == b["mcsd"] and a["mcsd"] != c["mcsd"]
    only = class_specific_diversity(
        FakeGenerator(kind="isolated"), masks, num_samples=3, seed=5, classes=[1]
    )
    assert np.isnan(only["csd_per_class"][[0, 2]]).all()
    both = class_specific_diversity(
        FakeGenerator(kind="isolated"),
        masks,
        {"l1": masked_l1_distance(), "pixels": masked_feature_distance(lambda x: x)},
        num_samples=3,
        seed=5,
    )
    assert both["l1"]["mcsd"] == a["mcsd"] and both["pixels"]["mocd"] == 0.0


def test_overall_diversity_exact_for_the_isolated_model():
    model = FakeGenerator(C, SIZE, kind="isolated")
    masks = np.zeros((1, SIZE, SIZE), "int32")
    masks[0, :2] = 1  # 16 pixels of class 1, 48 of class 0
    result = overall_diversity(model, masks, num_samples=3, seed=1)
    z = model.seen_z[0][:, 0, 0]
    v0, v1 = np.tanh(z[:, 0]), np.tanh(z[:, 2])
    pairs = [(0, 1), (0, 2), (1, 2)]
    expected = np.mean([0.75 * abs(v0[i] - v0[j]) + 0.25 * abs(v1[i] - v1[j]) for i, j in pairs])
    assert result["diversity"] == pytest.approx(expected, rel=1e-5)


def test_errors():
    model = FakeGenerator()
    with pytest.raises(ValueError, match=r"`num_samples` must be >= 2 \(pairs\); received 1"):
        class_specific_diversity(model, _masks(), num_samples=1)
    with pytest.raises(
        ValueError, match=r"`labels` values must be in \[0, 3\); received labels in"
    ):
        class_specific_diversity(model, _masks() + 1)
    with pytest.raises(ValueError, match="`distance` must be an ImageDistance"):
        overall_diversity(model, _masks(), distance=lambda a, b: 0)


def _blocky_labels(batch, size, classes, seed=0):
    labels = np.random.default_rng(seed).integers(0, classes, (batch, size // 8, size // 8))
    return np.repeat(np.repeat(labels, 8, 1), 8, 2)


def test_tiny_real_models():
    """MulNet is exactly class-isolated (mOCD 0 up to float round-off); GroupDNet's decreasing
    groups let class codes reach other classes' pixels."""
    classes, size = 4, 16
    masks = _blocky_labels(2, size, classes)
    mulnet = MulNet(
        num_classes=classes,
        image_size=size,
        schedule=GroupDecreasingSchedule.constant(classes, 4, size),
        encoder_channels=8,
    )
    scores = class_specific_diversity(mulnet, masks, num_samples=3, seed=0)
    assert scores["mcsd"] > 1e-3
    assert scores["mocd"] < 1e-5 * scores["mcsd"]
    groupdnet = GroupDNet(
        num_classes=classes,
        image_size=size,
        schedule=GroupDecreasingSchedule.decreasing(classes, 4, size),
        encoder_channels=8,
    )
    first = class_specific_diversity(groupdnet, masks, num_samples=3, seed=0)
    again = class_specific_diversity(groupdnet, masks, num_samples=3, seed=0)
    assert first["mcsd"] == again["mcsd"] and first["mocd"] == again["mocd"]
    assert first["mocd"] > 1e-4 and np.isfinite(first["mcsd"])
