import json
import math
import shutil

import keras
import numpy as np
import pytest

from smis_layers.model_card import write_model_card
from smis_layers.models import GroupDNet
from smis_layers.presets import load_preset_discriminator
from smis_layers.training import run as run_module
from smis_layers.training import run_folder
from smis_layers.training.run import (
    ResumableCheckpoint,
    load_run_models,
    read_state,
    train_run,
)
from tests.helpers import BACKEND, TINY

# The tiny architecture and eager trainers of `tiny_runs`: these tests check the run's
# bookkeeping, which does not depend on the model's size.
pytestmark = [
    pytest.mark.skipif(BACKEND != "tensorflow", reason="the trainer needs TensorFlow"),
    pytest.mark.usefixtures("tiny_runs"),
]

ARGS = {
    "model": TINY,
    "steps": 4,
    "batch_size": 2,
    "checkpoint_every": 2,
    "d_layers": 2,
    "d_filters": 8,
    "verbose": 0,
    "log_every": 2,
    "code_prior_samples": 64,
}


def test_resumed_run_equals_uninterrupted_run(tmp_path, monkeypatch):
    states = {}
    write = run_folder.atomic_write_bytes

    def spy(path, data):
        if path.name == "state.json":
            states.setdefault(json.loads(data)["completed_steps"], data)
        write(path, data)

    monkeypatch.setattr(run_folder, "atomic_write_bytes", spy)
    full = tmp_path / "full"
    args = {**ARGS, "prior_gan_weight": 1.0}  # its random codes are drawn as a resume redraws
    preset = train_run(out=full, **args)
    assert json.loads((full / "run.json").read_text())["prior_gan_weight"] == 1.0
    assert read_state(full)["completed_steps"] == 4
    assert (full / "samples.png").is_file() and (preset / "metadata.json").is_file()
    assert list((full / "logs").glob("events.out.tfevents.*"))  # TensorBoard (log_every=2)
    metadata = json.loads((preset / "metadata.json").read_text())
    assert metadata["training"]["completed_steps"] == 4
    assert "code_prior_samples" not in json.loads((full / "run.json").read_text())
    prior = GroupDNet.from_preset(preset).code_prior  # fitted to 64 training scenes' codes
    assert prior is not None and prior.counts[0] == 64 and 0 < prior.counts[1:].min() < 64

    # A run killed right after its first checkpoint: run.json, checkpoint-2, state at step 2.
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copy(full / "run.json", resumed)
    shutil.copy(full / "checkpoint-2.weights.h5", resumed)
    (resumed / "state.json").write_bytes(states[2])
    train_run(out=resumed, **args)
    a, b = GroupDNet.from_preset(full / "preset"), GroupDNet.from_preset(resumed / "preset")
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x.numpy(), y.numpy())

    # --stop-at: the same run stopped at step 2 (schedule of 4 steps), then continued.
    stopped = tmp_path / "stopped"
    assert train_run(out=stopped, stop_at=2, **args) is None
    assert read_state(stopped)["completed_steps"] == 2 and not (stopped / "preset").exists()
    train_run(out=stopped, **args)
    c = GroupDNet.from_preset(stopped / "preset")
    for x, y in zip(a.weights, c.weights, strict=True):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    for bad in (6, 0):
        with pytest.raises(ValueError, match="`stop_at`"):
            train_run(out=tmp_path / "bad", stop_at=bad, **args)
    with pytest.raises(ValueError, match=r"`stop_at` \(2\) is before step 4"):
        train_run(out=stopped, stop_at=2, **args)


def test_other_arguments_for_an_existing_run_are_refused(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({**ARGS, "steps": 8}))
    with pytest.raises(ValueError, match="holds a run with other arguments"):
        train_run(out=tmp_path, **ARGS)


def test_fit_parts_checkpoint_every_period_and_at_the_last_step():
    assert run_module.fit_parts(0, 8, 4) == [(0, 2, 4)]
    assert run_module.fit_parts(0, 4, 100) == [(0, 1, 4)]  # `smis train --steps 4`
    assert run_module.fit_parts(3, 14, 4) == [(3, 1, 1), (4, 2, 4), (12, 1, 2)]
    assert run_module.fit_parts(5, 7, 4) == [(5, 1, 2)]
    assert run_module.fit_parts(7, 7, 4) == []


def test_a_run_of_steps_not_a_multiple_of_the_period_checkpoints_at_its_end(tmp_path):
    args = {**ARGS, "steps": 3, "log_every": 0, "code_prior_samples": 0}
    full = tmp_path / "full"
    preset = train_run(out=full, **args)
    assert read_state(full)["completed_steps"] == 3 and preset.is_dir()
    assert sorted(p.name for p in full.glob("checkpoint-*.weights.h5")) == [
        "checkpoint-2.weights.h5",
        "checkpoint-3.weights.h5",
    ]
    # A run killed after checkpoint-2 resumes the last, shorter period to the same weights.
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for name in ("run.json", "checkpoint-2.weights.h5", "checkpoint-2.state.json"):
        shutil.copy(full / name, resumed)
    shutil.copy(full / "checkpoint-2.state.json", resumed / "state.json")
    train_run(out=resumed, **args)
    a, b = GroupDNet.from_preset(preset), GroupDNet.from_preset(resumed / "preset")
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_mixed_bfloat16_run_exports_a_float32_preset_with_its_weights(tmp_path):
    args = {**ARGS, "steps": 2, "log_every": 1}  # the progress grid decodes bfloat16 codes
    with pytest.raises(ValueError, match="`dtype_policy` must be one of"):
        train_run(out=tmp_path / "bad", dtype_policy="bfloat16", **args)
    with pytest.raises(ValueError, match=r"`prior_gan_weight` must be a finite number >= 0"):
        train_run(out=tmp_path / "bad", prior_gan_weight=-1, **args)
    with pytest.raises(ValueError, match="`code_prior_samples` must be a non-negative integer"):
        train_run(out=tmp_path / "bad", **{**args, "code_prior_samples": -1})
    assert not (tmp_path / "bad").exists()  # refused before anything was written
    out = tmp_path / "bf16"
    preset = train_run(out=out, dtype_policy="mixed_bfloat16", **args)
    assert keras.config.dtype_policy().name == "float32"  # restored after the run
    run = json.loads((out / "run.json").read_text())
    assert run["dtype_policy"] == "mixed_bfloat16"
    with pytest.raises(ValueError, match="holds a run with other arguments"):
        train_run(out=out, **args)  # float32 is another run
    model = GroupDNet.from_preset(preset)
    assert {layer.dtype_policy.name for layer in model._flatten_layers()} == {"float32"}
    # The preset holds the trained weights: those of the run's last checkpoint, which
    # load_run_models builds under the run's policy and copies to float32 too.
    generator, discriminator, _, state = load_run_models(out)
    assert state["completed_steps"] == 2
    assert {generator.dtype_policy.name, discriminator.dtype_policy.name} == {"float32"}
    for ours, trained in zip(model.weights, generator.weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), trained.numpy())
    fresh = tmp_path / "fresh"  # run.json written, no step trained
    fresh.mkdir()
    shutil.copy(out / "run.json", fresh)
    with pytest.raises(run_module.CheckpointError, match="holds no checkpoint yet"):
        load_run_models(fresh)
    with pytest.raises(FileNotFoundError, match="not a smis train run folder"):
        load_run_models(tmp_path)
    # A float32 run folder keeps no dtype_policy key (runs from before the option resume).
    train_run(out=tmp_path / "f32", **args)
    assert "dtype_policy" not in json.loads((tmp_path / "f32" / "run.json").read_text())


def test_a_new_run_starts_from_a_preset_with_init_from(tmp_path):
    args = {**ARGS, "steps": 2}
    source = train_run(out=tmp_path / "source", **{**args, "seed": 1})  # other initial weights
    with pytest.raises(ValueError, match="`init_from` must be a preset; Unknown preset"):
        train_run(out=tmp_path / "bad", init_from=str(tmp_path / "nowhere"), **args)
    assert not (tmp_path / "bad").exists()  # refused before anything was written
    # With learning rates of 0 the exported networks are the ones the run started from, up to
    # the spectral normalization's in-place rescaling of the kernels in its one training step.
    frozen = {**args, "steps": 1, "lr_g": 0.0, "lr_d": 0.0}
    preset = train_run(out=tmp_path / "tuned", init_from=str(source), **frozen)
    run = json.loads((tmp_path / "tuned" / "run.json").read_text())
    assert run["init_from"] == str(source)
    scratch = train_run(out=tmp_path / "scratch", **frozen)  # seed 0's random weights

    def close(a, b):
        return np.allclose(a.numpy(), b.numpy(), rtol=0.05, atol=1e-3)

    for load in (GroupDNet.from_preset, load_preset_discriminator):
        source_weights = load(source).trainable_weights
        started = zip(load(preset).trainable_weights, source_weights, strict=True)
        assert all(close(ours, theirs) for ours, theirs in started)
        fresh = zip(load(scratch).trainable_weights, source_weights, strict=True)
        assert np.mean([close(ours, theirs) for ours, theirs in fresh]) < 0.5
    with pytest.raises(ValueError, match=r"the run's discriminator .* give the --d-\* settings"):
        train_run(out=tmp_path / "other", init_from=str(source), **{**frozen, "d_filters": 4})


@pytest.mark.parametrize(
    "source_codes, target_codes", [("", ",texture=1"), (",texture=1", ",latent=12,texture=2")]
)
def test_init_from_widens_a_preset_into_the_texture_code(tmp_path, source_codes, target_codes):
    """A run whose model adds `texture=1` to the preset's (or a second wave, with 12 latent
    channels) starts from the preset's weights, the new inputs at zero: it decodes every code
    as the preset does (the inserted channels zero)."""
    import warnings

    from smis_layers.models import MultiScaleDiscriminator, build_architecture
    from smis_layers.presets import save_preset
    from smis_layers.training import SMISTrainer

    spec = "groupdnet:classes=4,size=64,width=1,encoder=4,colour=1"

    def trainer(name, seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            generator = build_architecture(name, seed=seed)
            return SMISTrainer(generator, MultiScaleDiscriminator(num_layers=2, base_filters=4))

    source = trainer(spec + source_codes, seed=1)
    save_preset(source.generator, tmp_path / "source", discriminator=source.discriminator)
    textured = trainer(spec + target_codes, seed=2)
    run_module._start_from_preset(textured, str(tmp_path / "source"))
    labels = np.random.default_rng(0).integers(0, 4, (2, 64, 64))
    z = source.generator.sample_z(2, seed=0, prior="standard")
    per_class = z.reshape(2, 4, 4, 4, 8)
    inserted = textured.generator.schedule.latent_channels - 8  # after the first wave
    widened = np.insert(per_class, [7] * inserted, 0.0, axis=-1).reshape(2, 4, 4, -1)
    np.testing.assert_allclose(
        textured.generator.generate(labels, z=widened),
        source.generator.generate(labels, z=z),
        atol=1e-5,
    )
    for ours, theirs in zip(
        textured.discriminator.get_weights(), source.discriminator.get_weights(), strict=True
    ):
        np.testing.assert_allclose(ours, theirs, rtol=1e-2, atol=1e-4)  # shipped in bfloat16


def test_non_finite_loss_stops_without_saving(tmp_path):
    class Model:
        stop_training = False

    callback = ResumableCheckpoint(tmp_path, steps_per_epoch=2)
    callback.set_model(Model())
    callback.on_train_batch_end(0, {"g_loss": 1.0})
    assert callback.bad_loss is None
    callback.on_train_batch_end(1, {"g_loss": math.nan})
    assert callback.bad_loss[0] == "g_loss" and callback.model.stop_training
    callback.on_epoch_end(0)
    assert read_state(tmp_path) is None and not list(tmp_path.iterdir())


def test_extend_continues_a_finished_run_with_more_steps_and_new_settings(tmp_path):
    short = {**ARGS, "steps": 2, "log_every": 0}
    train_run(out=tmp_path, command="smis train first", **short)
    before = GroupDNet.from_preset(tmp_path / "preset").get_weights()
    with pytest.raises(ValueError, match="--extend to continue"):
        train_run(out=tmp_path, **{**short, "steps": 4})
    with pytest.raises(ValueError, match=r"--extend cannot change \{'batch_size': \(2, 4\)\}"):
        train_run(out=tmp_path, extend=True, **{**short, "steps": 4, "batch_size": 4})

    train_run(
        out=tmp_path,
        extend=True,
        command="smis train second",
        **{**short, "steps": 4, "kl_weight": 0.5},
    )
    assert read_state(tmp_path)["completed_steps"] == 4
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["steps"] == 4 and run["kl_weight"] == 0.5
    assert [(p["steps"], p["kl_weight"], p["ended_at_step"]) for p in run["phases"]] == [
        (2, 0.05, 2)
    ]
    metadata = json.loads((tmp_path / "preset" / "metadata.json").read_text())
    assert metadata["training"]["completed_steps"] == 4
    assert metadata["training"]["phases"][0]["ended_at_step"] == 2
    card = write_model_card(tmp_path / "preset").read_text()
    assert "Trained in 2 phases" in card
    assert "# steps 0-2\nsmis train first\n# steps 2-4\nsmis train second\n" in card
    after = GroupDNet.from_preset(tmp_path / "preset").get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))

    # The extended run resumes like any run; going back below the completed steps is refused.
    train_run(out=tmp_path, extend=True, **{**short, "steps": 4, "kl_weight": 0.5})
    with pytest.raises(ValueError, match="at least the 4 steps"):
        train_run(out=tmp_path, extend=True, **{**short, "steps": 2})

    # Settings replaced before they trained a step leave no (empty) phase behind.
    train_run(out=tmp_path, extend=True, **{**short, "steps": 4, "kl_weight": 0.1})
    train_run(out=tmp_path, extend=True, **{**short, "steps": 6, "kl_weight": 0.2})
    run = json.loads((tmp_path / "run.json").read_text())
    assert [(p["steps"], p["kl_weight"], p["ended_at_step"]) for p in run["phases"]] == [
        (2, 0.05, 2),
        (4, 0.5, 4),
    ]
