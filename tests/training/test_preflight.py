"""`smis train` checks its arguments before building any model and every pair of a dataset
folder before building the trainer; small models for any class count come from a spec."""

import numpy as np
import pytest
from PIL import Image

from smis_layers.cli import main
from smis_layers.models.architectures import build_architecture, complete_architecture_name
from smis_layers.training import run as run_module
from tests.helpers import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "tensorflow", reason="folder data needs TensorFlow")


class BuildError(Exception):
    """Raised where a model would be built, to prove nothing was."""


def _ade20k(root, bad: bool):
    images, labels = root / "images" / "training", root / "annotations" / "training"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        pixels = rng.integers(0, 256, (40, 48, 3), dtype="uint8")
        Image.fromarray(pixels).save(images / f"ADE_{i}.jpg")
        Image.fromarray(rng.integers(0, 151, (40, 48)).astype("uint8")).save(
            labels / f"ADE_{i}.png"
        )
    if bad:
        Image.fromarray(np.zeros((20, 48), "uint8")).save(labels / "ADE_1.png")  # another size
        Image.fromarray(np.full((40, 48), 200, "uint8")).save(labels / "ADE_2.png")  # > 150


def _train(tmp_path, *extra):
    argv = ["train", "--steps", "2", "--checkpoint-every", "2", "--out", str(tmp_path / "run")]
    return main([*argv, "--verbose", "0", *extra])


def test_arguments_are_checked_before_any_model_is_built(tmp_path, monkeypatch, capsys):
    def no_build(*args, **kwargs):
        raise BuildError

    monkeypatch.setattr(run_module, "_architecture", no_build)
    assert _train(tmp_path, "--model", "groupdnet_nope") == 1
    assert "Unknown --model 'groupdnet_nope'; available:" in capsys.readouterr().err
    assert _train(tmp_path, "--model", "groupdnet:size=64,depth=3") == 1
    assert "Unknown setting 'depth'" in capsys.readouterr().err
    model = ["--model", "groupdnet:size=64,width=4"]
    assert _train(tmp_path, *model, "--data", "ade20k", "--data-dir", str(tmp_path / "no")) == 1
    err = capsys.readouterr().err
    assert "--data-dir" in err and "no such folder" in err
    monkeypatch.setattr("keras.backend.backend", lambda: "numpy")
    assert _train(tmp_path, *model) == 1
    assert "KERAS_BACKEND is 'numpy'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.filterwarnings("ignore::smis_layers.layers.ClassMixingWarning")  # width 4, C=151
def test_every_bad_pair_is_listed_before_the_trainer_is_built(tmp_path, monkeypatch, capsys):
    def no_trainer(*args, **kwargs):
        raise BuildError

    monkeypatch.setattr(run_module, "_build_trainer", no_trainer)
    _ade20k(tmp_path / "ade", bad=True)
    argv = ["--model", "groupdnet:size=64,width=4", "--data", "ade20k"]
    argv += ["--data-dir", str(tmp_path / "ade")]
    assert _train(tmp_path, *argv) == 1
    err = capsys.readouterr().err
    assert "2 of 3 ade20k samples are unusable" in err
    assert "ADE_1.jpg is 48x40 but its label map" in err and "values 200" in err
    assert not (tmp_path / "run").exists()
    with pytest.raises(BuildError):  # --no-verify: straight to the trainer
        _train(tmp_path, *argv, "--no-verify")


@pytest.mark.parametrize("num_classes", [35, 151])
def test_small_models_for_any_class_count(num_classes):
    name = complete_architecture_name("groupdnet:size=64,width=4", num_classes)
    assert name == f"groupdnet:classes={num_classes},size=64,width=4"
    with pytest.warns(UserWarning, match="mix the codes"):  # width 4 cannot keep C apart
        model = build_architecture(name)
    assert model.num_classes == num_classes and tuple(model.image_size) == (64, 64)
    assert model.count_params() < 3_000_000
    spade = build_architecture(complete_architecture_name("vspade:size=64,width=4", num_classes))
    assert spade.num_classes == num_classes and spade.count_params() < 3_000_000
