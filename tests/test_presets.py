import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from smis_layers import GroupDecreasingSchedule
from smis_layers.models import GroupDNet, MulNet
from smis_layers.presets import (
    available_presets,
    load_preset,
    preset_metadata,
    save_preset,
    verify_preset,
)
from smis_layers.utils.io import sha256_of


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


def test_discriminator_ships_separately_and_round_trips(tmp_path):
    from smis_layers.models import MultiScaleDiscriminator

    model = _model()
    discriminator = MultiScaleDiscriminator(num_scales=1, num_layers=2, base_filters=4)
    discriminator.build((None, 32, 32, 4 + 3))
    save_preset(model, tmp_path / "exact", discriminator=discriminator, discriminator_dtype=None)
    restored = MultiScaleDiscriminator.from_preset(tmp_path / "exact")
    x = np.random.default_rng(0).normal(size=(1, 32, 32, 7)).astype("float32")
    np.testing.assert_allclose(restored(x)[0][-1], discriminator(x)[0][-1], atol=1e-6)

    # The default stores the discriminator in float16: every float variable comes back as its
    # float16 rounding, in float32.
    save_preset(model, tmp_path / "p", discriminator=discriminator)
    metadata = json.loads((tmp_path / "p" / "metadata.json").read_text())
    assert {"discriminator.json", "discriminator.weights.npz"} <= set(metadata["sha256"])
    assert metadata["discriminator_parameters"] == discriminator.count_params()
    assert metadata["discriminator_storage_dtype"] == "float16"
    with np.load(tmp_path / "p" / "discriminator.weights.npz") as archive:
        assert {archive[name].dtype for name in archive.files} == {np.dtype("float16")}
    restored = MultiScaleDiscriminator.from_preset(tmp_path / "p")
    for original, loaded in zip(discriminator.weights, restored.weights, strict=True):
        assert loaded.dtype == "float32"
        expected = np.asarray(original.numpy(), "float16").astype("float32")
        np.testing.assert_array_equal(loaded.numpy(), expected)
    np.testing.assert_allclose(restored(x)[0][-1], discriminator(x)[0][-1], rtol=0.02, atol=0.02)
    with pytest.raises(ValueError, match="ships no discriminator"):
        _model().save_to_preset(tmp_path / "q")
        MultiScaleDiscriminator.from_preset(tmp_path / "q")


def test_config_that_does_not_match_the_weights_lists_the_variables(tmp_path):
    _model().save_to_preset(tmp_path / "p")
    other = GroupDNet(
        num_classes=4,
        image_size=32,
        encoder_channels=12,
        schedule=GroupDecreasingSchedule.decreasing(4, 4, 32),
    )
    other.save_to_preset(tmp_path / "other")
    # A config edited by hand (its sha256 updated) that no longer describes the weights.
    config = (tmp_path / "other" / "config.json").read_bytes()
    (tmp_path / "p" / "config.json").write_bytes(config)
    metadata = json.loads((tmp_path / "p" / "metadata.json").read_text())
    metadata["sha256"]["config.json"] = sha256_of(tmp_path / "p" / "config.json")
    (tmp_path / "p" / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match=r"(?s)do not match the model.*shape mismatch: encoder"):
        GroupDNet.from_preset(tmp_path / "p")


def test_unreadable_weights_file_is_named(tmp_path):
    _model().save_to_preset(tmp_path / "p")
    weights = tmp_path / "p" / "model.weights.h5"
    weights.write_bytes(b"not hdf5")
    metadata = json.loads((tmp_path / "p" / "metadata.json").read_text())
    metadata["sha256"]["model.weights.h5"] = sha256_of(weights)
    (tmp_path / "p" / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match=r"model.weights.h5 is not a readable HDF5"):
        GroupDNet.from_preset(tmp_path / "p")


def test_zoo_presets_verify_and_stay_small():
    assert {"groupdnet_shapes64"} <= set(available_presets())
    for name in available_presets():
        directory = verify_preset(name)
        metadata = preset_metadata(name)
        assert sum(metadata["file_bytes"].values()) < 10e6, name
        assert (directory / "README.md").is_file()
        if metadata["class_name"] != "ShapesSegmenter":
            assert (directory / "samples.png").is_file()
            assert metadata["training"]["completed_steps"] > 0
            assert "code_prior.npz" in metadata["sha256"], name  # random codes like the data's
            card = (directory / "README.md").read_text()
            whole_code = metadata["class_name"] == "VSPADE"  # its code belongs to no class
            prior = "one Gaussian over the whole code" if whole_code else "a Gaussian per class"
            assert f"`code_prior.npz`: {prior} fitted" in card, name


def _edge_energy(images: np.ndarray) -> float:
    """Mean absolute difference between neighbouring pixels: speckle noise drives it up."""
    return float(np.abs(np.diff(images, axis=1)).mean() + np.abs(np.diff(images, axis=2)).mean())


@pytest.mark.parametrize(
    "name",
    ["groupdnet_shapes64", "mulnet_shapes64", "groupnet_shapes64", "groupenc_shapes64",
     "vspade_shapes64"],
)  # fmt: skip
def test_zoo_presets_draw_no_speckle(name):
    """The zoo's images must look like the data. On 8 held-out scenes the presets'
    reconstructions and random samples have 1.3-1.6x the real images' edge energy; the first
    GroupNet preset, which drew coloured speckle (docs/zoo.md), had 2.6-2.7x."""
    from smis_layers.applications import example_data
    from smis_layers.data.synthetic import HELD_OUT_SEED
    from smis_layers.models import from_preset

    model = from_preset(name)
    data = example_data(model, 8, seed=HELD_OUT_SEED)
    real = _edge_energy(np.asarray(data["images"], "float32"))
    codes, _ = model.encode(data["images"], data["masks"])
    for z in (codes, None):
        images = np.asarray(model.generate(data["masks"], z=z, seed=0), "float32")
        assert _edge_energy(images) < 2 * real, (name, _edge_energy(images), real)


def test_wheel_ships_the_zoo(tmp_path):
    """Build the wheel, install it alone into a fresh folder, and load a preset from there with
    the rest of the environment's packages but not this checkout."""
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(root),
        ],
        check=True,
        timeout=600,
        capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("smis_layers-*.whl"))
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=600,
        capture_output=True,
    )
    system_site = [p for p in sys.path if p.endswith("site-packages")]
    # -S: no .pth files, so this checkout's editable-install hook cannot shadow the wheel.
    code = (
        "import sys; sys.path[:0] = [sys.argv[1]]; sys.path += sys.argv[2:]\n"
        "import smis_layers, numpy as np\n"
        "from smis_layers.models import from_preset\n"
        "assert smis_layers.__file__.startswith(sys.argv[1]), smis_layers.__file__\n"
        "model = from_preset('groupdnet_shapes64')\n"
        "images = model.generate(np.zeros((1, 64, 64), 'int32'), seed=0)\n"
        "print(images.shape, float(np.abs(images).max()) <= 1.0, model.code_prior is not None)\n"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code, str(target), *system_site],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(1, 64, 64, 3) True True" in result.stdout  # the code prior ships too


def test_moved_io_names_stay_importable_from_presets_with_a_warning():
    import smis_layers.model_card
    import smis_layers.presets
    import smis_layers.utils.io

    for name in ("atomic_write_bytes", "read_npz_arrays", "sha256_of", "weights_mismatches"):
        with pytest.warns(DeprecationWarning, match=f"utils.io.{name}"):
            assert getattr(smis_layers.presets, name) is getattr(smis_layers.utils.io, name)
    with pytest.warns(DeprecationWarning, match="model_card.write_model_card"):
        alias = smis_layers.presets.write_model_card
    assert alias is smis_layers.model_card.write_model_card
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        smis_layers.presets.nothing  # noqa: B018


def test_float16_storage_keeps_a_variable_that_would_overflow(tmp_path):
    import keras

    from smis_layers.utils.io import atomic_save_variables, load_variables

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    kernel, bias = model.weights
    kernel.assign(np.array([[1e6, 1.0], [2.0, 3.0]], "float32"))  # beyond float16's 65504
    atomic_save_variables(model, tmp_path / "v.npz", dtype="float16")
    with np.load(tmp_path / "v.npz") as archive:
        assert archive[kernel.path].dtype == np.float32
        assert archive[bias.path].dtype == np.float16
    kernel.assign(np.zeros((2, 2), "float32"))
    load_variables(model, tmp_path / "v.npz")
    assert kernel.numpy()[0, 0] == 1e6
