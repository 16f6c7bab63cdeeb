"""Backend-agnostic helpers shared by the tests."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np

BACKEND = keras.backend.backend()
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str):
    """A script of scripts/ as a module (scripts/ on sys.path, as the scripts import each other)."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    return importlib.import_module(name)


# A tiny architecture for tests of `smis train`'s orchestration (signals, checkpoints, resuming,
# extending), which is the same for any model. TINY_SETUP registers it and makes `train_run`
# build eager trainers (compiled ones on JAX), which skips the tracing; it is source text so
# that the subprocess tests can run it too (the `tiny_runs` fixture of tests/conftest.py runs
# it in the test process).
TINY = "tiny_run64"
TINY_SETUP = textwrap.dedent(
    """
    from smis_layers.layers.group_decreasing_schedule import GroupDecreasingSchedule
    from smis_layers.models import architectures
    from smis_layers.models.groupdnet.groupdnet import GroupDNet
    from smis_layers.training import run as run_module

    architectures.ARCHITECTURES[TINY_NAME] = (
        GroupDNet,
        {
            "num_classes": 4,
            "image_size": (64, 64),
            "schedule": GroupDecreasingSchedule.decreasing(
                4, 2, 64, latent_size=16, norm_hidden_channels=4
            ).get_config(),
            "encoder_channels": 4,
            "split_mode": "mask",
        },
    )
    _build = run_module._build_trainer

    def _eager_trainer(*args, **kwargs):
        import keras

        trainer = _build(*args, **kwargs)
        # JAX's eager mode dispatches op by op: its compiled step is faster, compile included.
        trainer.run_eagerly = keras.backend.backend() != "jax"
        return trainer

    run_module._build_trainer = _eager_trainer
    """
).replace("TINY_NAME", repr(TINY))
TINY_ARGS = {
    "model": TINY,
    "code_prior_samples": 0,
    "batch_size": 2,
    "d_scales": 1,
    "d_layers": 1,
    "d_filters": 4,
    "verbose": 0,
    "log_every": 0,
}


def small_trainer(
    feature_extractor=None, lowering: str = "native", latent_channels: int = 8, **generator_config
):
    """A GroupDNet trainer (4 classes, 64x64, one-layer discriminator) small enough for XLA's CPU
    compile of the whole JAX train step (native grouped kernels compile fastest); shared by the
    JAX trainer tests and the cross-backend parity check."""
    import warnings

    from smis_layers import GroupDecreasingSchedule
    from smis_layers.models import GroupDNet, MultiScaleDiscriminator
    from smis_layers.training import SMISTrainer

    schedule = GroupDecreasingSchedule.decreasing(
        4, 2, 64, latent_size=16, norm_hidden_channels=4, latent_channels=latent_channels
    )
    generator = GroupDNet(
        num_classes=4,
        image_size=64,
        schedule=schedule,
        encoder_channels=4,
        split_mode="mask",
        lowering=lowering,
        **generator_config,
    )
    discriminator = MultiScaleDiscriminator(
        num_scales=1, num_layers=1, base_filters=4, lowering=lowering
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SMISTrainer(generator, discriminator, feature_extractor=feature_extractor)


def one_hot_segmap(batch, height, width, num_classes, seed=0):
    labels = np.random.default_rng(seed).integers(0, num_classes, (batch, height, width))
    return np.eye(num_classes, dtype="float32")[labels]


def blocky_segmap(batch, height, width, num_classes, block=4, seed=0):
    """One-hot mask made of `block` x `block` tiles, so every class survives downsampling."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, (batch, height // block, width // block))
    labels = np.repeat(np.repeat(labels, block, axis=1), block, axis=2)
    return np.eye(num_classes, dtype="float32")[labels]


def to_numpy(x):
    if hasattr(x, "detach"):  # torch tensors that require grad
        x = x.detach().cpu()
    return np.asarray(keras.ops.convert_to_numpy(x))


def flatten_outputs(outputs):
    return list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]


def loss_gradients(layer, inputs, training=False, seed=0):
    """Gradients of `sum(output * R)` (R fixed random) w.r.t. the inputs and trainable weights.

    Returns `(input_grads, weight_grads)` as NumPy arrays, weight grads in the order of
    `layer.trainable_variables`.
    """
    inputs = [np.asarray(x, dtype="float32") for x in inputs]
    outputs = flatten_outputs(layer(*inputs, training=training))
    rng = np.random.default_rng(seed)
    projections = [rng.normal(size=tuple(o.shape)).astype("float32") for o in outputs]

    def project(outs):
        outs = flatten_outputs(outs)
        total = 0.0
        for out, proj in zip(outs, projections, strict=True):
            total = total + keras.ops.sum(out * keras.ops.convert_to_tensor(proj))
        return total

    variables = layer.trainable_variables
    if BACKEND == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(x) for x in inputs]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            loss = project(layer(*tensors, training=training))
        grads = tape.gradient(loss, tensors + [v.value for v in variables])
    elif BACKEND == "jax":
        import jax

        non_trainable = [v.value for v in layer.non_trainable_variables]
        kwargs = {"training": training} if layer._call_has_training_arg else {}

        def fn(trainable, xs):
            outs, _ = layer.stateless_call(trainable, non_trainable, *xs, **kwargs)
            return project(outs)

        weight_grads, input_grads = jax.grad(fn, argnums=(0, 1))(
            [v.value for v in variables], inputs
        )
        grads = list(input_grads) + list(weight_grads)
    elif BACKEND == "torch":
        import torch

        tensors = [torch.tensor(x, requires_grad=True) for x in inputs]
        for v in variables:
            v.value.grad = None
        loss = project(layer(*tensors, training=training))
        loss.backward()
        grads = [t.grad for t in tensors] + [v.value.grad for v in variables]
    else:  # pragma: no cover
        raise NotImplementedError(BACKEND)
    grads = [None if g is None else to_numpy(g) for g in grads]
    return grads[: len(inputs)], grads[len(inputs) :]


def assert_all_weights_get_gradient(layer, inputs, training=True):
    _, weight_grads = loss_gradients(layer, inputs, training=training)
    assert layer.trainable_variables, "layer has no trainable weights"
    for variable, grad in zip(layer.trainable_variables, weight_grads, strict=True):
        assert grad is not None, f"no gradient reaches {variable.path}"
        assert np.all(np.isfinite(grad)), f"non-finite gradient for {variable.path}"
        assert np.any(grad != 0), f"zero gradient for {variable.path}"


def assert_save_load_round_trip(model, inputs, tmp_path):
    """Saves `model` to .keras, reloads it and checks identical outputs."""
    expected = [to_numpy(o) for o in flatten_outputs(model(inputs, training=False))]
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    actual = [to_numpy(o) for o in flatten_outputs(restored(inputs, training=False))]
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, e, rtol=0, atol=1e-6)
    return restored


def assert_fits(model, inputs, targets, steps=3, unchanged_ok=()):
    """`model.fit` runs a few SGD steps with finite loss and updates every trainable weight.

    `unchanged_ok` lists path suffixes of weights whose gradient is zero by construction (a bias
    followed by a normalization, kept for parity with the official parameter counts).
    """
    before = [to_numpy(v) for v in model.trainable_variables]
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    history = model.fit(
        inputs,
        targets,
        batch_size=len(targets[0]) if isinstance(targets, (list, tuple)) else len(targets),
        epochs=steps,
        verbose=0,
    )
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)), losses
    after = [to_numpy(v) for v in model.trainable_variables]
    changed = [
        not np.allclose(a, b) or v.path.endswith(unchanged_ok)
        for v, a, b in zip(model.trainable_variables, before, after, strict=True)
    ]
    stale = [v.path for v, c in zip(model.trainable_variables, changed, strict=True) if not c]
    assert not stale, stale
