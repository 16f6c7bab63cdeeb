"""A raw ADE20K annotation means the same classes in training and in every reader of label
files: the API, `smis sample` / `smis encode`, the demo page and evaluation."""

import numpy as np
import pytest
from PIL import Image

from smis_layers import applications as apps
from smis_layers.cli import main
from smis_layers.data import SamplePaths, load_sample
from smis_layers.data.labels import to_model_labels
from smis_layers.layers.group_decreasing_schedule import GroupDecreasingSchedule
from smis_layers.models import from_preset
from smis_layers.models.groupdnet.groupdnet import GroupDNet
from smis_layers.utils.images import colourize

SIZE = 64


@pytest.fixture(scope="module")
def ade(tmp_path_factory):
    """A tiny 151-class preset recording the ADE20K convention, and a raw annotation + image."""
    folder = tmp_path_factory.mktemp("ade")
    model = GroupDNet(
        num_classes=151,
        image_size=(SIZE, SIZE),
        schedule=GroupDecreasingSchedule.decreasing(  # classes merged from the start: tiny
            151, 2, 64, latent_size=16, norm_hidden_channels=4, start_groups=8
        ),
        encoder_channels=151,
        encoder_layers=2,
        split_mode="mask",
        spectral_norm=False,
        seed=0,
    )
    model.save_to_preset(folder / "preset", metadata={"label_convention": "ade20k"})
    raw = np.zeros((SIZE, SIZE), "uint8")  # 0: "other"
    raw[:, 20:40], raw[:, 40:] = 1, 150
    Image.fromarray(raw).save(folder / "raw.png")
    pixels = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype="uint8")
    Image.fromarray(pixels).save(folder / "image.png")
    expected = np.full((SIZE, SIZE), 150, "int32")
    expected[:, 20:40], expected[:, 40:] = 0, 149
    return folder, from_preset(folder / "preset"), expected


def test_the_convention_maps_ade20k_annotations_as_the_official_loader():
    raw = np.array([[0, 1, 2, 150]])
    np.testing.assert_array_equal(to_model_labels(raw, "ade20k"), [[150, 0, 1, 149]])
    np.testing.assert_array_equal(to_model_labels(raw, "identity"), raw)
    with pytest.raises(ValueError, match=r"values \[255\] are outside \[0, 34\] for the citys"):
        to_model_labels(np.array([[3, 255]]), "cityscapes", source="x.png")
    with pytest.raises(ValueError, match="Unknown label convention 'ade'"):
        to_model_labels(raw, "ade")


def test_load_mask_reads_an_annotation_as_the_training_loader_does(ade):
    folder, model, expected = ade
    assert model.label_convention == "ade20k"
    np.testing.assert_array_equal(apps.load_labels(folder / "raw.png", model), expected)
    trained = load_sample(
        "ade20k", SamplePaths(image=folder / "image.png", mask=folder / "raw.png"), SIZE
    )
    np.testing.assert_array_equal(trained["masks"], expected)
    # without a model: the file's values, unless a convention is named
    assert apps.load_labels(folder / "raw.png").max() == 150
    np.testing.assert_array_equal(
        apps.load_labels(folder / "raw.png", label_convention="ade20k"), expected
    )
    # zoo presets record no convention: identity
    assert from_preset("groupdnet_shapes64").label_convention == "identity"


def test_cli_sample_and_encode_apply_the_preset_convention(ade, tmp_path):
    folder, _, expected = ade
    preset, raw = str(folder / "preset"), str(folder / "raw.png")
    codes = tmp_path / "codes.npz"
    argv = ["--preset", preset, "--labels", raw, "--image", str(folder / "image.png")]
    assert main(["encode", *argv, "--out", str(codes)]) == 0
    with np.load(codes) as stored:
        np.testing.assert_array_equal(stored["labels"], expected)
    out = tmp_path / "sample.png"
    assert main(["sample", "--preset", preset, "--labels", raw, "--n", "1", "--out", str(out)]) == 0
    drawn_mask = np.asarray(Image.open(out))[4 : 4 + 2 * SIZE : 2, 4 : 4 + 2 * SIZE : 2]
    np.testing.assert_array_equal(drawn_mask, colourize(expected))


def test_the_demo_page_applies_the_preset_convention(ade, monkeypatch):
    from smis_layers.serve.app import DemoCallbacks
    from smis_layers.serve.engine import DemoEngine

    folder, model, expected = ade
    engine = DemoEngine(model, num_examples=1, compile=False)
    seen = {}

    def copy_appearance(state, class_index, image, labels):
        seen["labels"] = labels
        return state

    monkeypatch.setattr(engine, "copy_appearance", copy_appearance)
    state = engine.start(0, 0)
    image = np.asarray(Image.open(folder / "image.png"))
    DemoCallbacks(engine).copy_appearance(state, "0", image, Image.open(folder / "raw.png"))
    np.testing.assert_array_equal(seen["labels"], expected)


def test_evaluation_refuses_a_preset_of_another_convention(ade):
    from smis_layers.metrics.evaluate import evaluate_presets

    folder, _, _ = ade
    with pytest.raises(ValueError, match="trained on ade20k labels"):
        evaluate_presets([folder / "preset"], n_images=2, progress=False)


def test_files_of_any_size_are_resized_as_the_training_loader_resizes_them(ade, tmp_path):
    folder, model, _ = ade
    rng = np.random.default_rng(1)
    raw = np.repeat(rng.integers(0, 151, (10, 8)), 10, axis=0).repeat(12, axis=1)  # 100x96
    Image.fromarray(raw.astype("uint8")).save(tmp_path / "raw.png")
    pixels = rng.integers(0, 256, (100, 96, 3), dtype="uint8")
    Image.fromarray(pixels).save(tmp_path / "image.png")
    trained = load_sample(
        "ade20k", SamplePaths(image=tmp_path / "image.png", mask=tmp_path / "raw.png"), SIZE
    )
    np.testing.assert_array_equal(apps.load_labels(tmp_path / "raw.png", model), trained["masks"])
    image = apps.load_image(tmp_path / "image.png", model)
    np.testing.assert_allclose(image, trained["images"] / 127.5 - 1.0, atol=1e-6)
    out = tmp_path / "sample.png"
    argv = ["--preset", str(folder / "preset"), "--labels", str(tmp_path / "raw.png")]
    assert main(["sample", *argv, "--n", "1", "--out", str(out)]) == 0
