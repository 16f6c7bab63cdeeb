import json

import numpy as np
import pytest

from smis_layers import GroupDecreasingSchedule
from smis_layers.models import GroupDNet, MulNet
from smis_layers.presets import load_preset


def _model():
    return GroupDNet(
        num_classes=4,
        image_size=32,
        encoder_channels=8,
        schedule=GroupDecreasingSchedule.decreasing(4, 4, 32),
    )


def test_round_trip(tmp_path):
    model = _model()
    labels = np.random.default_rng(0).integers(0, 4, (1, 32, 32))
    z = model.sample_z(1, seed=0)
    model.save_to_preset(tmp_path / "p", metadata={"note": "test"})
    restored = GroupDNet.from_preset(tmp_path / "p")
    np.testing.assert_allclose(
        restored.generate(labels, z=z), model.generate(labels, z=z), atol=1e-6
    )
    metadata = json.loads((tmp_path / "p" / "metadata.json").read_text())
    assert metadata["note"] == "test" and set(metadata["sha256"]) == {
        "config.json",
        "model.weights.h5",
    }


def test_refuses_to_overwrite(tmp_path):
    model = _model()
    model.save_to_preset(tmp_path / "p")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        model.save_to_preset(tmp_path / "p")
    model.save_to_preset(tmp_path / "p", overwrite=True)


def test_corrupted_and_truncated_files(tmp_path):
    _model().save_to_preset(tmp_path / "p")
    weights = tmp_path / "p" / "model.weights.h5"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"model.weights.h5 is corrupted or was modified"):
        GroupDNet.from_preset(tmp_path / "p")


def test_unknown_name_and_wrong_class(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown preset 'nope'.*Available presets"):
        GroupDNet.from_preset("nope")
    _model().save_to_preset(tmp_path / "p")
    with pytest.raises(ValueError, match="holds a GroupDNet, not a MulNet"):
        MulNet.from_preset(tmp_path / "p")
    assert isinstance(load_preset(tmp_path / "p"), GroupDNet)
