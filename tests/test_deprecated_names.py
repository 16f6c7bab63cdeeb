"""The 0.1.0 names of the vocabulary renaming ("mask" -> `labels` / `segmap` / `condition`) and
of the moved modules still work for one release: each warns (DeprecationWarning) and gives what
the new name gives."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

from smis_layers import applications as apps
from smis_layers.utils.deprecation import renamed_function, renamed_keywords
from tests.helpers import to_numpy
from tests.models.test_groupdnet import _images, _labels, tiny


@pytest.fixture(scope="module")
def model():
    return tiny()


def test_renamed_keywords_maps_the_old_keyword_and_refuses_both():
    @renamed_keywords(masks="labels")
    def f(labels, seed=0):
        return labels, seed

    with pytest.warns(DeprecationWarning, match=r"f\(masks=\.\.\.\)` is now `labels="):
        assert f(masks=3, seed=1) == (3, 1)
    with pytest.raises(TypeError, match="got both `labels=` and its deprecated spelling"):
        f(labels=1, masks=2)


def test_renamed_function_warns_and_calls_the_new_one():
    def new(x):
        return 2 * x

    old = renamed_function(new, "old")
    with pytest.warns(DeprecationWarning, match="`old` is now `.*new`"):
        assert old(3) == 6
    assert old.__name__ == "old"


def test_model_keywords_masks_and_segmap(model):
    labels, images = _labels(), _images()
    z = model.sample_z(2, seed=0, prior="standard")
    expected = model.generate(labels, z=z)
    with pytest.warns(DeprecationWarning, match="masks="):
        np.testing.assert_array_equal(model.generate(masks=labels, z=z), expected)
    with pytest.warns(DeprecationWarning, match="masks="):
        np.testing.assert_array_equal(model.synthesizer.generate(masks=labels, z=z), expected)
    mu, _ = model.encode(images, labels)
    with pytest.warns(DeprecationWarning, match="masks="):
        np.testing.assert_array_equal(model.encode(images, masks=labels)[0], mu)
    segmap = model.segmap(labels)
    with pytest.warns(DeprecationWarning, match="masks="):
        np.testing.assert_array_equal(to_numpy(model.segmap(masks=labels)), to_numpy(segmap))
    decoded = to_numpy(model.decode(z, segmap, training=False))
    with pytest.warns(DeprecationWarning, match="segmap="):
        np.testing.assert_array_equal(
            to_numpy(model.decode(z, segmap=segmap, training=False)), decoded
        )


def test_model_mask_channels_and_check_masks(model):
    with pytest.warns(DeprecationWarning, match="is now `GroupDNet.condition_channels`"):
        assert model.mask_channels == model.condition_channels == model.num_classes
    labels = _labels()
    with pytest.warns(DeprecationWarning, match="check_masks` is now"):
        checked = model.synthesizer.check_masks(labels)
    np.testing.assert_array_equal(checked, model.synthesizer.check_labels(labels))


@pytest.fixture(scope="module")
def preset_model():
    from smis_layers.models import from_preset

    return from_preset("groupdnet_shapes64")


def test_application_names_and_keywords(preset_model, tmp_path):
    model = preset_model
    with pytest.warns(DeprecationWarning, match="`example_masks` is now `example_labels`"):
        old = apps.example_masks(model, 2)
    labels = apps.example_labels(model, 2)
    np.testing.assert_array_equal(old, labels)
    with pytest.warns(DeprecationWarning, match="`check_mask` is now"):
        np.testing.assert_array_equal(
            apps.check_mask(model, labels[0]), apps.check_labels(model, labels[0])
        )
    with pytest.warns(DeprecationWarning, match="`paste_mask` is now"):
        np.testing.assert_array_equal(
            apps.paste_mask(labels[0], labels[1]), apps.paste_labels(labels[0], labels[1])
        )
    np.save(tmp_path / "labels.npy", labels[0])
    with pytest.warns(DeprecationWarning, match="`load_mask` is now"):
        loaded = apps.load_mask(tmp_path / "labels.npy", model)
    np.testing.assert_array_equal(loaded, apps.load_labels(tmp_path / "labels.npy", model))
    with pytest.warns(DeprecationWarning, match="mask="):
        sampled = apps.sample(model, mask=labels[0], n=2, seed=0)
    np.testing.assert_array_equal(sampled, apps.sample(model, labels[0], n=2, seed=0))
    image = np.zeros((*model.image_size, 3), "float32")
    with pytest.warns(DeprecationWarning, match="edited_mask="):
        old = apps.manipulate(model, image, mask=labels[0], edited_mask=labels[1])
    new = apps.manipulate(model, image, labels=labels[0], edited_labels=labels[1])
    np.testing.assert_array_equal(old[1], new[1])


def _fresh_import(name: str):
    sys.modules.pop(name, None)
    return importlib.import_module(name)


def test_moved_modules_are_deprecated_aliases():
    from smis_layers.models import segmaps
    from smis_layers.utils import validation

    with pytest.warns(DeprecationWarning, match="`smis_layers.models.masks` moved to"):
        masks = _fresh_import("smis_layers.models.masks")
    assert masks.prepare_segmap is segmaps.prepare_segmap
    assert masks.check_label_values is segmaps.check_label_values
    with pytest.warns(DeprecationWarning, match="`smis_layers.ops.checks` moved to"):
        checks = _fresh_import("smis_layers.ops.checks")
    assert checks.require_positive_int is validation.require_positive_int
    assert checks.IMAGE_RANGE_TOLERANCE == validation.IMAGE_RANGE_TOLERANCE


def test_cli_mask_option_is_a_deprecated_spelling_of_labels(capsys):
    from smis_layers.cli import build_parser

    args = build_parser().parse_args(["sample", "--mask", "a.png"])
    assert args.labels == "a.png"
    assert "--mask is deprecated" in capsys.readouterr().err
    assert build_parser().parse_args(["sample", "--labels", "b.png"]).labels == "b.png"
    assert "deprecated" not in capsys.readouterr().err


def test_codes_files_of_0_1_0_keep_their_label_map(tmp_path):
    from smis_layers.cli_applications import read_codes

    labels = np.arange(4).reshape(2, 2)
    np.savez(tmp_path / "old.npz", z=np.zeros((1, 1, 8)), mask=labels)
    np.testing.assert_array_equal(read_codes(tmp_path / "old.npz")["labels"], labels)


def test_demo_state_mask_and_engine_methods():
    from smis_layers.serve.engine import DemoEngine, DemoState

    labels = np.zeros((4, 4), "int32")
    state = DemoState(0, labels, np.zeros(1), np.zeros(1), np.zeros(1))
    with pytest.warns(DeprecationWarning, match="`DemoState.mask` is now `DemoState.labels`"):
        assert state.mask is state.labels
    assert DemoEngine.set_mask.__wrapped__ is DemoEngine.set_labels
    assert DemoEngine.mask_colours.__wrapped__ is DemoEngine.label_colours
