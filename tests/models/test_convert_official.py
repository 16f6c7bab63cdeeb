"""The official-checkpoint converter: parity with a re-statement of the official PyTorch code.

The reference (`official_reference.py`) has the official state-dict names and forward pass; its
weights, batch-norm statistics and spectral-norm vectors are randomized, converted, and the
Keras GroupDNet must then produce the same images and codes in inference mode.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from smis_layers import DecoderBlockSpec, GroupDecreasingSchedule  # noqa: E402
from smis_layers.cli import main  # noqa: E402
from smis_layers.convert import (  # noqa: E402
    CheckpointMismatchError,
    assign_official_weights,
    convert_official_checkpoint,
    load_torch_state_dict,
)
from smis_layers.models import GroupDNet  # noqa: E402
from smis_layers.utils.io import sha256_of  # noqa: E402
from tests.helpers import to_numpy  # noqa: E402
from tests.models import official_reference as ref  # noqa: E402
from tests.torch_reference import nchw, nhwc  # noqa: E402

ATOL = 1e-4


@dataclasses.dataclass(frozen=True)
class Tiny:
    """A tiny official-style GroupDNet, built both as the PyTorch reference and in Keras."""

    variant: str
    num_classes: int
    fc_filters: int
    fc_groups: int
    blocks: tuple[ref.BlockSpec, ...]
    latent_size: tuple[int, int]
    encoder_channels: int
    norm: str = "batch"
    hidden: int = 16  # CGNorm hidden width of the "deepfashion" variant (official 128)
    unused_blocks: tuple[ref.BlockSpec, ...] = ()

    @property
    def image_size(self) -> tuple[int, int]:
        scale = 2 ** (len(self.blocks) - 1)
        return (self.latent_size[0] * scale, self.latent_size[1] * scale)

    @property
    def encoder_layers(self) -> int:
        return len(self.blocks) - 1

    def references(self):
        generator = ref.GeneratorRef(
            self.num_classes,
            self.variant,
            self.fc_filters,
            self.fc_groups,
            self.blocks,
            self.unused_blocks,
            self.latent_size,
            norm=self.norm,
            deepfashion_hidden=self.hidden,
        )
        encoder = ref.EncoderRef(self.num_classes, self.encoder_channels, self.encoder_layers)
        return generator, encoder

    def keras_config(self) -> dict:
        specs = []
        for i, (name, _, fout, groups) in enumerate(self.blocks):
            w = ref.cgnorm_widths(self.variant, self.num_classes, groups, self.hidden)
            specs.append(
                DecoderBlockSpec(
                    name, fout, groups, w["hidden"], w["shared_groups"], w["groups"], i > 0
                )
            )
        schedule = GroupDecreasingSchedule(
            self.num_classes, self.latent_size, 8, self.fc_filters, self.fc_groups, specs
        )
        return {
            "num_classes": self.num_classes,
            "image_size": list(self.image_size),
            "schedule": schedule.get_config(),
            "encoder_channels": self.encoder_channels,
            "encoder_layers": self.encoder_layers,
            "norm": self.norm,
            "use_instance_edges": self.variant == "cityscapes",
        }

    def data(self, seed: int, batch: int = 2) -> dict:
        """Label maps of overlapping rectangles (one class absent), instances, images, codes."""
        rng = np.random.default_rng(seed)
        height, width = self.image_size
        c = self.num_classes
        labels = np.zeros((batch, height, width), "int64")
        for b in range(batch):
            for k in range(1, c - 1):  # class c - 1 never appears
                h, w = rng.integers(3, height // 2 + 1), rng.integers(3, width // 2 + 1)
                y, x = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
                labels[b, y : y + h, x : x + w] = k
        instances = None
        if self.variant == "cityscapes":
            instances = labels * 10 + (rng.integers(0, 2, (batch, 1, width)) * (labels > 2))
        return {
            "labels": labels,
            "instances": instances,
            "images": rng.uniform(-1, 1, (batch, height, width, 3)).astype("float32"),
            "z": rng.normal(size=(batch, *self.latent_size, 8 * c)).astype("float32"),
        }


def _semantics(config: Tiny, data: dict):
    return ref.input_semantics(data["labels"], config.num_classes, data["instances"])


def _encoder_input(config: Tiny, data: dict):
    one_hot = _semantics(config, data)[:, : config.num_classes]
    return ref.crop_resize_classes(one_hot, nchw(data["images"]))


def randomized_references(config: Tiny, seed: int = 0):
    """The reference networks with random weights and statistics (calibrated on other data)."""
    generator, encoder = config.references()
    calibration = config.data(seed + 100, batch=4)
    semantics, z = _semantics(config, calibration), nchw(calibration["z"])
    ref.randomize_(generator, seed, calibrate=lambda module: module(semantics, z))
    encoder_input = _encoder_input(config, calibration)
    ref.randomize_(encoder, seed + 1, calibrate=lambda module: module(encoder_input))
    return generator, encoder


DEEPFASHION = Tiny(
    "deepfashion",
    num_classes=8,
    fc_filters=32,
    fc_groups=8,
    blocks=(
        ("head_0", 32, 32, 8),
        ("G_middle_0", 32, 32, 8),
        ("G_middle_1", 32, 32, 4),
        ("up_0", 32, 16, 4),
        ("up_1", 16, 8, 2),
        ("up_2", 8, 4, 2),
        ("up_3", 4, 2, 1),
    ),
    latent_size=(2, 2),
    encoder_channels=8,
)
CITYSCAPES = Tiny(
    "cityscapes",
    num_classes=4,
    fc_filters=64,
    fc_groups=4,
    blocks=(
        ("head_0", 64, 64, 4),
        ("G_middle_0", 64, 64, 4),
        ("G_middle_1", 64, 64, 2),
        ("up_0", 64, 32, 2),
        ("up_1", 32, 16, 2),
        ("up_2", 16, 8, 1),
        ("up_3", 8, 4, 1),
    ),
    latent_size=(1, 2),
    encoder_channels=4,
)
ADE20K = Tiny(  # C=6: hidden 2C where C % groups == 0 (groups 6, 2, 1), C * groups otherwise (4)
    "ade20k",
    num_classes=6,
    fc_filters=96,
    fc_groups=6,
    blocks=(
        ("head_0", 96, 96, 6),
        ("G_middle_0", 96, 64, 4),
        ("G_middle_1", 64, 32, 4),
        ("up_0", 32, 32, 2),
        ("up_1", 32, 16, 2),
        ("up_2", 16, 8, 1),
        ("up_3", 8, 4, 1),
    ),
    unused_blocks=(("up_4", 4, 2, 1),),
    latent_size=(2, 2),
    encoder_channels=6,
)
DEEPFASHION_INSTANCE = Tiny(  # instance-normalized CGNorm, 4x4 codes, 3 encoder layers
    "deepfashion",
    num_classes=4,
    fc_filters=16,
    fc_groups=4,
    blocks=(
        ("head_0", 16, 16, 4),
        ("G_middle_0", 16, 16, 4),
        ("G_middle_1", 16, 8, 2),
        ("up_0", 8, 4, 1),
    ),
    latent_size=(4, 4),
    encoder_channels=4,
    norm="instance",
    hidden=8,
)
CONFIGS = {
    "deepfashion": DEEPFASHION,
    "cityscapes": CITYSCAPES,
    "ade20k": ADE20K,
    "deepfashion_instance_norm": DEEPFASHION_INSTANCE,
}


def _converted(config: Tiny, seed: int = 0):
    generator, encoder = randomized_references(config, seed)
    model = GroupDNet(**config.keras_config())
    report = assign_official_weights(model, generator.state_dict(), encoder.state_dict())
    return model, generator, encoder, report


def _instance_kwargs(data):
    return {} if data["instances"] is None else {"instances": data["instances"]}


def _assert_close(actual, expected, what):
    diff = float(np.max(np.abs(np.asarray(actual) - np.asarray(expected))))
    assert diff <= ATOL, f"{what}: max abs difference {diff}"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_converted_model_matches_the_official_forward(name):
    config = CONFIGS[name]
    model, generator, encoder, report = _converted(config)
    data = config.data(seed=1)
    semantics = _semantics(config, data)
    with torch.no_grad():
        expected = nhwc(generator(semantics, nchw(data["z"])))
        mu_ref, logvar_ref = encoder(_encoder_input(config, data))
        expected_from_mu = nhwc(generator(semantics, mu_ref))

    # The comparison means something: images neither flat nor saturated, codes not tiny.
    assert expected.std() > 0.1 and np.mean(np.abs(expected) > 0.99) < 0.2
    assert nhwc(mu_ref).std() > 0.05

    images = model.generate(data["labels"], z=data["z"], **_instance_kwargs(data))
    _assert_close(images, expected, f"{name}: image from z")
    mu, logvar = model.encode(data["images"], data["labels"])
    _assert_close(mu, nhwc(mu_ref), f"{name}: mu")
    _assert_close(logvar, nhwc(logvar_ref), f"{name}: logvar")
    images = model.generate(data["labels"], z=mu, **_instance_kwargs(data))
    _assert_close(images, expected_from_mu, f"{name}: image from mu")

    generator_tensors = len(generator.state_dict())
    assert report.ignored_unused == tuple(
        sorted(k for k in generator.state_dict() if k.startswith("up_4."))
    )
    assert report.ignored_counters == sum(
        k.endswith("num_batches_tracked") and k not in report.ignored_unused
        for k in generator.state_dict()
    )
    assert report.generator_tensors == (
        generator_tensors - len(report.ignored_unused) - report.ignored_counters
    )
    assert report.encoder_tensors == len(encoder.state_dict())


def test_spectral_norm_is_folded_and_u_is_kept():
    model, generator, _, _ = _converted(DEEPFASHION_INSTANCE)
    conv = generator.up_0.conv_0
    weight_orig = conv.weight_orig.detach().double().numpy()
    u, v = conv.weight_u.double().numpy(), conv.weight_v.double().numpy()
    sigma = u @ weight_orig.reshape(weight_orig.shape[0], -1) @ v
    assert not math.isclose(sigma, 1.0, rel_tol=1e-3)
    wrapper = model.blocks[3].conv_0
    np.testing.assert_allclose(
        to_numpy(wrapper.layer.kernel), (weight_orig / sigma).transpose(2, 3, 1, 0), atol=1e-6
    )
    np.testing.assert_allclose(to_numpy(wrapper.vector_u), u[None], atol=1e-7)
    # PyTorch's eval-mode effective weight is exactly what the Keras kernel holds.
    np.testing.assert_allclose(
        to_numpy(wrapper.layer.kernel),
        conv.weight.detach().numpy().transpose(2, 3, 1, 0),
        atol=1e-6,
    )
    norm = model.blocks[0].norm_0.param_free_norm  # instance norm: nothing to convert
    assert not norm.weights


def test_batch_norm_statistics_are_converted():
    model, generator, _, _ = _converted(DEEPFASHION)
    torch_norm = generator.up_0.norm_s.param_free_norm
    keras_norm = model.blocks[3].norm_s.param_free_norm
    np.testing.assert_array_equal(to_numpy(keras_norm.moving_mean), torch_norm.running_mean)
    np.testing.assert_array_equal(to_numpy(keras_norm.moving_variance), torch_norm.running_var)
    assert not np.allclose(torch_norm.running_var.numpy(), 1.0)


@pytest.mark.parametrize(
    ("dataset", "ngf"), [("deepfashion", 8), ("cityscapes", 70), ("ade20k", 8)]
)
def test_official_structures_convert(dataset, ngf):
    """The reference at the official structure (whose state-dict names and shapes equal the
    official code's, checked against it outside this repository) fits GroupDNet.official."""
    generator = ref.official_generator(dataset, ngf)
    encoder = ref.official_encoder(dataset)
    schedule = GroupDecreasingSchedule.official(dataset, ngf=ngf)
    model = GroupDNet.official(dataset, schedule=schedule.get_config())
    report = assign_official_weights(model, generator.state_dict(), encoder.state_dict())
    unused = [k for k in generator.state_dict() if k.startswith("up_4.")]
    assert bool(unused) == (dataset == "ade20k")
    assert report.ignored_unused == tuple(sorted(unused))
    assert report.encoder_tensors == len(encoder.state_dict()) == 22


def test_every_mismatch_is_reported_at_once_and_nothing_is_assigned():
    config = DEEPFASHION_INSTANCE
    generator, encoder = randomized_references(config)
    model = GroupDNet(**config.keras_config())
    before = [to_numpy(v) for v in model.weights]
    state = dict(generator.state_dict())
    del state["head_0.conv_0.weight_orig"]
    state["head_0.conv_2.weight"] = torch.zeros(4, 4, 3, 3)
    state["conv_img.bias"] = torch.zeros(4)
    encoder_state = dict(encoder.state_dict())
    del encoder_state["fc_mu.bias"]
    with pytest.raises(ValueError) as info:
        assign_official_weights(model, state, encoder_state)
    message = str(info.value)
    assert "4 problems" in message
    assert "generator state dict: missing head_0.conv_0.weight_orig (expected shape " in message
    assert "generator state dict: unexpected head_0.conv_2.weight (shape (4, 4, 3, 3))" in message
    assert "generator state dict: wrong shape conv_img.bias: expected (3,), got (4,)" in message
    assert "encoder state dict: missing fc_mu.bias (expected shape (32,))" in message
    for variable, value in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(to_numpy(variable), value)


def test_architecture_mismatches_are_errors():
    # A batch-norm checkpoint into an instance-norm model: the running statistics are extra.
    batch_config = dataclasses.replace(DEEPFASHION_INSTANCE, norm="batch")
    generator, _ = batch_config.references()
    model = GroupDNet(**DEEPFASHION_INSTANCE.keras_config())
    with pytest.raises(
        ValueError, match=r"unexpected head_0\.norm_0\.param_free_norm\.running_mean"
    ):
        assign_official_weights(model, generator.state_dict())
    # up_4 is ignored only because the official ADE20K forward never calls it.
    generator, _ = DEEPFASHION_INSTANCE.references()
    state = {f"module.{k}": v for k, v in generator.state_dict().items()}
    with pytest.raises(ValueError, match=r"nn\.DataParallel"):
        assign_official_weights(model, state)
    state = dict(generator.state_dict())
    weight = state["up_0.conv_1.weight_orig"]
    state["up_0.conv_1.weight_v"] = torch.zeros(weight[0].numel())
    with pytest.raises(ValueError, match=r"up_0\.conv_1: the spectral norm's .* sigma = 0\.0"):
        assign_official_weights(model, state)


def test_encoder_is_optional():
    config = DEEPFASHION_INSTANCE
    generator, _ = randomized_references(config)
    model = GroupDNet(**config.keras_config())
    encoder_before = [to_numpy(v) for v in model.encoder.weights]
    report = assign_official_weights(model, generator.state_dict(), None)
    assert report.encoder_tensors == 0
    for variable, value in zip(model.encoder.weights, encoder_before, strict=True):
        np.testing.assert_array_equal(to_numpy(variable), value)


def test_load_torch_state_dict(tmp_path):
    generator, _ = DEEPFASHION_INSTANCE.references()
    path = tmp_path / "latest_net_G.pth"
    torch.save(generator.state_dict(), path)
    state = load_torch_state_dict(path)
    assert list(state) == list(generator.state_dict())
    np.testing.assert_array_equal(state["fc.weight"], generator.fc.weight.detach().numpy())

    unsafe = tmp_path / "unsafe.pth"  # any pickled object but tensors and containers
    torch.save({"x": datetime.timedelta(days=1)}, unsafe)
    with pytest.raises(ValueError, match="weights-only"):
        load_torch_state_dict(unsafe)
    not_a_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_a_dict)
    with pytest.raises(ValueError, match="not a state dict"):
        load_torch_state_dict(not_a_dict)
    with pytest.raises(FileNotFoundError):
        load_torch_state_dict(tmp_path / "missing.pth")


def test_missing_torch_is_a_clear_import_error(monkeypatch, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    with pytest.raises(ImportError, match=r'pip install "smis-layers\[torch\]"'):
        load_torch_state_dict(tmp_path / "latest_net_G.pth")


def _write_checkpoints(tmp_path, config: Tiny):
    generator, encoder = randomized_references(config)
    paths = {"G": tmp_path / "latest_net_G.pth", "E": tmp_path / "latest_net_E.pth"}
    torch.save(generator.state_dict(), paths["G"])
    torch.save(encoder.state_dict(), paths["E"])
    paths["config"] = tmp_path / "model_config.json"
    paths["config"].write_text(json.dumps(config.keras_config()))
    return generator, encoder, paths


def test_cli_converts_end_to_end(tmp_path, capsys):
    config = CITYSCAPES
    generator, encoder, paths = _write_checkpoints(tmp_path, config)
    out = tmp_path / "preset"
    argv = [
        "convert-official",
        "--generator",
        str(paths["G"]),
        "--encoder",
        str(paths["E"]),
        "--model-config",
        str(paths["config"]),
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert "CC BY-NC-SA 4.0" in capsys.readouterr().out

    model = GroupDNet.from_preset(out)
    data = config.data(seed=2)
    with torch.no_grad():
        expected = nhwc(generator(_semantics(config, data), nchw(data["z"])))
        mu_ref, _ = encoder(_encoder_input(config, data))
    _assert_close(
        model.generate(data["labels"], z=data["z"], **_instance_kwargs(data)),
        expected,
        "preset image",
    )
    _assert_close(model.encode(data["images"], data["labels"])[0], nhwc(mu_ref), "preset mu")
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["converted_from"] == "official SMIS"
    assert metadata["architecture"] == "custom GroupDNet config"
    assert metadata["source_files"]["generator"] == {
        "file": "latest_net_G.pth",
        "sha256": sha256_of(paths["G"]),
    }
    assert metadata["source_files"]["encoder"]["sha256"] == sha256_of(paths["E"])
    assert metadata["encoder_weights"].startswith("converted")
    assert "CC BY-NC-SA 4.0" in metadata["source_license"]

    # Existing output is never replaced without --overwrite.
    weights_before = (out / "model.weights.h5").read_bytes()
    assert main(argv) == 1
    assert "already exist" in capsys.readouterr().err
    assert (out / "model.weights.h5").read_bytes() == weights_before

    # Without --encoder (and with --overwrite) the metadata says the encoder is not converted.
    no_encoder = [a for a in argv if a not in ("--encoder", str(paths["E"]))]
    assert main([*no_encoder, "--overwrite"]) == 0
    assert "encoder keeps its initial weights" in capsys.readouterr().out
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["encoder_weights"].startswith("not converted")
    assert metadata["source_files"]["encoder"] is None
    # Its encoder is random: the API warns, the commands that encode refuse it.
    from smis_layers import applications as apps

    with pytest.warns(UserWarning, match="encoder has random weights"):
        apps.encode(GroupDNet.from_preset(out), data["images"][0], data["labels"][0])
    files = ["--labels", "m.png", "--image", "i.png"]
    assert main(["encode", "--preset", str(out), *files, "--out", str(tmp_path / "c.npz")]) == 1
    err = capsys.readouterr().err
    assert "converted without the official encoder" in err and "--encoder" in err


def test_cli_reports_mismatches(tmp_path, capsys):
    _, _, paths = _write_checkpoints(tmp_path, DEEPFASHION_INSTANCE)
    argv = ["convert-official", "--generator", str(paths["G"]), "--config", "deepfashion"]
    assert main([*argv, "--out", str(tmp_path / "preset")]) == 1
    err = capsys.readouterr().err
    assert "do not match this GroupDNet" in err and "another architecture" in err
    assert "wrong shape fc.weight" not in err and "--verbose lists the" in err
    assert len(err.strip().splitlines()) == 1
    assert main([*argv, "--out", str(tmp_path / "preset"), "--verbose"]) == 1
    assert "wrong shape fc.weight" in capsys.readouterr().err
    assert not (tmp_path / "preset" / "config.json").exists()


def test_converter_names_the_likely_architecture():
    generator, _ = DEEPFASHION_INSTANCE.references()
    model = GroupDNet(**DEEPFASHION_INSTANCE.keras_config())
    state = dict(generator.state_dict())
    state["fc.weight_orig"] = torch.zeros(4480, 8, 3, 3)  # the official Cityscapes fc
    with pytest.raises(CheckpointMismatchError) as info:
        assign_official_weights(model, state)
    assert "as the official cityscapes generator's; convert it with --config cityscapes" in (
        info.value.summary
    )
    assert any("fc.weight_orig" in p for p in info.value.problems)


def test_converter_says_what_a_wrong_file_is(tmp_path, capsys):
    _, _, paths = _write_checkpoints(tmp_path, DEEPFASHION_INSTANCE)
    out = ["--config", "deepfashion", "--out", str(tmp_path / "preset")]

    def convert(generator, encoder=None):
        encoder_args = [] if encoder is None else ["--encoder", str(encoder)]
        status = main(["convert-official", "--generator", str(generator), *encoder_args, *out])
        return status, capsys.readouterr().err

    status, err = convert(paths["E"], paths["G"])
    assert status == 1 and "wrong way round" in err and "Swap them" in err
    status, err = convert(paths["E"])
    assert (
        status == 1 and "holds the state dict of an official encoder, not of the generator" in err
    )
    page = tmp_path / "latest_net_G.html"
    page.write_text("<!DOCTYPE html><html>Google Drive</html>")
    status, err = convert(page)
    assert status == 1 and "is an HTML page" in err and "latest_net_G.pth" in err
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    status, err = convert(empty)
    assert status == 1 and "is empty" in err
    assert not (tmp_path / "preset").exists()


def test_convert_official_checkpoint_api(tmp_path):
    _, _, paths = _write_checkpoints(tmp_path, DEEPFASHION_INSTANCE)
    config = json.loads(paths["config"].read_text())
    out = convert_official_checkpoint(paths["G"], paths["E"], config, tmp_path / "preset")
    assert GroupDNet.from_preset(out).count_params() == GroupDNet(**config).count_params()
    with pytest.raises(FileExistsError, match="already exist"):
        convert_official_checkpoint(paths["G"], None, config, out)
