"""The application commands end to end on the shipped preset: outputs, determinism, codes
files, the gallery, and bad input answered with a message and exit status 1."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from smis_layers import applications as apps
from smis_layers.cli import main
from smis_layers.models import from_preset
from smis_layers.utils.images import to_uint8

PRESET = "groupdnet_shapes64"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Two example scenes as PNG masks and images."""
    folder = tmp_path_factory.mktemp("inputs")
    data = apps.example_data(from_preset(PRESET), 2, seed=1000)
    for i in range(2):
        Image.fromarray(data["masks"][i].astype("uint8")).save(folder / f"mask{i}.png")
        Image.fromarray(to_uint8(data["images"][i])).save(folder / f"image{i}.png")
    return folder


def _grid(path):
    return np.asarray(Image.open(path))


def test_sample_writes_a_deterministic_grid(files, tmp_path):
    argv = ["sample", "--preset", PRESET, "--labels", str(files / "mask0.png"), "--n", "3"]
    assert main([*argv, "--out", str(tmp_path / "a.png")]) == 0
    assert main([*argv, "--out", str(tmp_path / "b.png")]) == 0
    grid = _grid(tmp_path / "a.png")
    assert grid.shape == (2 * (64 + 4), 2 * (4 * 66 + 2), 3)
    np.testing.assert_array_equal(grid, _grid(tmp_path / "b.png"))
    assert main([*argv, "--out", str(tmp_path / "c.png"), "--seed", "1"]) == 0
    assert np.abs(grid.astype(int) - _grid(tmp_path / "c.png")).mean() > 1
    assert main([*argv, "--out", str(tmp_path / "d.png"), "--shared-codes"]) == 0
    assert np.abs(grid.astype(int) - _grid(tmp_path / "d.png")).mean() > 1
    # the zoo preset ships a fitted code prior: the default draws from it
    assert main([*argv, "--out", str(tmp_path / "e.png"), "--prior", "fitted"]) == 0
    np.testing.assert_array_equal(grid, _grid(tmp_path / "e.png"))
    assert main([*argv, "--out", str(tmp_path / "f.png"), "--prior", "standard"]) == 0
    assert np.abs(grid.astype(int) - _grid(tmp_path / "f.png")).mean() > 1


def test_existing_output_needs_overwrite(files, tmp_path, capsys):
    out = tmp_path / "a.png"
    out.write_bytes(b"mine")
    argv = ["sample", "--labels", str(files / "mask0.png"), "--n", "1", "--out", str(out)]
    assert main(argv) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err and out.read_bytes() == b"mine"
    assert main([*argv, "--overwrite"]) == 0


def test_resample_class_mix_manipulate_morph_write_their_grids(files, tmp_path):
    mask, image = str(files / "mask0.png"), str(files / "image0.png")
    other = f"{files / 'image1.png'}:{files / 'mask1.png'}"
    commands = {
        "resample-class": ["--labels", mask, "--class", "0", "--n", "2"],
        "mix": ["--labels", mask, "--from", f"0={other}", "--from", "1=seed:3"],
        "manipulate": ["--labels", mask, "--image", image, "--edit", "replace:1=0"],
        "morph": ["--labels", mask, "--a", image, "--b", other, "--steps", "4"],
    }
    for name, argv in commands.items():
        out = tmp_path / f"{name}.png"
        assert main([name, "--preset", PRESET, *argv, "--out", str(out)]) == 0, name
        assert _grid(out).ndim == 3, name
    gif = Image.open(tmp_path / "morph.gif")
    assert gif.n_frames == 4 + 2


def test_encode_then_decode_reproduces_the_reconstruction(files, tmp_path):
    mask, image = files / "mask0.png", files / "image0.png"
    codes = tmp_path / "codes.npz"
    assert main(["encode", "--image", str(image), "--labels", str(mask), "--out", str(codes)]) == 0
    assert main(["decode", "--codes", str(codes), "--out", str(tmp_path / "d.png")]) == 0
    model = from_preset(PRESET)
    m, i = apps.load_labels(mask, model), apps.load_image(image, model)
    with np.load(codes) as stored:
        np.testing.assert_allclose(stored["z"], apps.encode(model, i, m), atol=1e-6)
    expected = to_uint8(apps.decode(model, m, apps.encode(model, i, m)))
    decoded = _grid(tmp_path / "d.png")[2 * 2 : 2 * 66 : 2, 2 * 68 : 2 * 132 : 2]
    assert np.abs(decoded.astype(int) - expected).max() <= 1


def test_demo_gallery(tmp_path):
    assert main(["demo", "--out", str(tmp_path / "g")]) == 0
    page = (tmp_path / "g" / "index.html").read_text()
    for name in ("sample", "resample_class", "mix", "manipulate", "morph"):
        assert f'src="{name}.png"' in page and (tmp_path / "g" / f"{name}.png").is_file()
    rows = np.asarray(Image.open(tmp_path / "g" / "sample.png"))
    assert rows.shape[0] == 2 * (2 * 64 + 3 * 2)  # fitted and standard prior, scale 2


def test_zoo_list(capsys):
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "| groupdnet_shapes64 | GroupDNet |" in out
    row = next(line for line in out.splitlines() if line.startswith("| groupdnet_shapes64"))
    assert "| - |" not in row  # the headline metrics that `smis evaluate` recorded


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sample", "--labels", "missing.png"], "label file missing.png does not exist"),
        (["sample", "--labels", "{bad_labels}"], r"labels [9] outside [0, 8)"),
        (["sample", "--labels", "{small}"], "must be a 64x64 label map"),
        (["resample-class", "--labels", "{mask}", "--class", "12"], "must be in [0, 8)"),
        (["sample", "--preset", "nope", "--labels", "{mask}"], "Unknown preset 'nope'"),
        (["mix", "--labels", "{mask}", "--from", "x=seed:1"], "the class must be an integer"),
        (["manipulate", "--labels", "{mask}", "--image", "{mask}", "--edit", "swap"], "--edit"),
        (["decode", "--codes", "{mask}"], "not a readable .npz"),
    ],
)
def test_bad_input_exits_1_with_a_message(files, tmp_path, capsys, argv, message):
    Image.fromarray(np.full((64, 64), 9, "uint8")).save(tmp_path / "bad.png")
    np.save(tmp_path / "small.npy", np.zeros((32, 32), "int32"))  # PNGs are resized, not .npy
    names = {"bad_labels": tmp_path / "bad.png", "small": tmp_path / "small.npy"}
    names["mask"] = files / "mask0.png"
    argv = [a.format(**names) for a in argv]
    assert main([*argv, "--out", str(tmp_path / "o.png")] if argv[0] != "decode" else argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_console_script_reports_errors_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "smis_layers.cli", "sample", "--labels", str(tmp_path / "no.npy")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_evaluate_record_writes_the_page_metadata_and_card(tmp_path, capsys):
    import json
    import shutil

    from smis_layers.presets import zoo_directory

    preset = tmp_path / "g"
    shutil.copytree(zoo_directory() / PRESET, preset)
    page = tmp_path / "zoo.md"
    argv = ["evaluate", "--presets", str(preset), "--n-images", "2", "--seed", "0", "1"]
    assert main([*argv, "--record", "--zoo-page", str(page)]) == 0
    assert "| real images |" in capsys.readouterr().out
    text = page.read_text()
    assert "mIoU" in text and "| g |" in text and "--n-images 2 --seed 0 1" in text
    metadata = json.loads((preset / "metadata.json").read_text())
    metrics = metadata["metrics"]
    assert {"miou", "miou_std", "mcsd_l1", "mocd_l1", "miou_standard_prior"} <= set(metrics)
    card = (preset / "README.md").read_text()
    assert "## Metrics" in card and f"| miou | {metrics['miou']:.4g} ± " in card
    assert "| miou_std |" not in card


def test_decode_uses_the_model_recorded_by_encode(files, tmp_path):
    mask, image = files / "mask0.png", files / "image0.png"
    codes, out = tmp_path / "codes.npz", tmp_path / "d.png"
    argv = ["--image", str(image), "--labels", str(mask), "--out", str(codes)]
    assert main(["encode", "--preset", "mulnet_shapes64", *argv]) == 0
    assert main(["decode", "--codes", str(codes), "--out", str(out)]) == 0
    model = from_preset("mulnet_shapes64")
    m, i = apps.load_labels(mask, model), apps.load_image(image, model)
    expected = to_uint8(apps.decode(model, m, apps.encode(model, i, m)))
    decoded = _grid(out)[2 * 2 : 2 * 66 : 2, 2 * 68 : 2 * 132 : 2]
    assert np.abs(decoded.astype(int) - expected).max() <= 1


def test_decode_refuses_codes_of_another_model_and_warns_on_other_weights(files, tmp_path, capsys):
    codes = tmp_path / "codes.npz"
    argv = ["--image", str(files / "image0.png"), "--labels", str(files / "mask0.png")]
    assert main(["encode", *argv, "--out", str(codes)]) == 0
    with np.load(codes) as stored:
        fields = dict(stored)
    assert str(fields["preset"]) == PRESET and int(fields["num_classes"]) == 8

    def decode_variant(name, **changes):
        path = tmp_path / f"{name}.npz"
        np.savez(path, **{k: v for k, v in {**fields, **changes}.items() if v is not None})
        status = main(["decode", "--codes", str(path), "--out", str(tmp_path / f"{name}.png")])
        return status, capsys.readouterr().err

    status, err = decode_variant("classes", num_classes=np.array(35))
    assert status == 1 and "encoded by a 35-class model" in err and "has 8 classes" in err
    status, err = decode_variant(
        "shape", z=fields["z"][:2, :2], latent_shape=np.array((2, 2, fields["z"].shape[-1]))
    )
    channels = fields["z"].shape[-1]
    assert status == 1 and f"codes of shape (2, 2, {channels})" in err
    assert f"(4, 4, {channels})" in err
    status, err = decode_variant("retrained", weights_sha256=np.array("0" * 64))
    assert status == 0 and "are not the ones that encoded" in err
    status, err = decode_variant("old", weights_sha256=None, num_classes=None, latent_shape=None)
    assert status == 0 and "records no weights hash" in err
    status, err = decode_variant("anonymous", preset=None)
    assert status == 1 and "records no preset; pass --preset" in err


def _fake_rows(presets, n_images, seed, segmenter, diversity_images=None):
    """`evaluate_presets` rows without the evaluation (what a test of the writes needs)."""
    rows = [{"preset": "real images", "fid_segmenter": 1.0, "miou": 0.8}]
    for i, preset in enumerate(presets):
        rows.append({"preset": Path(preset).name, "fid_segmenter": 7.0 + i + seed, "miou": 0.2})
    return rows


def _snapshot(folder):
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_default_evaluate_writes_nothing(tmp_path, monkeypatch, capsys):
    import shutil

    from smis_layers import presets
    from smis_layers.metrics import evaluate

    zoo, cwd = tmp_path / "zoo", tmp_path / "cwd"
    shutil.copytree(presets.zoo_directory(), zoo)
    cwd.mkdir()
    monkeypatch.setattr(presets, "zoo_directory", lambda: zoo)
    monkeypatch.setattr(evaluate, "evaluate_presets", _fake_rows)
    monkeypatch.chdir(cwd)
    before = _snapshot(zoo)
    argv = ["evaluate", "--presets", PRESET, "mulnet_shapes64", "--n-images", "2"]
    assert main(argv) == 0
    assert "| groupdnet_shapes64 | 7.00 |" in capsys.readouterr().out
    assert _snapshot(zoo) == before and not any(cwd.iterdir())
    # --out writes that file only, and never over an existing one without --overwrite
    assert main([*argv, "--out", "table.md"]) == 0
    assert "| mulnet_shapes64 | 8.00 |" in (cwd / "table.md").read_text()
    assert main([*argv, "--out", "table.md"]) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert _snapshot(zoo) == before and [p.name for p in cwd.iterdir()] == ["table.md"]


def test_zoo_page_keeps_the_other_presets_rows(tmp_path, monkeypatch, capsys):
    from smis_layers.metrics import evaluate

    monkeypatch.setattr(evaluate, "evaluate_presets", _fake_rows)
    page = tmp_path / "zoo.md"
    argv = ["evaluate", "--n-images", "2", "--zoo-page", str(page)]
    assert main([*argv, "--presets", PRESET, "mulnet_shapes64", "vspade_shapes64"]) == 0
    page.write_text(page.read_text() + "<!-- findings -->\nWhat the table shows.\n")
    assert main([*argv, "--presets", "mulnet_shapes64", "--seed", "1"]) == 1  # other settings
    assert "measured with other settings (seed 0 (page) vs 1)" in capsys.readouterr().err
    assert main([*argv, "--presets", "mulnet_shapes64", "groupnet_shapes64"]) == 0
    text = page.read_text()
    rows = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")]
    assert rows == [
        "preset",
        "real images",
        PRESET,
        "mulnet_shapes64",
        "vspade_shapes64",
        "groupnet_shapes64",
    ]
    assert "| vspade_shapes64 | 9.00 |" in text and "| mulnet_shapes64 | 7.00 |" in text
    assert f"--presets {PRESET} mulnet_shapes64 vspade_shapes64 groupnet_shapes64" in text
    assert text.endswith("<!-- findings -->\nWhat the table shows.\n")
    # an evaluation of every preset of the page replaces the table whatever its settings
    presets = [PRESET, "mulnet_shapes64", "vspade_shapes64", "groupnet_shapes64"]
    assert main([*argv, "--presets", *presets, "--seed", "0", "1", "--n-images", "4"]) == 0
    text = page.read_text()
    assert "| mulnet_shapes64 | 8.50 ± 0.71 |" in text and "| vspade_shapes64 | 9.50 ± 0.71" in text
    assert "--n-images 4 --seed 0 1" in text
    assert text.endswith("<!-- findings -->\nWhat the table shows.\n")
    assert main([*argv, "--presets", "mulnet_shapes64", "--seed", "0", "0"]) == 1
    assert "--seed must not repeat a seed" in capsys.readouterr().err
    assert main([*argv, "--presets", "mulnet_shapes64", "--diversity-images", "3"]) == 1
    assert "diversity_images None (page) vs 3" in capsys.readouterr().err  # another setting
