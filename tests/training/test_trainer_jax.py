"""SMISTrainer's jit-compiled train step on the JAX backend (run with KERAS_BACKEND=jax)."""

import keras
import numpy as np
import pytest

from smis_layers.data import SyntheticShapes, synthetic_batches
from tests.helpers import BACKEND, small_trainer, to_numpy

pytestmark = pytest.mark.skipif(BACKEND != "jax", reason="the JAX training step")

C, SIZE, BATCH = 4, 64, 2
ALL_TERMS = {
    "reconstruction_weight": 1.0,
    "region_colour_weight": 1.0,
    "region_spectrum_weight": 0.1,
    "prior_gan_weight": 1.0,
    "latent_weight": 1.0,
}


def tiny_feature_extractor():
    inputs = keras.Input((SIZE, SIZE, 3))
    f1 = keras.layers.Conv2D(2, 3, padding="same", activation="relu")(inputs)
    f2 = keras.layers.Conv2D(2, 3, strides=2, padding="same", activation="relu")(f1)
    extractor = keras.Model(inputs, [f1, f2, f2, f2, f2])
    extractor.trainable = False
    return extractor


def batches(seed=0):
    data = SyntheticShapes(SIZE, num_classes=C, seed=seed)
    return ((b,) for b in synthetic_batches(data, BATCH))


def values(variables):
    return [to_numpy(v).copy() for v in variables]


@pytest.fixture(scope="module")
def fitted():
    """A trainer with every loss term on, before and after each of two `fit` steps."""
    keras.utils.set_random_seed(0)
    trainer = small_trainer(tiny_feature_extractor())
    trainer.compile(**ALL_TERMS)
    snapshots = [values(trainer.variables)]
    optimizer_snapshots = [values(trainer.d_optimizer.variables)]
    data = batches()
    histories = []
    for _ in range(2):
        histories.append(trainer.fit(data, epochs=1, steps_per_epoch=1, verbose=0).history)
        snapshots.append(values(trainer.variables))
        optimizer_snapshots.append(values(trainer.d_optimizer.variables))
    return trainer, histories, snapshots, optimizer_snapshots


def _changed(trainer, variables, before, after):
    index = {id(v): i for i, v in enumerate(trainer.variables)}
    return [not np.array_equal(before[index[id(v)]], after[index[id(v)]]) for v in variables]


def test_every_loss_term_is_computed_and_moves_its_network(fitted):
    trainer, histories, snapshots, _ = fitted
    assert trainer.jit_compile is True  # "auto" compiles on JAX
    logs = {name: values[-1] for name, values in histories[-1].items()}
    assert set(logs) == set(trainer.trackers)
    for name, value in logs.items():
        assert np.isfinite(value), name
        if name.startswith("g_"):
            assert value != 0.0, f"{name} was not computed"
    g_loss = sum(v for k, v in logs.items() if k.startswith("g_") and k != "g_loss")
    assert logs["g_loss"] == pytest.approx(g_loss, rel=1e-5)
    assert logs["d_loss"] == pytest.approx(logs["d_real"] + logs["d_fake"], rel=1e-5)
    before, after = snapshots[1], snapshots[2]
    for network in (trainer.generator, trainer.discriminator):
        assert all(_changed(trainer, network.trainable_variables, before, after)), network.name
    extractor = trainer.feature_extractor.variables
    assert not any(_changed(trainer, extractor, before, after))
    # Non-trainable state threaded through the compiled step: seed state, batch-norm moving
    # statistics, spectral-norm u vectors.
    state = trainer.generator.seed_generator.state
    assert _changed(trainer, [state], before, after) == [True]
    for suffix in ("moving_mean", "moving_variance", "vector_u"):
        chosen = [v for v in trainer.non_trainable_variables if v.path.endswith(suffix)]
        assert chosen and all(_changed(trainer, chosen, before, after)), suffix


def test_both_optimizers_state_persists_across_steps_and_checkpoints(fitted, tmp_path):
    trainer, _, _, optimizer_snapshots = fitted
    assert int(trainer.g_optimizer.iterations) == int(trainer.d_optimizer.iterations) == 2
    # Adam's second moment after step 2 is 0.9 * (after step 1) + 0.1 * g^2: at least 0.9 times
    # the first one wherever the state was carried over, not rebuilt from zeros each step.
    names = [v.path for v in trainer.d_optimizer.variables]
    carried = 0
    for name, first, second in zip(names, *optimizer_snapshots[1:], strict=True):
        if "velocity" in name:
            assert np.all(second >= 0.9 * first * (1 - 1e-6)), name
            carried += int(np.any(first > 0))
    assert carried > 0
    path = tmp_path / "trainer.weights.h5"
    trainer.save_weights(path)
    restored = small_trainer(tiny_feature_extractor())
    restored.compile(**ALL_TERMS)
    restored.load_weights(path)
    for a, b in zip(trainer.d_optimizer.variables, restored.d_optimizer.variables, strict=True):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    for a, b in zip(trainer.variables, restored.variables, strict=True):
        if "seed_generator" not in a.path:  # Keras saves no seed state (smis train does)
            np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


def test_evaluate_runs_the_stateless_test_step(fitted):
    trainer = fitted[0]
    before = values(trainer.trainable_variables)
    logs = trainer.evaluate(batches(seed=5), steps=1, verbose=0, return_dict=True)
    assert set(logs) == set(trainer.trackers) and all(np.isfinite(list(logs.values())))
    for a, b in zip(before, values(trainer.trainable_variables), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "codes",
    [
        {"region_colour_code": True},
        {"region_colour_code": True, "region_texture_code": 2, "latent_channels": 12},
    ],
)
def test_region_code_models_train_with_the_random_code_terms(codes):
    trainer = small_trainer(**codes)
    trainer.compile(prior_gan_weight=1.0, latent_weight=1.0)
    logs = trainer.fit(batches(), epochs=1, steps_per_epoch=1, verbose=0).history
    assert logs["g_prior_gan"][-1] != 0.0 and logs["g_latent"][-1] > 0.0
    assert all(np.isfinite(values[-1]) for values in logs.values())


def test_prior_gan_term_sends_no_gradient_to_the_encoder():
    import jax

    from smis_layers.training.jax_step import loss_gradients

    trainer = small_trainer()
    trainer.compile(
        gan_weight=0.0,
        feature_matching_weight=0.0,
        kl_weight=0.0,
        reconstruction_weight=0.0,
        prior_gan_weight=1.0,
    )
    data = next(batches(seed=2))[0]
    variables = [*trainer.trainable_variables, *trainer.non_trainable_variables]
    trained = trainer.generator.trainable_variables

    @jax.jit  # compiling is faster than JAX's op-by-op differentiation of the whole loss
    def gradients_of(optimizer_values, values):
        return loss_gradients(
            trainer.g_optimizer,
            optimizer_values,
            variables,
            values,
            trained,
            lambda: trainer.generator_losses(data, training=True)[0],
            "g_loss",
        )[:2]

    gradients, terms = gradients_of(
        [v.value for v in trainer.g_optimizer.variables], [v.value for v in variables]
    )
    assert float(terms["g_loss"]) == pytest.approx(float(terms["g_prior_gan"])) != 0.0
    reached = {v.path: bool(np.any(to_numpy(g))) for v, g in zip(trained, gradients, strict=True)}
    encoder = [path for path in reached if path.startswith("encoder")]
    assert encoder and not any(reached[path] for path in encoder)
    decoder = [path for path in reached if not path.startswith("encoder")]
    assert np.mean([reached[path] for path in decoder]) > 0.9


@pytest.mark.parametrize(
    "policy", ["mixed_bfloat16", pytest.param("mixed_float16", marks=pytest.mark.slow)]
)
def test_mixed_precision_step_stays_finite(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        trainer = small_trainer()
        trainer.compile()
        if policy == "mixed_float16":
            assert isinstance(trainer.d_optimizer, keras.optimizers.LossScaleOptimizer)
        history = trainer.fit(batches(), epochs=1, steps_per_epoch=1, verbose=0)
        assert all(np.isfinite(v[-1]) for v in history.history.values())
        assert int(trainer.d_optimizer.iterations) == 1
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_spectral_norm_updates_its_kernel_in_place_as_on_the_other_backends():
    """TensorFlow's tape takes the gradient at the kernel read after SpectralNormalization's
    assignment `W <- W / sigma` (d sum(xW~ * r) / dW~ = x^T r, whatever W); a plain stateless
    call would differentiate through sigma(W) instead."""
    import jax

    from smis_layers.training.jax_step import loss_gradients

    rng = np.random.default_rng(0)
    x, r = rng.normal(size=(4, 5)).astype("float32"), rng.normal(size=(4, 3)).astype("float32")
    layer = keras.layers.SpectralNormalization(keras.layers.Dense(3))
    layer.build((None, 5))
    kernel = layer.layer.kernel
    variables = [*layer.trainable_variables, *layer.non_trainable_variables]
    optimizer = keras.optimizers.SGD(1.0)
    optimizer.build(layer.trainable_variables)

    def loss():
        return {"loss": keras.ops.sum(layer(x, training=True) * r)}

    gradients, _, after = loss_gradients(
        optimizer,
        [v.value for v in optimizer.variables],
        variables,
        [v.value for v in variables],
        [kernel],
        loss,
        "loss",
    )
    np.testing.assert_allclose(to_numpy(gradients[0]), x.T @ r, rtol=1e-5, atol=1e-6)
    u, normalized = layer.normalized_weights()
    position = {id(v): i for i, v in enumerate(variables)}
    np.testing.assert_allclose(to_numpy(after[position[id(kernel)]]), to_numpy(normalized))
    np.testing.assert_allclose(to_numpy(after[position[id(layer.vector_u)]]), to_numpy(u))

    def plain(value):
        mapping = [(kernel, value), *((v, v.value) for v in variables if v is not kernel)]
        with keras.StatelessScope(mapping):
            return loss()["loss"]

    through_sigma = to_numpy(jax.grad(plain)(kernel.value))
    assert np.abs(through_sigma - x.T @ r).max() > 1e-2


def test_data_parallel_warns_of_native_grouped_convolutions():
    import warnings

    import jax

    with keras.distribution.DataParallel(devices=jax.devices()).scope():
        trainer = small_trainer(lowering="native")
        with pytest.warns(UserWarning, match=r'openxla/xla#47945.*lowering="split"'):
            trainer.compile()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            small_trainer(lowering="split").compile()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small_trainer(lowering="native").compile()  # no distribution: nothing to gather
