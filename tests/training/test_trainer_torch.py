"""SMISTrainer and `smis train` on the PyTorch backend (run with KERAS_BACKEND=torch)."""

import json

import keras
import numpy as np
import pytest

from smis_layers.data import SyntheticShapes, synthetic_batches
from smis_layers.model_card import write_model_card
from smis_layers.models import GroupDNet, MulNet
from smis_layers.training import run as run_module
from smis_layers.training.run import train_run
from tests.helpers import BACKEND, to_numpy
from tests.training.test_run import ARGS as RUN_ARGS
from tests.training.test_trainer import SIZE, tiny_trainer

pytestmark = pytest.mark.skipif(BACKEND != "torch", reason="the PyTorch training step")


def _batches(batch=4, seed=0):
    return ((b,) for b in synthetic_batches(SyntheticShapes(SIZE, seed=seed), batch))


def _values(variables):
    return [to_numpy(v).copy() for v in variables]


@pytest.mark.parametrize("model_class", [GroupDNet, MulNet])
def test_fit_runs_and_updates_both_networks(model_class):
    trainer = tiny_trainer(model_class)
    trainer.compile(latent_weight=1.0, region_colour_weight=1.0, region_spectrum_weight=0.1)
    assert trainer.jit_compile is False  # "auto": eager on PyTorch
    g_before = _values(trainer.generator.trainable_variables)
    d_before = _values(trainer.discriminator.trainable_variables)
    history = trainer.fit(_batches(), epochs=1, steps_per_epoch=2, verbose=0)
    for name in ("g_loss", "d_loss", "g_gan", "g_feature_matching", "g_kl", "d_real", "d_fake"):
        assert np.isfinite(history.history[name][-1]), name
    assert history.history["g_latent"][-1] > 0 and history.history["g_region_colour"][-1] > 0
    assert history.history["g_region_spectrum"][-1] > 0
    g_after = _values(trainer.generator.trainable_variables)
    d_after = _values(trainer.discriminator.trainable_variables)
    assert np.mean([not np.allclose(a, b) for a, b in zip(g_before, g_after, strict=True)]) > 0.9
    assert np.mean([not np.allclose(a, b) for a, b in zip(d_before, d_after, strict=True)]) > 0.9


@pytest.mark.parametrize(
    "codes",
    [
        {"region_colour_code": True},
        {"region_colour_code": True, "region_texture_code": 2, "latent_channels": 12},
    ],
)
def test_region_code_models_train_with_the_random_code_terms(codes):
    trainer = tiny_trainer(**codes)
    trainer.compile(prior_gan_weight=1.0, latent_weight=1.0)
    logs = trainer.fit(_batches(), epochs=1, steps_per_epoch=1, verbose=0).history
    assert logs["g_prior_gan"][-1] != 0.0 and logs["g_latent"][-1] > 0.0
    assert all(np.isfinite(values[-1]) for values in logs.values())


def test_each_network_is_updated_by_the_gradient_of_its_own_loss_alone():
    """The generator's loss also reaches the discriminator's weights: its gradients must not leak
    into the discriminator's update (nor stale ones into the next step)."""
    import torch

    trainer = tiny_trainer()
    trainer.compile(d_optimizer=keras.optimizers.SGD(1.0))
    data = next(_batches(seed=3))[0]
    d_vars = trainer.discriminator.trainable_variables
    fake = trainer.generator(data, training=False)["images"].detach()
    d_loss = trainer.discriminator_losses(data, fake, training=False)["d_loss"]
    expected = torch.autograd.grad(d_loss, [v.value for v in d_vars])
    d_before, g_before = _values(d_vars), _values(trainer.generator.trainable_variables)

    g_loss = trainer.generator_losses(data, training=False)[0]["g_loss"]
    g_loss.backward()  # stale gradients on both networks
    assert all(v.value.grad is not None for v in d_vars)
    d_loss = trainer.discriminator_losses(data, fake, training=False)["d_loss"]
    trainer._torch_apply(trainer.d_optimizer, d_loss, d_vars)

    for before, grad, variable in zip(d_before, expected, d_vars, strict=True):
        np.testing.assert_allclose(
            to_numpy(variable), before - grad.cpu().numpy(), rtol=1e-5, atol=1e-6
        )
    for before, after in zip(g_before, _values(trainer.generator.trainable_variables), strict=True):
        np.testing.assert_array_equal(before, after)


# The TensorBoard logger is tested with TensorFlow; the prior GAN term's random codes must
# be redrawn exactly by a continued run. The model is test_run's tiny one.
ARGS = {**RUN_ARGS, "log_every": 0, "prior_gan_weight": 1.0}


@pytest.mark.usefixtures("tiny_runs")
def test_smis_train_on_torch_stops_continues_exactly_and_records_the_backend(tmp_path):
    full = train_run(out=tmp_path / "full", **ARGS)
    stopped = tmp_path / "stopped"
    assert train_run(out=stopped, stop_at=2, **ARGS) is None
    continued = train_run(out=stopped, **ARGS)
    a, b = GroupDNet.from_preset(full), GroupDNet.from_preset(continued)
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(to_numpy(x), to_numpy(y))
    training = json.loads((full / "metadata.json").read_text())["training"]
    assert training["keras_backend"] == "torch" and training["device"].startswith("CPU")
    assert "(KERAS_BACKEND=torch)" in write_model_card(full).read_text()


def test_dataset_folders_need_tensorflow_and_say_so():
    run = {"data": "deepfashion", "data_dir": "/x", "model": "groupdnet_shapes64"}
    with pytest.raises(NotImplementedError, match=r"--data deepfashion.*KERAS_BACKEND=tensorflow"):
        run_module._dataset(run, 0)
