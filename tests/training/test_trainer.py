import warnings

import keras
import numpy as np
import pytest
from keras import ops

from smis_layers import GroupDecreasingSchedule
from smis_layers.data import SyntheticShapes, synthetic_tf_dataset
from smis_layers.models import GroupDNet, MulNet, MultiScaleDiscriminator
from smis_layers.training import ConstantThenLinearDecay, SMISTrainer, losses
from smis_layers.training.run import estimate_training_memory
from tests.helpers import BACKEND, to_numpy

pytestmark = pytest.mark.skipif(BACKEND != "tensorflow", reason="the trainer needs TensorFlow")

C, SIZE = 8, 64


def tiny_generator(model_class=GroupDNet, latent_channels=8, **config):
    constant = model_class is MulNet
    widths = {"norm_hidden_channels": 16, "latent_channels": latent_channels}
    schedule = (
        GroupDecreasingSchedule.constant(C, 8, SIZE, **widths)
        if constant
        else GroupDecreasingSchedule.decreasing(C, 4, SIZE, **widths)
    )
    return model_class(
        num_classes=C, image_size=SIZE, schedule=schedule, encoder_channels=8, **config
    )


def tiny_trainer(model_class=GroupDNet, feature_extractor=None, **generator_config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SMISTrainer(
            tiny_generator(model_class, **generator_config),
            MultiScaleDiscriminator(num_layers=2, base_filters=8),
            feature_extractor=feature_extractor,
        )


def _data(batch=4, seed=0):
    return synthetic_tf_dataset(SyntheticShapes(SIZE, seed=seed), batch)


@pytest.mark.parametrize("model_class", [GroupDNet, MulNet])
def test_fit_runs_and_updates_both_networks(model_class):
    trainer = tiny_trainer(model_class)
    trainer.compile()
    g_before = [to_numpy(v) for v in trainer.generator.trainable_variables]
    d_before = [to_numpy(v) for v in trainer.discriminator.trainable_variables]
    history = trainer.fit(_data(), epochs=1, steps_per_epoch=2, verbose=0)
    for name in ("g_loss", "d_loss", "g_gan", "g_feature_matching", "g_kl", "d_real", "d_fake"):
        assert np.isfinite(history.history[name][-1]), name
    g_changed = [
        not np.allclose(a, to_numpy(v))
        for a, v in zip(g_before, trainer.generator.trainable_variables, strict=True)
    ]
    d_changed = [
        not np.allclose(a, to_numpy(v))
        for a, v in zip(d_before, trainer.discriminator.trainable_variables, strict=True)
    ]
    assert np.mean(g_changed) > 0.9 and np.mean(d_changed) > 0.9
    assert trainer.g_optimizer.learning_rate.numpy() == pytest.approx(1e-4)
    assert trainer.d_optimizer.learning_rate.numpy() == pytest.approx(4e-4)
    assert trainer.g_optimizer.beta_1 == 0.0 and trainer.g_optimizer.beta_2 == 0.9


def test_warns_once_without_perceptual_features():
    with pytest.warns(UserWarning, match="without the perceptual loss"):
        SMISTrainer(tiny_generator(), MultiScaleDiscriminator(num_layers=2, base_filters=8))


def test_perceptual_term_with_a_feature_extractor():
    inputs = keras.Input((SIZE, SIZE, 3))
    f1 = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    f2 = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(f1)
    extractor = keras.Model(inputs, [f1, f2])
    extractor.trainable = False
    trainer = tiny_trainer(feature_extractor=lambda x: extractor(x) + [extractor(x)[1]] * 3)
    trainer.compile()
    logs = trainer.evaluate(_data(), steps=1, verbose=0, return_dict=True)
    assert logs["g_perceptual"] > 0


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_losses_stay_finite(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        trainer = tiny_trainer()
        trainer.compile()
        if policy == "mixed_float16":
            assert isinstance(trainer.g_optimizer, keras.optimizers.LossScaleOptimizer)
        history = trainer.fit(_data(), epochs=1, steps_per_epoch=2, verbose=0)
        assert all(np.isfinite(v[-1]) for v in history.history.values())
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_mixed_float16_trains_where_the_native_grouped_kernel_fails(failing_native_kernel):
    """On AMD CPUs TensorFlow's oneDNN grouped kernel cannot back-propagate in float16; with
    such a kernel (simulated here), "auto" falls back to the split lowering and the
    mixed_float16 step still trains."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        trainer = tiny_trainer()
        trainer.compile()
        before = [to_numpy(v) for v in trainer.generator.trainable_variables]
        history = trainer.fit(_data(), epochs=1, steps_per_epoch=1, verbose=0)
        after = [to_numpy(v) for v in trainer.generator.trainable_variables]
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    assert any(not np.array_equal(a, b) for a, b in zip(after, before, strict=True))


ONLY_PRIOR_GAN = {
    "gan_weight": 0.0,
    "feature_matching_weight": 0.0,
    "perceptual_weight": 0.0,
    "kl_weight": 0.0,
    "prior_gan_weight": 1.0,
}


def test_prior_gan_term_trains_the_decoder_on_random_codes():
    import tensorflow as tf

    trainer = tiny_trainer()
    trainer.compile(**ONLY_PRIOR_GAN)  # the only non-zero generator term
    generator = trainer.generator
    with tf.GradientTape(persistent=True) as tape:
        terms, _ = trainer.generator_losses(next(iter(_data())), training=True)
    assert float(terms["g_prior_gan"]) != 0.0
    assert float(terms["g_loss"]) == pytest.approx(float(terms["g_prior_gan"]))
    encoder = generator.encoder.trainable_variables
    decoder = [v for v in generator.trainable_variables if not v.path.startswith("encoder")]
    # Its codes come from N(0, 1), not from the encoder: no gradient reaches the encoder.
    for v, g in zip(encoder, tape.gradient(terms["g_loss"], encoder), strict=True):
        assert g is None or not np.any(to_numpy(g)), v.path
    reached = [
        g is not None and np.any(to_numpy(g)) for g in tape.gradient(terms["g_loss"], decoder)
    ]
    assert np.mean(reached) > 0.9
    history = trainer.fit(_data(), epochs=1, steps_per_epoch=1, verbose=0)
    assert history.history["g_prior_gan"][-1] != 0.0


def test_latent_regression_asks_the_decoder_for_the_codes_back():
    import tensorflow as tf

    trainer = tiny_trainer()
    trainer.compile(**{**ONLY_PRIOR_GAN, "prior_gan_weight": 0.0, "latent_weight": 2.0})
    generator = trainer.generator
    data = next(iter(_data()))
    codes = {}

    def shared_codes(like, spatially_shared=False):
        assert spatially_shared  # one code per class, the same over the grid
        b, h, w, k = ops.shape(like)
        draw = keras.random.normal((b, 1, 1, k), seed=3)
        return codes.setdefault("z", ops.broadcast_to(draw, (b, h, w, k)))

    generator.training_prior_z = shared_codes
    terms, (_, prior_fake) = trainer.generator_losses(data, training=False)
    assert prior_fake is None  # the discriminator does not see these images
    segmap = generator.segmap(data["masks"])
    images = generator.decode(codes["z"], segmap, training=False)
    mu, _ = generator.encode_segmap(images, segmap, training=False)
    expected = losses.latent_regression_loss(codes["z"], mu, segmap, 8)
    assert float(terms["g_latent"]) == pytest.approx(2 * float(expected), rel=1e-5)
    assert float(terms["g_loss"]) == pytest.approx(float(terms["g_latent"]))
    with tf.GradientTape() as tape:
        terms, _ = trainer.generator_losses(data, training=True)
    # Both the decoder (which must draw the codes) and the encoder's path to `mu` (which reads
    # them) learn; the log-variance head does not take part.
    variables = generator.trainable_variables
    gradients = tape.gradient(terms["g_loss"], variables)
    reached = {}
    for v, g in zip(variables, gradients, strict=True):
        part = "fc_var" if "fc_var" in v.path else v.path.startswith("encoder")
        reached.setdefault(part, []).append(g is not None and np.any(to_numpy(g)))
    assert np.mean(reached[True]) > 0.9 and np.mean(reached[False]) > 0.9, reached
    assert not any(reached["fc_var"])
    del generator.training_prior_z
    history = trainer.fit(_data(), epochs=1, steps_per_epoch=1, verbose=0)
    assert history.history["g_latent"][-1] > 0.0
    with pytest.raises(ValueError, match=r"`latent_weight` must be a finite number >= 0"):
        trainer.compile(latent_weight=-1.0)


@pytest.mark.parametrize("waves", [1, 2])
def test_region_texture_code_model_trains_and_reads_its_waves_back(waves):
    """With the texture code (one wave or two) the latent-regression term reaches the weights
    that read the texture carriers (the CGNorm shared kernels' carrier inputs), through the
    amplitude channels measured from the generated images."""
    import tensorflow as tf

    trainer = tiny_trainer(
        latent_channels=4 + 4 * waves, region_colour_code=True, region_texture_code=waves
    )
    trainer.compile(**{**ONLY_PRIOR_GAN, "prior_gan_weight": 0.0, "latent_weight": 1.0})
    generator = trainer.generator
    with tf.GradientTape() as tape:
        terms, _ = trainer.generator_losses(next(iter(_data())), training=True)
    kernel = generator.blocks[-1].norm_0.shared.kernel  # inputs: (class, carrier) pairs
    gradient = to_numpy(tape.gradient(terms["g_loss"], kernel))
    assert np.abs(gradient[:, :, 1::2]).max() > 0  # the carrier inputs learn
    trainer.compile(latent_weight=1.0, prior_gan_weight=1.0, region_colour_weight=1.0)
    logs = trainer.fit(_data(), epochs=1, steps_per_epoch=1, verbose=0).history
    assert logs["g_latent"][-1] > 0.0
    assert all(np.isfinite(values[-1]) for values in logs.values())


def test_latent_regression_counts_only_the_classes_present():
    z = np.zeros((2, 2, 2, 6), "float32")
    mu = np.zeros_like(z)
    mu[0, ..., 2:4] = 5.0  # sample 0's class 1, absent from its segmap: no pixel holds its code
    mu[1, ..., 0:2] = 1.0  # sample 1's class 0, present
    segmap = np.zeros((2, 4, 4, 3), "float32")
    segmap[0, ..., 0] = 1
    segmap[1, :2, ..., 0] = 1
    segmap[1, 2:, ..., 2] = 1
    # Present (sample, class) pairs: (0, 0), (1, 0), (1, 2): 3 x 2 channels x 4 cells.
    loss = losses.latent_regression_loss(z, mu, segmap, channels_per_class=2)
    assert float(loss) == pytest.approx(1.0 * 8 / 24)
    # Codes not owned by classes (VSPADE): every channel counts.
    assert float(losses.latent_regression_loss(z, mu, segmap)) == pytest.approx(np.abs(mu).mean())


def test_region_colour_loss_counts_every_present_class_alike():
    real = np.zeros((2, 16, 16, 3), "float32")
    segmap = np.zeros((2, 16, 16, 3), "float32")
    segmap[..., 0] = 1
    segmap[0, :2, :2] = [0, 1, 0]  # sample 0: a 4-pixel class 1 on class 0; class 2 absent
    fake = real.copy()
    fake[0, :2, :2] += 0.6  # only the small region's colour is wrong
    fake[1] += 0.3  # sample 1 (class 0 alone) off by 0.3 everywhere
    # Present (sample, class) pairs: (0, 0) 0, (0, 1) 0.6, (1, 0) 0.3.
    loss = losses.region_colour_loss(real, fake, segmap)
    assert float(loss) == pytest.approx(0.9 / 3)
    assert float(losses.reconstruction_loss(real[:1], fake[:1])) < 0.01  # the pixel L1: 4 / 256


def _stripes(size, cycles, angle, phase=0.0, amplitude=0.5):
    """(size, size, 3) grey stripes with `cycles` whole periods across the image along `angle`
    (0 or pi / 2: periodic over the image, so a circular shift only changes their phase)."""
    y, x = np.mgrid[0:size, 0:size] / size
    along = np.cos(angle) * x + np.sin(angle) * y
    wave = amplitude * np.sin(2 * np.pi * (cycles * along + phase))
    return np.repeat(wave[..., None], 3, axis=-1).astype("float32")


def test_region_spectrum_loss_compares_textures_but_not_their_phase():
    size = 32
    real = _stripes(size, 4, 0.0)[None]
    segmap = np.ones((1, size, size, 1), "float32")
    spectrum, pixel = losses.region_spectrum_loss, losses.reconstruction_loss
    shifted = np.roll(real, 3, axis=2)  # the same stripes, another phase
    assert float(spectrum(real, shifted, segmap)) < 1e-3
    assert float(pixel(real, shifted)) > 0.2
    # Stripes of amplitude 0.5 have two peaks of 0.25: a flat region (the mean colour, no
    # texture) misses both, stripes turned or twice as fine miss both and add two of their own.
    # The pixel L1 ranks the flat region above the right stripes shifted.
    flat = np.zeros_like(real)
    assert float(pixel(real, flat)) < float(pixel(real, shifted))
    assert float(spectrum(real, flat, segmap)) == pytest.approx(0.5, rel=1e-3)
    for wrong in (_stripes(size, 4, np.pi / 2)[None], _stripes(size, 8, 0.0)[None]):
        assert float(spectrum(real, wrong, segmap)) == pytest.approx(1.0, rel=1e-3)
    # A mean-colour offset is the region colour term's business, not this one's.
    assert float(spectrum(real, real + 0.3, segmap)) < 1e-3


def test_region_spectrum_loss_counts_every_present_class_alike():
    size = 32
    real = _stripes(size, 4, 0.0)[None].repeat(2, axis=0)
    segmap = np.zeros((2, size, size, 3), "float32")
    segmap[0, :, : size // 2, 0] = 1  # sample 0: two halves, classes 0 and 1; class 2 absent
    segmap[0, :, size // 2 :, 1] = 1
    segmap[1, ..., 0] = 1  # sample 1: class 0 alone
    fake = real.copy()
    fake[0, :, size // 2 :] = 0.0  # class 1's stripes lost
    alone = losses.region_spectrum_loss(real[:1], fake[:1], segmap[:1, ..., 1:2])
    loss = losses.region_spectrum_loss(real, fake, segmap)
    assert float(alone) > 0.4
    assert float(loss) == pytest.approx(float(alone) / 3, rel=1e-4)  # 3 present (sample, class)


@pytest.mark.parametrize(
    ("term", "loss"),
    [
        ("region_colour", losses.region_colour_loss),
        ("region_spectrum", losses.region_spectrum_loss),
    ],
)
def test_region_term_trains_the_generator(term, loss):
    import tensorflow as tf

    trainer = tiny_trainer()
    trainer.compile(**{**ONLY_PRIOR_GAN, "prior_gan_weight": 0.0, f"{term}_weight": 0.5})
    data = next(iter(_data()))
    with tf.GradientTape() as tape:
        terms, (fake, _) = trainer.generator_losses(data, training=True)
    expected = loss(data["images"], fake, trainer.generator.segmap(data["masks"]))
    assert float(expected) > 0.0
    assert float(terms[f"g_{term}"]) == pytest.approx(0.5 * float(expected), rel=1e-5)
    assert float(terms["g_loss"]) == pytest.approx(float(terms[f"g_{term}"]))
    gradients = tape.gradient(terms["g_loss"], trainer.generator.trainable_variables)
    reached = [
        g is not None and np.all(np.isfinite(to_numpy(g))) and np.any(to_numpy(g))
        for g in gradients
    ]
    assert np.mean(reached) > 0.9  # the decoder and, through the codes, the encoder
    with pytest.raises(ValueError, match=rf"`{term}_weight` must be a finite number >= 0"):
        trainer.compile(**{f"{term}_weight": -1.0})


def test_discriminator_takes_random_code_images_as_fakes_too():
    trainer = tiny_trainer()
    trainer.compile(prior_gan_weight=0.5)
    data = next(iter(_data(seed=3)))
    fake = trainer.generator(data, training=False)["images"]
    prior = trainer.generator.generate(data["masks"], seed=1)
    alone = trainer.discriminator_losses(data, fake, training=False)
    prior_alone = trainer.discriminator_losses(data, prior, training=False)
    both = trainer.discriminator_losses(data, fake, False, prior_fake=prior)
    expected = 0.5 * (float(alone["d_fake"]) + float(prior_alone["d_fake"]))
    assert float(both["d_fake"]) == pytest.approx(expected, rel=1e-5)
    assert float(both["d_real"]) == pytest.approx(float(alone["d_real"]), rel=1e-6)
    with pytest.raises(ValueError, match=r"`prior_gan_weight` must be a finite number >= 0"):
        trainer.compile(prior_gan_weight=-1.0)
    # Validation (test_step) scores the discriminator on both kinds of fakes, as training does.
    import tensorflow as tf

    generator = trainer.generator
    generator._sample_training_z = lambda mu, logvar: mu  # deterministic reconstructions
    trainer._prior_fake = lambda like, condition, training: prior
    fake = generator(data, training=False)["images"]
    alone = trainer.discriminator_losses(data, fake, training=False)
    both = trainer.discriminator_losses(data, fake, False, prior_fake=prior)
    logs = trainer.evaluate(tf.data.Dataset.from_tensors(data), verbose=0, return_dict=True)
    assert logs["d_fake"] == pytest.approx(float(both["d_fake"]), rel=1e-4)
    assert logs["d_fake"] != pytest.approx(float(alone["d_fake"]), rel=1e-3)
    del trainer._prior_fake, generator._sample_training_z
    # The memory estimate counts the second decoder and discriminator pass.
    with_prior = estimate_training_memory(trainer, 4).activations
    trainer.compile()
    assert with_prior == 2 * estimate_training_memory(trainer, 4).activations > 0


def test_losses_match_their_definitions():
    real = [[np.full((1, 2, 2, 1), 0.5, "float32"), np.full((1, 2, 2, 1), 2.0, "float32")]]
    fake = [[np.full((1, 2, 2, 1), 1.5, "float32"), np.full((1, 2, 2, 1), -0.5, "float32")]]
    d_real, d_fake = losses.hinge_discriminator_loss(real, fake)
    assert float(d_real) == 0.0 and float(d_fake) == pytest.approx(0.5)
    assert float(losses.hinge_generator_loss(fake)) == pytest.approx(0.5)
    assert float(losses.feature_matching_loss(real, fake)) == pytest.approx(1.0)
    mu, logvar = np.array([1.0, 0.0]), np.array([0.0, np.log(2.0)])
    expected = -0.5 * ((1 + 0 - 1 - 1) + (1 + np.log(2) - 0 - 2))
    assert float(losses.kl_divergence_loss(mu, logvar)) == pytest.approx(expected)


def test_constant_then_linear_decay():
    schedule = ConstantThenLinearDecay(1e-3, constant_steps=10, decay_steps=10)
    values = [float(schedule(step)) for step in (0, 10, 15, 20, 30)]
    assert values == pytest.approx([1e-3, 1e-3, 5e-4, 0.0, 0.0])
    restored = ConstantThenLinearDecay.from_config(schedule.get_config())
    assert float(restored(15)) == pytest.approx(5e-4)
