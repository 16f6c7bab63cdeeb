import numpy as np
import pytest

from smis_layers import GroupDecreasingSchedule
from smis_layers.data.synthetic import SyntheticShapes
from smis_layers.metrics.disentanglement import appearance_swap_score, donor_appearance
from smis_layers.metrics.distances import masked_feature_distance, masked_l1_distance
from smis_layers.models import GroupDNet
from tests.metrics.fakes import CopyGenerator, GlobalGenerator

C = 4
DATASET = SyntheticShapes(image_size=64, num_classes=C, seed=7)


def test_perfect_model_transfers_exactly_and_leaks_nothing():
    scores = appearance_swap_score(CopyGenerator(C, 64), DATASET, n_images=3, seed=0)
    assert scores["region_transfer"] == 1.0
    assert scores["leakage"] == 0.0 and scores["outside_change"] == 0.0
    assert scores["target_distance"] == 0.0 and scores["reconstruction_distance"] == 0.0
    assert scores["appearance_gap"] > 0.1
    assert scores["source_distance"] == pytest.approx(scores["appearance_gap"])
    assert scores["pairs"] >= 3


def test_entangled_model_moves_everything():
    """Swapping one of C whole-image codes gives (C-1)/C A + 1/C B everywhere: in class c's
    region the L1 distance to A is |B - A| / C and to the target (C-1) |B - A| / C."""
    scores = appearance_swap_score(GlobalGenerator(C, 64), DATASET, n_images=3, seed=0)
    assert scores["region_transfer"] == pytest.approx(1 / C, rel=1e-5)
    assert scores["leakage"] > 0.3 and scores["outside_change"] > 0


def test_donor_appearance_changes_every_class_and_is_deterministic():
    batch = DATASET.batch(np.arange(4))
    factors = (batch["palette"], batch["texture"], batch["params"])
    palette, texture, params = donor_appearance(DATASET, *factors, seed=1)
    assert np.all(palette != batch["palette"])
    assert palette.shape == batch["palette"].shape and params.shape == batch["params"].shape
    again = donor_appearance(DATASET, *factors, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip((palette, texture, params), again, strict=True))


def test_several_distances_and_errors():
    model = CopyGenerator(C, 64)
    both = appearance_swap_score(
        model,
        DATASET,
        n_images=2,
        distance={"l1": masked_l1_distance(), "pixels": masked_feature_distance(lambda x: x)},
    )
    assert both["l1"]["region_transfer"] == both["pixels"]["region_transfer"] == 1.0
    with pytest.raises(ValueError, match="`dataset` has 8 classes; the model has 4"):
        appearance_swap_score(model, SyntheticShapes(num_classes=8), n_images=1)
    with pytest.raises(ValueError, match="`dataset` must be a SyntheticShapes"):
        appearance_swap_score(model, "shapes", n_images=1)


def test_tiny_groupdnet_is_deterministic():
    model = GroupDNet(
        num_classes=C,
        image_size=64,
        schedule=GroupDecreasingSchedule.decreasing(C, 2, 64),
        encoder_channels=8,
    )
    first = appearance_swap_score(model, DATASET, n_images=2, seed=3)
    second = appearance_swap_score(model, DATASET, n_images=2, seed=3)
    assert first == second
    assert 0.0 <= first["region_transfer"] <= 1.0 and first["inside_change"] > 0
