from __future__ import annotations

import warnings

import keras
from keras import ops

from smis_layers.models.discriminator import MultiScaleDiscriminator
from smis_layers.training import losses
from smis_layers.training.config import RunConfig, defaults
from smis_layers.utils.validation import require_loss_weight

#: The loss weights and learning rates of a run (`RunConfig`), the defaults of `compile`.
_RUN = defaults(RunConfig)

#: Loss terms that are sums over the batch's elements (the official KL term); every other term
#: is a mean over the batch. Under a `tf.distribute` strategy each replica contributes
#: `term / num_replicas_in_sync` for a mean term and `term` for a sum term, so that the sum of the
#: replicas' contributions (what Keras' optimizer all-reduces) is the global-batch loss.
SUM_REDUCED_TERMS = frozenset({"g_kl"})


def ttur_optimizer(
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule,
) -> keras.optimizers.Optimizer:
    """Adam(beta_1=0, beta_2=0.9), the official optimizer of both networks (TTUR: 1e-4 for the
    generator, 4e-4 for the discriminator). `learning_rate` may be a schedule.

    Examples:
        >>> trainer.compile(g_optimizer=ttur_optimizer(4e-4), d_optimizer=ttur_optimizer(1e-4))
    """
    return keras.optimizers.Adam(learning_rate, beta_1=0.0, beta_2=0.9)


#: Backends `SMISTrainer.train_step` is written for: TensorFlow (graph mode or XLA,
#: `tf.distribute` strategies), JAX (one `jax.jit`-compiled step, `keras.distribution`) and
#: PyTorch (eager, one device).
TRAINING_BACKENDS = ("tensorflow", "jax", "torch")


def resolve_jit_compile(jit_compile) -> bool:
    """ "auto" compiles with XLA on GPUs only: on CPUs TensorFlow's graph mode with the native
    grouped convolution is faster than any XLA-compiled step (docs/benchmarks.md). The PyTorch
    backend trains eagerly ("auto": no `torch.compile`). JAX always compiles ("auto": `jax.jit`):
    its eager mode dispatches op by op."""
    if jit_compile != "auto":
        return bool(jit_compile)
    if keras.backend.backend() == "torch":
        return False
    if keras.backend.backend() != "tensorflow":
        return True
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


@keras.saving.register_keras_serializable(package="smis_layers")
class SMISTrainer(keras.Model):
    """Trains a generator of the zoo (GroupDNet or a baseline) against a discriminator.

    `fit` runs, per batch, one generator step (hinge GAN + feature matching + perceptual + KL
    losses; the generator's encoder is trained with it) and one discriminator step (hinge loss on
    real images and on freshly generated ones), as the official code does.

    Args:
        generator: a `GroupDNet` (or baseline) instance.
        discriminator: a `MultiScaleDiscriminator`; default `MultiScaleDiscriminator()`.
        feature_extractor: images in [-1, 1] -> list of feature maps for the perceptual loss
            (e.g. `vgg19_feature_extractor(path)`); None trains without the perceptual term and
            says so once.
        **kwargs: `keras.Model` keyword arguments.

    Data: batches `{"images": (B, H, W, 3) in [-1, 1], "masks": label maps or one-hot}` (plus
    "instances" or "instance_edges" for models with instance edges).

    Backends: TensorFlow (graph mode, or XLA with `jit_compile`), JAX (one `jax.jit`-compiled
    function per batch) and PyTorch (an eager step with autograd). On JAX and PyTorch feed it
    Python generators of `(batch,)` tuples, e.g. from `smis_layers.data.synthetic_batches`, or
    a `tf.data.Dataset` when TensorFlow is installed.

    The JAX step is stateless, as Keras' JAX trainer wants: `train_step(state, data)` returns
    `(logs, state)`, and the generator step and the discriminator step of one batch form a
    single function that `fit` compiles with `jax.jit`. Keras' JAX trainer threads the state of
    `self.optimizer` only (keras-team/keras#18881); this trainer keeps Keras' `fit`, its
    callbacks and its `keras.distribution` support, and overrides the hooks that gather,
    purge, shard and write back the state (`_get_jax_state`, `_purge_model_variables`,
    `_get_state_sharding_spec`, `jax_state_sync`) so that the state's optimizer part is the
    variables of both `g_optimizer` and `d_optimizer`. The rest of the state is Keras': the
    trainable variables, the non-trainable ones (batch-norm moving statistics, spectral-norm
    `u` vectors and the generator's seed-generator state, so noise differs per step and a
    resumed run draws the same noise) and the metrics' variables. Overriding these hooks,
    rather than writing a separate training loop, keeps checkpoint callbacks (which call
    `jax_state_sync`), `evaluate` and `DataParallel` (state shardings passed to `jax.jit`)
    working unchanged. Assignments to trainable variables inside the step (spectral
    normalization's kernel) act in place as on the other backends (`jax_step.InPlaceScope`).

    Distributed training (`tf.distribute.MirroredStrategy`, `MultiWorkerMirroredStrategy`):
    create the models, the trainer and the optimizers under `strategy.scope()` and call
    `fit` with the global batch. Keras' TensorFlow optimizer sums the replicas' gradients, so
    every replica minimizes its share of the global loss: mean terms divided by
    `num_replicas_in_sync`, the KL term (a sum over elements) undivided (`SUM_REDUCED_TERMS`).
    The reported metrics are all-reduced to the global-batch values. Sub-batches must be of
    equal size (global batch divisible by the number of replicas). Use `norm="sync_batch"` in
    the generator for the official synchronized batch norm. See docs/training_distributed.md.

    Examples:
        >>> trainer = SMISTrainer(generator, MultiScaleDiscriminator(num_layers=3, base_filters=16))
        >>> trainer.compile()
        >>> trainer.fit(dataset, epochs=1, steps_per_epoch=10)
    """

    def __init__(self, generator, discriminator=None, feature_extractor=None, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator or MultiScaleDiscriminator()
        self.feature_extractor = feature_extractor
        height, width = generator.image_size
        self.discriminator.build((None, height, width, generator.condition_channels + 3))
        self.built = True
        if feature_extractor is None:
            warnings.warn(
                "SMISTrainer: no feature extractor (VGG19 weights) given; training without the "
                "perceptual loss. Pass feature_extractor=vgg19_feature_extractor(PATH) to use it.",
                stacklevel=2,
            )
        names = (
            "g_loss",
            "d_loss",
            "g_gan",
            "g_feature_matching",
            "g_perceptual",
            "g_reconstruction",
            "g_region_colour",
            "g_region_spectrum",
            "g_kl",
            "g_prior_gan",
            "g_latent",
            "d_real",
            "d_fake",
        )
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}

    def compile(
        self,
        g_optimizer: keras.optimizers.Optimizer | None = None,
        d_optimizer: keras.optimizers.Optimizer | None = None,
        gan_weight: float = 1.0,
        feature_matching_weight: float = 10.0,
        perceptual_weight: float = 10.0,
        kl_weight: float = _RUN["kl_weight"],
        reconstruction_weight: float = _RUN["reconstruction_weight"],
        region_colour_weight: float = _RUN["region_colour_weight"],
        region_spectrum_weight: float = _RUN["region_spectrum_weight"],
        prior_gan_weight: float = _RUN["prior_gan_weight"],
        latent_weight: float = _RUN["latent_weight"],
        jit_compile="auto",
        **kwargs,
    ):
        """Args: the two optimizers (default TTUR: Adam(1e-4) for G, Adam(4e-4) for D, both with
        beta_1=0, beta_2=0.9), the loss weights, and `jit_compile` ("auto": XLA on GPU only).
        The defaults of the learning rates and of the KL, reconstruction and prior-GAN weights
        are those of a run (`smis_layers.training.config.RunConfig`).

        `reconstruction_weight` (0 in the official recipe) weights a pixel L1 between the real
        image and its reconstruction from its own codes; the zoo uses it in place of the VGG19
        perceptual loss, whose weights cannot be downloaded everywhere.

        `region_colour_weight` (0 in the official recipe; not in the paper) weights an L1
        between each class's mean colour in the real image and in its reconstruction, every
        class present counting alike (`losses.region_colour_loss`): the pixel L1 is dominated
        by the large regions, and a small class's colour can drift while it shrinks.

        `region_spectrum_weight` (0 in the official recipe; not in the paper) weights an L1
        between the amplitude spectra of each class's region (less its mean colour) in the
        real image and in its reconstruction, every class present counting alike
        (`losses.region_spectrum_loss`). Amplitudes ignore where a pattern lies, so the term
        asks for each region's texture (orientation, frequency, contrast) without its phase:
        the pixel L1 alone scores a region painted flat in its mean colour better than the
        right stripes shifted by a fraction of a period, and so teaches the decoder to paint
        no texture and the encoder to carry none.

        `prior_gan_weight` (0 in the official recipe) weights a hinge GAN term on images decoded
        from codes drawn from N(0, 1) for the batch's label maps, and the discriminator then takes
        these images as fakes too (its fake term is the mean over both kinds). The official
        objective shows the discriminator only reconstructions (codes from the encoder), so
        nothing trains what `generate` does with random codes unless the KL term pulls the
        codes onto the prior; this is the cLR-GAN branch of BicycleGAN (Zhu et al., "Toward
        Multimodal Image-to-Image Translation", NeurIPS 2017). It costs one more decoder pass
        in each network's step.

        `latent_weight` (0 in the official recipe) weights the other half of that cLR branch,
        latent regression: the images decoded from random codes are encoded again, and the L1
        distance between the encoder's means and the codes is the loss, over the classes present
        in each label map (a class absent from a label map has no pixels to read its code from).
        Since the
        encoder sees class c's region alone, the term asks the decoder to put class c's code
        into class c's pixels, and nowhere else: the remedy for a decoder that ignores a class's
        code (docs/zoo.md). Its codes are one N(0, 1) draw per class repeated over the latent
        grid: the encoder reads class c's code from the crop of c's bounding box, which does
        not line up with the grid positions the decoder reads it at, so only a code that is
        the same everywhere can be read back. Unlike BicycleGAN, the term trains the encoder
        too (one gradient for the whole generator). It costs a decoder and an encoder pass in
        the generator's step."""
        if keras.backend.backend() not in TRAINING_BACKENDS:
            raise NotImplementedError(
                "SMISTrainer's train_step is written for the backends "
                f"{', '.join(TRAINING_BACKENDS)}; set KERAS_BACKEND to one of them (current: "
                f"{keras.backend.backend()})"
            )
        super().compile(jit_compile=resolve_jit_compile(jit_compile), **kwargs)
        self.g_optimizer = g_optimizer or ttur_optimizer(_RUN["lr_g"])
        self.d_optimizer = d_optimizer or ttur_optimizer(_RUN["lr_d"])
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            self.g_optimizer = _loss_scaled(self.g_optimizer)
            self.d_optimizer = _loss_scaled(self.d_optimizer)
        weights = {
            "gan": gan_weight,
            "feature_matching": feature_matching_weight,
            "perceptual": perceptual_weight,
            "kl": kl_weight,
            "reconstruction": reconstruction_weight,
            "region_colour": region_colour_weight,
            "region_spectrum": region_spectrum_weight,
            "prior_gan": prior_gan_weight,
            "latent": latent_weight,
        }
        self.loss_weights = {k: require_loss_weight(f"{k}_weight", v) for k, v in weights.items()}
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        if keras.backend.backend() == "jax":
            _warn_of_batch_all_gathers(self)

    @property
    def metrics(self):
        return list(self.trackers.values())

    # ------------------------------------------------------------------ pure computations
    def _condition(self, data):
        segmap = self.generator.segmap(data["masks"])
        return self.generator.condition_segmap(
            segmap, data.get("instances"), data.get("instance_edges")
        )

    def _discriminate(self, segmap, images, training):
        images = ops.cast(images, segmap.dtype)
        return self.discriminator(ops.concatenate([segmap, images], axis=-1), training=training)

    def generator_losses(self, data, training=True) -> tuple[dict, tuple]:
        """The generator's loss terms (weighted) and the images they scored: `(terms, (fake,
        prior_fake))`, `prior_fake` (images from random codes) None when `prior_gan_weight` is
        0 (the discriminator does not see them then)."""
        condition = self._condition(data)
        out = self.generator(data, training=training)
        fake, real = out["images"], ops.cast(data["images"], out["images"].dtype)
        fake_outputs = self._discriminate(condition, fake, training)
        real_outputs = self._discriminate(condition, real, training)
        w = self.loss_weights
        terms = {
            "g_gan": w["gan"] * losses.hinge_generator_loss(fake_outputs),
            "g_feature_matching": w["feature_matching"]
            * losses.feature_matching_loss(real_outputs, fake_outputs),
            "g_kl": w["kl"]
            * losses.kl_divergence_loss(
                ops.cast(out["mu"], "float32"), ops.cast(out["logvar"], "float32")
            ),
            "g_perceptual": ops.convert_to_tensor(0.0),
            "g_reconstruction": w["reconstruction"] * losses.reconstruction_loss(real, fake),
            "g_region_colour": ops.convert_to_tensor(0.0),
            "g_region_spectrum": ops.convert_to_tensor(0.0),
            "g_prior_gan": ops.convert_to_tensor(0.0),
            "g_latent": ops.convert_to_tensor(0.0),
        }
        segmap = self.generator.segmap(data["masks"])
        if w["region_colour"] > 0:
            terms["g_region_colour"] = w["region_colour"] * losses.region_colour_loss(
                real, fake, segmap
            )
        if w["region_spectrum"] > 0:
            terms["g_region_spectrum"] = w["region_spectrum"] * losses.region_spectrum_loss(
                real, fake, segmap
            )
        prior_fake = None
        if w["prior_gan"] > 0:
            prior_fake = self._prior_fake(out["mu"], condition, training)
            terms["g_prior_gan"] = w["prior_gan"] * losses.hinge_generator_loss(
                self._discriminate(condition, prior_fake, training)
            )
        if w["latent"] > 0:
            terms["g_latent"] = w["latent"] * self._latent_regression(
                data, out["mu"], condition, training
            )
        if self.feature_extractor is not None and w["perceptual"] > 0:
            terms["g_perceptual"] = w["perceptual"] * losses.perceptual_loss(
                self.feature_extractor(real), self.feature_extractor(fake)
            )
        terms = {k: ops.cast(v, "float32") for k, v in terms.items()}
        terms["g_loss"] = sum(terms.values())
        return terms, (fake, prior_fake)

    def _latent_regression(self, data, like, condition, training):
        """The unweighted latent-regression loss (`latent_weight`): codes drawn from N(0, 1),
        one per class repeated over the latent grid, decoded and encoded again. The encoder
        reads class c's code from the crop of class c's bounding box, so only a code that is
        the same at every grid position can be read back wherever the class lies."""
        z = self.generator.training_prior_z(like, spatially_shared=True)
        images = self.generator.decode(z, condition, training)
        segmap = self.generator.segmap(data["masks"])
        mu, _ = self.generator.encode_segmap(images, segmap, training)
        owned = self.generator.class_owned_codes
        return losses.latent_regression_loss(
            z, mu, segmap, self.generator.schedule.latent_channels if owned else None
        )

    def _prior_fake(self, like, condition, training):
        """Images decoded from codes drawn from N(0, 1) (`prior_gan_weight`)."""
        return self.generator.decode(self.generator.training_prior_z(like), condition, training)

    def discriminator_losses(self, data, fake, training=True, prior_fake=None) -> dict:
        """The discriminator's hinge terms on real images and on `fake` (and on `prior_fake`,
        images from random codes, when given: the fake term is then the mean over both)."""
        condition = self._condition(data)
        real = ops.cast(data["images"], condition.dtype)
        fake_outputs = self._discriminate(condition, ops.stop_gradient(fake), training)
        real_outputs = self._discriminate(condition, real, training)
        d_real, d_fake = losses.hinge_discriminator_loss(real_outputs, fake_outputs)
        if prior_fake is not None:
            prior_outputs = self._discriminate(condition, ops.stop_gradient(prior_fake), training)
            _, d_prior = losses.hinge_discriminator_loss(real_outputs, prior_outputs)
            d_fake = 0.5 * (d_fake + d_prior)
        d_real, d_fake = ops.cast(d_real, "float32"), ops.cast(d_fake, "float32")
        return {"d_real": d_real, "d_fake": d_fake, "d_loss": d_real + d_fake}

    # ------------------------------------------------------------------ steps
    def train_step(self, *args):
        """One generator step and one discriminator step: `train_step(data) -> logs` on
        TensorFlow and PyTorch, `train_step(state, data) -> (logs, state)` on JAX (Keras' JAX
        trainer convention)."""
        if keras.backend.backend() == "jax":
            return self._jax_train_step(*args)
        (data,) = args
        data = keras.utils.unpack_x_y_sample_weight(data)[0]  # a dict, or a (dict,) tuple
        if keras.backend.backend() == "torch":
            return self._torch_train_step(data)
        import tensorflow as tf

        num_replicas = _num_replicas_in_sync()
        g_vars = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            g_terms, _ = self.generator_losses(data, training=True)
            g_terms = replica_loss_terms(g_terms, num_replicas, total="g_loss")
            g_scaled = _scale(self.g_optimizer, g_terms["g_loss"])
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_scaled, g_vars), g_vars, strict=True))

        fake, prior_fake = self._discriminator_fakes(data)
        d_vars = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            d_terms = self.discriminator_losses(data, fake, True, prior_fake)
            d_terms = replica_loss_terms(d_terms, num_replicas, total="d_loss")
            d_scaled = _scale(self.d_optimizer, d_terms["d_loss"])
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_scaled, d_vars), d_vars, strict=True))
        return self._update_trackers({**g_terms, **d_terms}, num_replicas)

    def _discriminator_fakes(self, data):
        """Fresh fakes for the discriminator's step: reconstructions, and images from random
        codes when `prior_gan_weight` > 0 (else None)."""
        out = self.generator(data, training=True)
        prior_fake = None
        if self.loss_weights["prior_gan"] > 0:
            prior_fake = self._prior_fake(out["mu"], self._condition(data), True)
            prior_fake = ops.stop_gradient(prior_fake)
        return ops.stop_gradient(out["images"]), prior_fake

    def _torch_train_step(self, data):
        """The same two steps as `train_step`, with PyTorch's autograd: each network's
        gradients are those of its own loss alone (every gradient is cleared before each
        backward pass, as the generator's loss also reaches the discriminator's weights)."""
        import torch

        g_terms, _ = self.generator_losses(data, training=True)
        self._torch_apply(self.g_optimizer, g_terms["g_loss"], self.generator.trainable_variables)
        with torch.no_grad():
            fake, prior_fake = self._discriminator_fakes(data)
        d_terms = self.discriminator_losses(data, fake, True, prior_fake)
        self._torch_apply(
            self.d_optimizer, d_terms["d_loss"], self.discriminator.trainable_variables
        )
        return self._update_trackers({**g_terms, **d_terms})

    def _torch_apply(self, optimizer, loss, variables) -> None:
        import torch

        for variable in self.trainable_variables:
            variable.value.grad = None
        _scale(optimizer, loss).backward()
        gradients = [variable.value.grad for variable in variables]
        missing = [v.path for v, g in zip(variables, gradients, strict=True) if g is None]
        if missing:
            raise ValueError(f"no gradient reaches {missing[:3]} (of {len(missing)} variables)")
        with torch.no_grad():
            optimizer.apply(gradients, variables)

    # ------------------------------------------------------------------ JAX
    def _jax_train_step(self, state, data):
        from smis_layers.training.jax_step import current_values, optimizer_step

        trainable, non_trainable, optimizer_values, metrics_values = state
        data = keras.utils.unpack_x_y_sample_weight(data)[0]
        variables = [*self.trainable_variables, *self.non_trainable_variables]
        values = [*trainable, *non_trainable]
        split = len(self.g_optimizer.variables)
        g_terms, values, g_optimizer_values = optimizer_step(
            self.g_optimizer,
            optimizer_values[:split],
            variables,
            values,
            self.generator.trainable_variables,
            lambda: self.generator_losses(data, training=True)[0],
            "g_loss",
        )
        with keras.StatelessScope(zip(variables, values, strict=True)) as scope:
            fake, prior_fake = self._discriminator_fakes(data)
        values = current_values(scope, variables)
        d_terms, values, d_optimizer_values = optimizer_step(
            self.d_optimizer,
            optimizer_values[split:],
            variables,
            values,
            self.discriminator.trainable_variables,
            lambda: self.discriminator_losses(data, fake, True, prior_fake),
            "d_loss",
        )
        logs, metrics_values = self._jax_update_trackers({**g_terms, **d_terms}, metrics_values)
        count = len(trainable)
        optimizer_values = [*g_optimizer_values, *d_optimizer_values]
        return logs, (values[:count], values[count:], optimizer_values, metrics_values)

    def _jax_test_step(self, state, data):
        trainable, non_trainable, metrics_values = state
        variables = [*self.trainable_variables, *self.non_trainable_variables]
        with keras.StatelessScope(zip(variables, [*trainable, *non_trainable], strict=True)) as s:
            terms = self._evaluation_terms(keras.utils.unpack_x_y_sample_weight(data)[0], 1)
        values = [s.get_current_value(v) for v in variables]
        logs, metrics_values = self._jax_update_trackers(terms, metrics_values)
        count = len(trainable)
        return logs, (values[:count], values[count:], metrics_values)

    def _jax_update_trackers(self, terms: dict, metrics_values: list) -> tuple[dict, list]:
        mapping = zip(self.metrics_variables, metrics_values, strict=True)
        with keras.StatelessScope(mapping) as scope:
            logs = self._update_trackers(terms)
        return logs, [scope.get_current_value(v) for v in self.metrics_variables]

    def _jax_optimizer_variables(self) -> list:
        return [*self.g_optimizer.variables, *self.d_optimizer.variables]

    def _get_jax_state(
        self,
        trainable_variables=False,
        non_trainable_variables=False,
        optimizer_variables=False,
        metrics_variables=False,
        purge_model_variables=False,
    ):
        state = list(
            super()._get_jax_state(trainable_variables, non_trainable_variables, False, False)
        )
        if optimizer_variables:
            state.append([v.value for v in self._jax_optimizer_variables()])
        if metrics_variables:
            state.append([v.value for v in self.metrics_variables])
        if purge_model_variables:
            self._purge_model_variables(
                trainable_variables, non_trainable_variables, optimizer_variables, metrics_variables
            )
        return tuple(state)

    def _purge_model_variables(
        self,
        trainable_variables=False,
        non_trainable_variables=False,
        optimizer_variables=False,
        metrics_variables=False,
    ):
        super()._purge_model_variables(
            trainable_variables, non_trainable_variables, False, metrics_variables
        )
        if optimizer_variables:
            for variable in self._jax_optimizer_variables():
                variable._value = None

    def _get_state_sharding_spec(self):
        trainable, non_trainable, _, metrics = super()._get_state_sharding_spec()
        optimizer = [v.value.sharding for v in self._jax_optimizer_variables()]
        return trainable, non_trainable, optimizer, metrics

    def jax_state_sync(self):
        state = getattr(self, "_jax_state", None)
        if not state or self._jax_state_synced:
            return
        optimizer_values = state.pop("optimizer_variables", None)
        super().jax_state_sync()
        if optimizer_values:
            for variable, value in zip(
                self._jax_optimizer_variables(), optimizer_values, strict=True
            ):
                variable.assign(value)
        state["optimizer_variables"] = optimizer_values

    def test_step(self, *args):
        """Validation losses: `test_step(data) -> logs` on TensorFlow and PyTorch,
        `test_step(state, data) -> (logs, state)` on JAX."""
        if keras.backend.backend() == "jax":
            return self._jax_test_step(*args)
        (data,) = args
        data = keras.utils.unpack_x_y_sample_weight(data)[0]
        num_replicas = _num_replicas_in_sync()
        return self._update_trackers(self._evaluation_terms(data, num_replicas), num_replicas)

    def _evaluation_terms(self, data, num_replicas: int) -> dict:
        g_terms, (fake, prior_fake) = self.generator_losses(data, training=False)
        d_terms = self.discriminator_losses(data, fake, False, prior_fake)  # as in train_step
        g_terms = replica_loss_terms(g_terms, num_replicas, total="g_loss")
        d_terms = replica_loss_terms(d_terms, num_replicas, total="d_loss")
        return {**g_terms, **d_terms}

    def _update_trackers(self, terms: dict, num_replicas: int = 1) -> dict:
        if num_replicas > 1:
            # Every replica holds its contribution; their sum is the global-batch value. Summing
            # here makes every replica's trackers hold the global values, whatever reduction
            # Keras then applies to the replicas' logs ("mean" for Mirrored strategies).
            import tensorflow as tf

            names = list(terms)
            summed = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, ops.stack([terms[name] for name in names])
            )
            terms = {name: summed[i] for i, name in enumerate(names)}
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        if keras.backend.backend() == "tensorflow" and _multi_worker(self.distribute_strategy):
            # Keras 3 reduces the replicas' logs of a multi-worker strategy with
            # `strategy.reduce("MEAN", value, axis=0)` (keras/src/backend/tensorflow/trainer.py,
            # `reduce_per_replica`), which fails on scalars ("Invalid reduction dimension 0 for
            # input with 0 dimensions"): give each replica's (identical, global) value an axis.
            logs = {name: ops.reshape(value, (1,)) for name, value in logs.items()}
        return logs

    def call(self, inputs, training=None):
        return self.generator(inputs, training=training)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Under a strategy, Keras 3's TensorFlow trainer (keras/src/backend/tensorflow/
        # trainer.py, `_maybe_symbolic_build`) takes one distributed batch and reduces it across
        # replicas with `strategy.reduce("MEAN", batch, axis=None)` only to get its shapes.
        # MultiWorkerMirroredStrategy's reduce does not accept a nested batch (our dict): fit
        # fails with "Attempt to convert a value ({'images': PerReplica ...}) with an
        # unsupported type (<class 'dict'>) to a Tensor" (keras-team/keras#20329, #20585).
        # The shapes of one replica's sub-batch serve the same purpose.
        if iterator is None or self._distribute_strategy is None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        import tensorflow as tf

        strategy = self.distribute_strategy
        for _, _, batches in iterator:
            data_batch = next(batches)
            break

        def local(value):
            if isinstance(value, tf.distribute.DistributedValues):
                return strategy.experimental_local_results(value)[0]
            return value

        return super()._maybe_symbolic_build(data_batch=tf.nest.map_structure(local, data_batch))


def replica_loss_terms(terms: dict, num_replicas: int, total: str) -> dict:
    """One replica's share of the loss terms, so that the replicas' shares sum to the global loss.

    Keras' TensorFlow optimizer all-reduces (sums) the replicas' gradients before applying them,
    so each replica must minimize its share of the global-batch loss: a mean term (a mean over
    the replica's sub-batch, equal in size to the others') divided by `num_replicas`, a term in
    `SUM_REDUCED_TERMS` (a sum over the sub-batch's elements) as it is.

    Args:
        terms: the loss terms of one replica (float32 scalars), `total` included.
        num_replicas: `num_replicas_in_sync` of the replica context (1 without a strategy).
        total: the name of the total loss; it is recomputed as the sum of the scaled terms.

    Returns:
        A new dict of the scaled terms (the input itself when `num_replicas` is 1).
    """
    if num_replicas == 1:
        return terms
    scaled = {
        name: value if name in SUM_REDUCED_TERMS else value * (1.0 / num_replicas)
        for name, value in terms.items()
        if name != total
    }
    scaled[total] = sum(scaled.values())
    return scaled


def _num_replicas_in_sync() -> int:
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    return 1 if context is None else int(context.num_replicas_in_sync)


def _multi_worker(strategy) -> bool:
    """Whether `strategy` is a MultiWorkerMirroredStrategy with more than one worker."""
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    return bool(strategy.extended._in_multi_worker_mode())


def _warn_of_batch_all_gathers(trainer: keras.Model) -> None:
    """Warns when a `keras.distribution` is active on JAX and a grouped convolution of the
    trainer runs the native grouped kernel: XLA's SPMD partitioner then all-gathers the whole
    batch of its activations on every device (openxla/xla#47945)."""
    if keras.distribution.distribution() is None:
        return
    from smis_layers.layers.group_conv2d import GroupConv2D
    from smis_layers.ops.grouped_conv import resolve_lowering

    native = [
        layer.name
        for layer in trainer._flatten_layers()
        if isinstance(layer, GroupConv2D)
        and layer.groups > 1
        and resolve_lowering(layer.lowering, layer.groups, dtype=layer.compute_dtype) == "native"
    ]
    if native:
        warnings.warn(
            f"SMISTrainer: {len(native)} grouped convolutions ({', '.join(native[:3])}, ...) run "
            "the native grouped kernel under a keras.distribution; XLA's SPMD partitioner "
            "all-gathers the whole batch of their activations on every device "
            '(openxla/xla#47945). Build the models with lowering="split" for data-parallel '
            "training (docs/training_distributed.md).",
            stacklevel=3,
        )


def _loss_scaled(optimizer):
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer)


def _scale(optimizer, loss):
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.scale_loss(loss)
    return loss
