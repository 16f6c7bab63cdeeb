"""Reliability and safety guarantees (docs/guarantees.md): input validation at the entry points,
safe loading, atomic writes, crash and interrupt recovery of `smis train`, the memory estimate,
determinism and mixed precision.

The training tests use a tiny architecture (`TINY`, registered for the test) and run the
trainer eagerly: what they check is the run's orchestration (signals, checkpoints, resuming),
which is the same in graph mode, at a fraction of the tracing time on a loaded CPU.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import keras
import ml_dtypes
import numpy as np
import pytest

from smis_layers import CGNorm, ClassMaskSplit, GroupConv2D, GroupDecreasingSchedule
from smis_layers.models import GroupDNet
from smis_layers.training import run as run_module
from smis_layers.training import run_folder
from smis_layers.training.run import (
    CheckpointError,
    NonFiniteLossError,
    TrainingInterrupted,
    read_state,
    train_run,
)
from tests.helpers import BACKEND, TINY, TINY_ARGS, TINY_SETUP, to_numpy

ROOT = Path(__file__).resolve().parent.parent
needs_tensorflow = pytest.mark.skipif(BACKEND != "tensorflow", reason="the trainer needs TF")


def _trainer_weights(out: Path) -> list[np.ndarray]:
    model = GroupDNet.from_preset(out / "preset")
    return [to_numpy(v) for v in model.weights]


def _environment() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}


# ---------------------------------------------------------------------------- inputs
def _tiny_model(num_classes: int = 3, **overrides) -> GroupDNet:
    schedule = GroupDecreasingSchedule.decreasing(num_classes, 1, 8, norm_hidden_channels=3)
    config = {
        "num_classes": num_classes,
        "image_size": 8,
        "schedule": schedule,
        "encoder_channels": num_classes,
    }
    return GroupDNet(**{**config, **overrides})


def test_models_build_for_any_number_of_classes():
    """Regression: the default schedule gave CGNorm's mask convolution groups that do not
    divide C (any C but a power of two failed to build); found by tests/properties."""
    for c in (3, 5, 6, 7):
        model = GroupDNet(num_classes=c, image_size=8)
        assert model.generate(np.zeros((1, 8, 8), int), seed=0).shape == (1, 8, 8, 3)
    bad = GroupDecreasingSchedule(
        3, (4, 4), 1, 4, 1, [{"name": "b", "filters": 4, "groups": 2, "norm_hidden_channels": 2,
                              "norm_shared_groups": 2, "norm_groups": 2, "upsample": True}],
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"Block b: `norm_shared_groups` \(2\) must divide"):
        GroupDNet(num_classes=3, image_size=8, schedule=bad)


def test_image_ranges_are_checked_with_a_message():
    model = _tiny_model()
    labels = np.zeros((2, 8, 8), int)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"`images` must hold images in \[-1, 1\].*\[0, 255\]"):
        model.encode(rng.uniform(0, 255, (2, 8, 8, 3)), labels)
    with pytest.raises(ValueError, match="`images` must be finite; received 1 NaN"):
        model.encode(np.where(np.arange(384).reshape(2, 8, 8, 3) == 5, np.nan, 0.0), labels)
    byte_images = rng.integers(0, 256, (2, 8, 8, 3)).astype("uint8")
    with pytest.warns(UserWarning, match="uint8: treated as 8-bit images"):
        mu, _ = model.encode(byte_images, labels)
    expected, _ = model.encode(byte_images / 127.5 - 1.0, labels)
    np.testing.assert_allclose(mu, expected, atol=1e-6)
    with pytest.warns(UserWarning, match="no negative value"):
        model.encode(rng.uniform(0.1, 1, (2, 8, 8, 3)), labels)
    with pytest.raises(ValueError, match="same batch size"):
        model.encode(rng.uniform(-1, 1, (1, 8, 8, 3)), labels)


def test_masks_and_codes_are_checked_with_a_message():
    model = _tiny_model()
    with pytest.raises(ValueError, match=r"label values must lie in \[0, 3\).*don't-care"):
        model.generate(np.full((1, 8, 8), 255), seed=0)
    with pytest.raises(ValueError, match=r"one-hot \(or soft\) segmap of 3 channels.*\[0, 1\]"):
        model.generate(np.eye(3)[np.zeros((1, 8, 8), int)] * 255, seed=0)
    with pytest.raises(TypeError, match="`labels` must be an array of numbers"):
        model.generate(np.array([["a"]]), seed=0)
    z = model.sample_z(1, seed=0)
    masks = np.zeros((1, 8, 8), int)
    np.testing.assert_allclose(  # bfloat16 codes (a mixed-precision encoder's) are numbers
        model.generate(masks, z=z.astype(ml_dtypes.bfloat16)),
        model.generate(masks, z=z.astype(ml_dtypes.bfloat16).astype("float32")),
    )
    z[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="`z` must be finite"):
        model.generate(np.zeros((1, 8, 8), int), z=z)
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer"):
        model.sample_z(0)
    edges = _tiny_model(use_instance_edges=True)
    with pytest.raises(ValueError, match=r"`instances` must be \(1, 8, 8\)"):
        edges.generate(np.zeros((1, 8, 8), int), seed=0, instances=np.zeros((1, 1, 1)))


def test_call_and_decode_check_static_shapes():
    model = _tiny_model()
    images = np.zeros((2, 8, 8, 3), "float32")
    with pytest.raises(ValueError, match="same batch size"):
        model({"images": images, "masks": np.zeros((1, 8, 8), "int32")})
    with pytest.raises(ValueError, match=r"`inputs\['masks'\]` must be \(batch, 8, 8"):
        model({"images": images, "masks": np.zeros((2, 4, 4), "int32")})
    with pytest.raises(TypeError, match=r"`inputs\['images'\]` must be a floating-point"):
        model({"images": images.astype("uint8"), "masks": np.zeros((2, 8, 8), "int32")})
    with pytest.raises(ValueError, match=r"inputs\['images'\].*\[0, 255\]"):
        model({"images": images + 200, "masks": np.zeros((2, 8, 8), "int32")})
    with pytest.raises(ValueError, match="`z` must be"):
        model.decode(np.zeros((2, 4, 4, 5), "float32"), np.zeros((2, 8, 8, 3), "float32"))


def test_layers_refuse_silent_broadcasts_and_backend_crashes():
    x = np.zeros((2, 8, 8, 4), "float32")
    with pytest.raises(ValueError, match="same batch size"):
        ClassMaskSplit(4)(np.zeros((2, 8, 8, 3), "float32"), np.zeros((1, 8, 8, 4), "float32"))
    with pytest.raises(ValueError, match="same batch size"):
        CGNorm(groups=2, hidden_channels=4)(x, np.zeros((1, 8, 8, 2), "float32"))
    with pytest.raises(TypeError, match="`inputs` must be a floating-point tensor"):
        GroupConv2D(4, 3, groups=2)(x.astype("int32"))
    with pytest.raises(ValueError, match="is too small"):
        GroupConv2D(4, 3, groups=2, padding="valid")(np.zeros((1, 2, 2, 4), "float32"))


def test_synthetic_data_arguments_are_checked():
    from smis_layers.data.synthetic import SyntheticShapes, synthetic_tf_dataset

    with pytest.raises(ValueError, match="`seed` must be a non-negative integer"):
        SyntheticShapes(seed=-1)
    with pytest.raises(ValueError, match="`start` must be a non-negative integer"):
        synthetic_tf_dataset(SyntheticShapes(), 2, start=-4)


# ---------------------------------------------------------------------------- files
UNSAFE_PATTERNS = {
    r"allow_pickle\s*=\s*True": "np.load(allow_pickle=True) unpickles arbitrary objects",
    r"safe_mode\s*=\s*False": "Keras safe_mode=False runs lambda code from files",
    r"enable_unsafe_deserialization": "turns Keras's safe mode off globally",
    r"^\s*(import|from)\s+(pickle|cPickle|dill|joblib|marshal|shelve)\b": "pickle-like loader",
    r"weights_only\s*=\s*False": "torch.load(weights_only=False) unpickles arbitrary objects",
}


def test_no_unsafe_deserialization_in_the_package():
    """Every loader of the package reads data, never code: no pickle, no unsafe Keras mode, and
    every torch.load passes weights_only=True."""
    offenders = []
    for path in sorted((ROOT / "smis_layers").rglob("*.py")):
        text = path.read_text()
        for pattern, why in UNSAFE_PATTERNS.items():
            for match in re.finditer(pattern, text, flags=re.MULTILINE):
                line = text.count("\n", 0, match.start()) + 1
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {why}")
        for match in re.finditer(r"torch\.load\(([^)]*)\)", text):
            if "weights_only=True" not in match.group(1):
                line = text.count("\n", 0, match.start()) + 1
                offenders.append(
                    f"{path.relative_to(ROOT)}:{line}: torch.load without weights_only"
                )
    assert not offenders, "\n".join(offenders)


def test_npz_with_pickled_objects_is_refused(tmp_path):
    from smis_layers.utils.io import load_variables

    path = tmp_path / "discriminator.weights.npz"
    buffer = io.BytesIO()
    np.savez(buffer, w=np.array([{"code": "payload"}], dtype=object))
    path.write_bytes(buffer.getvalue())
    model = keras.Sequential([keras.layers.Dense(1)])
    model.build((None, 1))
    with pytest.raises(ValueError, match=r"discriminator.weights.npz is not a readable .npz"):
        load_variables(model, path)
    path.write_bytes(buffer.getvalue()[:50])  # truncated
    with pytest.raises(ValueError, match="truncated or corrupted"):
        load_variables(model, path)


def test_non_finite_official_weights_are_refused():
    from smis_layers.convert.official import _generator_plan, assign_official_weights

    model = _tiny_model()
    plan = _generator_plan(model)
    state = {key: np.ones(shape, "float32") for key, shape in plan.shapes.items()}
    first = next(iter(state))
    state[first][...] = np.nan
    with pytest.raises(ValueError, match=f"{re.escape(first)} hold NaN or infinite"):
        assign_official_weights(model, state)


def test_atomic_writes_leave_the_previous_file_on_failure(tmp_path, monkeypatch):
    from smis_layers.utils.io import atomic_save_weights, atomic_write_bytes

    target = tmp_path / "state.json"
    atomic_write_bytes(target, b"old")

    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new, but never complete")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == [target.name]

    model = keras.Sequential([keras.layers.Dense(2)])
    model.build((None, 2))
    weights = tmp_path / "checkpoint-1.weights.h5"
    atomic_save_weights(model, weights)
    before = weights.read_bytes()

    def crash(self, path, overwrite=True):
        Path(path).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Sequential, "save_weights", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_save_weights(model, weights)
    assert weights.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [weights.name, target.name]


def test_convert_official_never_overwrites_without_flag(tmp_path, capsys):
    from smis_layers.cli import main

    out = tmp_path / "preset"
    out.mkdir()
    (out / "config.json").write_text("{}")
    argv = ["convert-official", "--generator", str(tmp_path / "G.pth"), "--config"]
    assert main([*argv, "deepfashion", "--out", str(out)]) == 1
    assert "already exist" in capsys.readouterr().err
    assert (out / "config.json").read_text() == "{}"


# ---------------------------------------------------------------------------- smis train
class StopRunError(Exception):
    """Raised by a stub to end `train_run` at a chosen point."""


def _raise_stop(*args, **kwargs):
    raise StopRunError


def _run_folder_with_checkpoints(tmp_path: Path, args: dict, steps=(2, 4)) -> Path:
    """A run folder as `train_run` starts it (run.json), plus small fake checkpoints with their
    state files, the last one named in state.json."""
    out = tmp_path / "run"
    build = run_module._build_trainer
    run_module._build_trainer = _raise_stop
    try:
        with pytest.raises(StopRunError):
            train_run(out=out, **args)
    finally:
        run_module._build_trainer = build
    for step in steps:
        weights = out / run_module.checkpoint_name(step)
        weights.write_bytes(f"weights of step {step}".encode())
        state = {
            "completed_steps": step,
            "checkpoint": weights.name,
            "sha256": run_folder._sha256(weights),
            "seed_state": [0, 0],
        }
        text = json.dumps(state)
        (out / run_module.checkpoint_state_name(step)).write_text(text)
        (out / "state.json").write_text(text)
    return out


@needs_tensorflow
def test_corrupted_checkpoint_is_named_with_the_previous_one(tmp_path, tiny_runs):
    args = {**TINY_ARGS, "steps": 8, "checkpoint_every": 2, "check_memory": False}
    out = _run_folder_with_checkpoints(tmp_path, args)
    (out / "checkpoint-4.weights.h5").write_bytes(b"weights of step 4, truncat")
    with pytest.raises(CheckpointError) as error:
        train_run(out=out, **args)
    message = str(error.value)
    assert "checkpoint-4.weights.h5 is corrupted or truncated" in message
    assert "--resume-from checkpoint-2.weights.h5" in message

    (out / "checkpoint-4.weights.h5").unlink()
    with pytest.raises(
        CheckpointError, match=r"checkpoint-4.weights.h5 \(named in .*\) is missing"
    ):
        train_run(out=out, **args)
    with pytest.raises(CheckpointError, match="cannot be read"):  # sha256 right, not HDF5
        train_run(out=out, **args, resume_from="checkpoint-2.weights.h5")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        train_run(out=out, **args, resume_from="checkpoint-6.weights.h5")
    (out / "state.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"state.json is not valid JSON"):
        train_run(out=out, **args)


@needs_tensorflow
def test_train_out_is_never_a_foreign_folder_without_overwrite(tmp_path, tiny_runs, capsys):
    from smis_layers.cli import main

    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"precious")
    argv = ["train", "--model", TINY, "--steps", "2", "--checkpoint-every", "2"]
    assert main([*argv, "--out", str(foreign)]) == 1
    assert "is not a smis train run folder" in capsys.readouterr().err
    assert sorted(p.name for p in foreign.iterdir()) == ["holiday.jpg"]

    original = run_module._build_trainer
    try:
        run_module._build_trainer = _raise_stop
        with pytest.raises(StopRunError):
            train_run(out=foreign, steps=2, checkpoint_every=2, overwrite=True, **TINY_ARGS)
        assert (foreign / "run.json").is_file() and (foreign / "holiday.jpg").is_file()
        # Other arguments for that run: refused, or restarted with --overwrite.
        (foreign / "state.json").write_text("{}")
        with pytest.raises(ValueError, match="holds a run with other arguments"):
            train_run(out=foreign, steps=4, checkpoint_every=2, **TINY_ARGS)
        with pytest.raises(StopRunError):
            train_run(out=foreign, steps=4, checkpoint_every=2, overwrite=True, **TINY_ARGS)
        assert not (foreign / "state.json").exists()
        assert json.loads((foreign / "run.json").read_text())["steps"] == 4
    finally:
        run_module._build_trainer = original


@needs_tensorflow
def test_memory_warning_before_a_run_that_does_not_fit(tmp_path, tiny_runs, monkeypatch, capsys):
    monkeypatch.setattr(run_module, "restore", _raise_stop)
    monkeypatch.setenv("SMIS_MEMORY_LIMIT_BYTES", str(1 << 20))  # a 1 MiB machine
    with pytest.raises(StopRunError):
        train_run(out=tmp_path / "run", steps=2, checkpoint_every=2, **TINY_ARGS)
    err = capsys.readouterr().err
    assert re.search(r"warning: a training step of this configuration needs about", err), err
    assert "only 0.00 GiB of memory are available" in err and "--batch-size" in err
    monkeypatch.delenv("SMIS_MEMORY_LIMIT_BYTES")
    assert run_module.available_memory_bytes() > 0


@needs_tensorflow
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, tiny_runs, monkeypatch):
    build = run_module._build_trainer

    def diverging_trainer(*args, **kwargs):
        trainer = build(*args, **kwargs)
        losses = trainer.generator_losses

        def generator_losses(data, training=True):  # the losses of step 3 are NaN
            terms, fakes = losses(data, training)
            if int(trainer.g_optimizer.iterations.numpy()) == 2:
                terms = {**terms, "g_gan": terms["g_gan"] * np.float32(np.nan)}
                terms["g_loss"] = terms["g_loss"] + terms["g_gan"]
            return terms, fakes

        trainer.generator_losses = generator_losses
        return trainer

    monkeypatch.setattr(run_module, "_build_trainer", diverging_trainer)
    out = tmp_path / "run"
    with pytest.raises(NonFiniteLossError) as error:
        train_run(out=out, steps=4, checkpoint_every=2, check_memory=False, **TINY_ARGS)
    message = str(error.value)
    assert "became nan at step 3" in message and "checkpoint-2.weights.h5 (step 2)" in message
    state = read_state(out)
    assert state["completed_steps"] == 2
    assert run_folder._sha256(out / state["checkpoint"]) == state["sha256"]
    assert not (out / "checkpoint-3.weights.h5").exists() and not (out / "preset").exists()


@needs_tensorflow
def test_sigint_mid_period_then_resume_equals_an_uninterrupted_run(tmp_path, tiny_runs):
    """SIGINT during step 5 of a 6-step run checkpointing every 3 (sent at the end of step 4):
    the run saves step 5 once it completes, raises TrainingInterrupted and restores the SIGINT
    handler; resuming from the middle of the period gives weights bit-identical to those of an
    uninterrupted run."""
    args = {**TINY_ARGS, "steps": 6, "checkpoint_every": 3, "check_memory": False}
    straight = tmp_path / "straight"
    train_run(out=straight, **args)

    class SendSigint(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.g_optimizer.iterations.numpy()) == 4:
                os.kill(os.getpid(), signal.SIGINT)

    logger = run_module._tensorboard_logger
    run_module._tensorboard_logger = lambda *a, **k: [SendSigint()]
    interrupted = tmp_path / "interrupted"
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(TrainingInterrupted) as error:
            train_run(out=interrupted, **args)
    finally:
        run_module._tensorboard_logger = logger
    assert error.value.step == 5 and error.value.checkpoint.name == "checkpoint-5.weights.h5"
    state = read_state(interrupted)
    assert state["completed_steps"] == 5 and state["checkpoint"] == "checkpoint-5.weights.h5"
    assert signal.getsignal(signal.SIGINT) is handler
    train_run(out=interrupted, **args)
    assert read_state(interrupted)["completed_steps"] == 6
    for a, b in zip(_trainer_weights(straight), _trainer_weights(interrupted), strict=True):
        np.testing.assert_array_equal(a, b)


@needs_tensorflow
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_signal_on_the_command_line_saves_and_exits_128_plus_its_number(tmp_path, signal_number):
    out = tmp_path / "run"
    command = TINY_SETUP + textwrap.dedent(
        f"""
        import sys
        from smis_layers.cli import main
        sys.exit(main(["train", "--model", "{TINY}", "--steps", "9", "--checkpoint-every",
                       "3", "--batch-size", "2", "--d-scales", "1", "--d-layers", "1",
                       "--d-filters", "4", "--log-every", "0", "--verbose", "0",
                       "--out", r"{out}"]))
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", command],
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline:
        state = read_state(out) if (out / "state.json").exists() else None
        if state and state["completed_steps"] >= 3:
            break
        if process.poll() is not None:
            pytest.fail(f"training ended before the signal: {process.communicate()}")
        time.sleep(0.05)
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 128 + signal_number, stderr  # 130 SIGINT, 143 SIGTERM
    match = re.search(r"interrupted at step (\d+); saved checkpoint (\S+)\.", stderr)
    assert match, stderr
    step, checkpoint = int(match.group(1)), Path(match.group(2))
    assert 3 <= step <= 9 and checkpoint == out / f"checkpoint-{step}.weights.h5"
    state = read_state(out)
    assert state["completed_steps"] == step and state["checkpoint"] == checkpoint.name
    assert run_folder._sha256(checkpoint) == state["sha256"]
    assert not (out / "preset").exists()


# ---------------------------------------------------------------------------- memory
RSS_SCRIPT = textwrap.dedent(
    """
    import json, sys, warnings
    warnings.simplefilter("ignore")
    import numpy as np, tensorflow as tf
    from smis_layers.data.synthetic import SyntheticShapes
    from smis_layers.training import run as R

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024

    batch = int(sys.argv[1])
    run = {"model": "groupdnet_shapes64", "seed": 0, "d_scales": 2, "d_layers": 4,
           "d_filters": 32, "steps": 10, "lr_g": 1e-4, "lr_d": 4e-4, "jit_compile": False}
    trainer = R._build_trainer(run)
    estimate = R.estimate_training_memory(trainer, batch)
    data = SyntheticShapes(64, 8, seed=0).batch(np.arange(batch))
    data = {"images": tf.constant(data["images"]), "masks": tf.constant(data["masks"])}
    before = status("VmRSS")
    open("/proc/self/clear_refs", "w").write("5")  # resets the peak (VmHWM) to now
    for _ in range(2):
        trainer.train_step(data)
    print(json.dumps({"estimate": estimate.total, "measured": status("VmHWM") - before}))
    """
)


@needs_tensorflow
@pytest.mark.slow
def test_memory_estimate_has_the_measured_order_of_magnitude():
    """The estimate of a shapes64 training step at batch 8 against the peak RSS growth of
    two eager steps in a fresh process (measured ratio 1.2-1.5 on the development machine)."""
    result = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, "8"],
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    ratio = values["estimate"] / values["measured"]
    assert 1 / 4 < ratio < 4, values


# ---------------------------------------------------------------------------- numerics
def _fresh_build_outputs(seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    keras.utils.set_random_seed(seed)
    model = _tiny_model(seed=seed)
    labels = np.random.default_rng(0).integers(0, 3, (2, 8, 8))
    images = model.generate(labels, seed=5)
    return images, [to_numpy(v) for v in model.weights]


def test_same_seed_fresh_builds_give_bit_identical_outputs():
    images_a, weights_a = _fresh_build_outputs(11)
    images_b, weights_b = _fresh_build_outputs(11)
    np.testing.assert_array_equal(images_a, images_b)
    for a, b in zip(weights_a, weights_b, strict=True):
        np.testing.assert_array_equal(a, b)
    images_c, _ = _fresh_build_outputs(12)
    assert not np.array_equal(images_a, images_c)


def _fresh_training_step(seed: int) -> list[np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = {
            "model": TINY,
            "seed": seed,
            "d_scales": 1,
            "d_layers": 1,
            "d_filters": 4,
            "steps": 2,
            "lr_g": 1e-4,
            "lr_d": 4e-4,
            "jit_compile": False,
        }
        trainer = run_module._build_trainer(run)
    from smis_layers.data.synthetic import SyntheticShapes

    data = SyntheticShapes(64, 4, seed=0).batch(np.arange(2))
    trainer.train_step({"images": data["images"], "masks": data["masks"]})
    return [to_numpy(v) for v in trainer.weights]


@needs_tensorflow
def test_same_seed_fresh_trainers_take_bit_identical_steps(tiny_runs):
    for a, b in zip(_fresh_training_step(3), _fresh_training_step(3), strict=True):
        np.testing.assert_array_equal(a, b)


DETERMINISM_SCRIPT = textwrap.dedent(
    """
    import hashlib, sys, warnings
    warnings.simplefilter("ignore")
    sys.path.insert(0, sys.argv[1])
    from tests.test_reliability import TINY_SETUP, _fresh_build_outputs, _fresh_training_step
    exec(TINY_SETUP, {})
    digest = hashlib.sha256()
    images, weights = _fresh_build_outputs(11)
    for array in [images, *weights, *_fresh_training_step(3)]:
        digest.update(array.tobytes())
    print(digest.hexdigest())
    """
)


@needs_tensorflow
@pytest.mark.slow
def test_two_fresh_processes_give_bit_identical_outputs():
    digests = []
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-c", DETERMINISM_SCRIPT, str(ROOT)],
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        digests.append(result.stdout.strip().splitlines()[-1])
    assert digests[0] == digests[1]


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_cg_norm_statistics_do_not_overflow_in_mixed_precision(policy, norm):
    """Activations of 2e4 +- 5e3 (their squares overflow float16): CGNorm's statistics are
    computed in float32 (Keras's normalization layers upcast), so the result is finite and
    equals the float32 layer's to the precision of the compute dtype."""
    rng = np.random.default_rng(0)
    x = (2e4 + 5e3 * rng.standard_normal((2, 8, 8, 4))).astype("float32")
    segmap = np.eye(2, dtype="float32")[rng.integers(0, 2, (2, 16, 16))]
    reference = CGNorm(groups=2, hidden_channels=4, norm=norm, kernel_initializer="ones")
    expected = to_numpy(reference(x, segmap, training=True))
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        layer = CGNorm(groups=2, hidden_channels=4, norm=norm, kernel_initializer="ones")
        out = layer(x, segmap, training=True)
        assert keras.backend.standardize_dtype(out.dtype) == policy.removeprefix("mixed_")
        out = to_numpy(out).astype("float32")
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert np.all(np.isfinite(out))
    tolerance = 2e-2 if policy == "mixed_float16" else 1e-1
    np.testing.assert_allclose(
        out, expected, rtol=tolerance, atol=tolerance * np.abs(expected).max()
    )
    if norm == "batch":
        assert np.all(np.isfinite(to_numpy(layer.param_free_norm.moving_variance)))
