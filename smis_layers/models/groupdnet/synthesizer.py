"""The task of a GroupDNet network: image synthesis from NumPy label maps and codes.

The network (`GroupDNet` and the baselines) only computes: `call`, `encode_segmap`, `decode`.
`Synthesizer` owns what a user calls: `generate`, `encode`, `sample_z`, the per-class code
editing, the checks of NumPy inputs, and one compiled inference function per backend
(`make_generate_function`), as keras-hub's tasks wrap a backbone. `GroupDNet.generate` and its
siblings delegate to the model's `synthesizer`.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from smis_layers.models.code_prior import CODE_PRIORS
from smis_layers.models.segmaps import check_label_values
from smis_layers.utils.deprecation import renamed_function, renamed_keywords
from smis_layers.utils.validation import (
    check_image_range,
    require_choice,
    require_finite,
    require_numeric_array,
    require_positive_int,
)

#: The network methods that `Synthesizer.inference_function` compiles.
INFERENCE_METHODS = ("decode", "encode_segmap")


class Synthesizer:
    """Image synthesis with a GroupDNet network (or a baseline): the NumPy user API.

    Args:
        model: a `GroupDNet` (or `GroupNet`, `GroupEnc`, `VSPADE`, `MulNet`) network; its
            `code_prior` (a `FittedCodePrior` or None) is what `sample_z`'s "auto" prior uses.

    Every model has one, `model.synthesizer`, whose methods `model.generate`, `model.encode`,
    `model.sample_z`, ... call.

    Examples:
        ```python
        task = Synthesizer(model)
        labels = np.random.randint(0, model.num_classes, (2, *model.image_size))
        images = task.generate(labels, seed=0)  # (2, H, W, 3) in [-1, 1]
        mu, logvar = task.encode(images, labels)
        ```
    """

    def __init__(self, model: keras.Model):
        self.model = model
        self.generate_function = None
        self._inference_functions: dict[str, Callable] = {}

    # ------------------------------------------------------------------ compiled functions
    def make_generate_function(self) -> Callable:
        """The compiled decoder `(z, decoder_segmap) -> images` (tensors in, a tensor out) in
        inference mode, made once and kept as `generate_function`.

        TensorFlow: a `tf.function` (traced once per input shape and dtype). JAX: a `jax.jit`
        of the network's stateless call, the variables passed as arguments (so weights loaded
        later are used). PyTorch: the eager call under `torch.no_grad()` (no autograd graph).
        Run eagerly, `generate` is dominated by per-op dispatch (3-12x slower at the shapes64
        size on TensorFlow, docs/benchmarks.md).
        """
        if self.generate_function is None:
            self.generate_function = self.inference_function("decode")
        return self.generate_function

    def inference_function(self, name: str) -> Callable:
        """The network's `decode` or `encode_segmap` in inference mode (`training=False`),
        compiled for the backend as `make_generate_function` describes, and called with the
        same positional arguments. `generate` and `encode` use it; so should any loop that
        decodes many batches.

        Args:
            name: "decode" or "encode_segmap".

        Examples:
            ```python
            decode = model.synthesizer.inference_function("decode")
            images = decode(z, model.segmap(labels))  # a tensor, no NumPy conversion
            ```
        """
        require_choice("name", name, INFERENCE_METHODS)
        if name not in self._inference_functions:
            self._inference_functions[name] = compile_inference(self.model, name)
        return self._inference_functions[name]

    # ------------------------------------------------------------------ user API
    @renamed_keywords(masks="labels")
    def generate(
        self, labels, z=None, seed: int | None = None, instances=None, instance_edges=None
    ) -> np.ndarray:
        """Images (B, H, W, 3) in [-1, 1], a NumPy array, for `labels` and codes `z`.

        Args:
            labels: label maps (B, H, W) / (B, H, W, 1), or their one-hot segmap (B, H, W, C).
                (`masks=` is its deprecated spelling.)
            z: codes (B, h, w, 8C); None draws them with `seed` (`sample_z`'s "auto" prior).
            seed: int seed for drawing `z`.
            instances: instance id maps (B, H, W[, 1]), for models with `use_instance_edges`.
            instance_edges: or their edge maps (B, H, W[, 1]) directly.
        """
        model = self.model
        labels = self.check_labels(labels)
        batch = labels.shape[0]
        z = self.sample_z(batch, seed) if z is None else self.check_z(z, batch)
        instances = self.check_instance_input("instances", instances, batch)
        instance_edges = self.check_instance_input("instance_edges", instance_edges, batch)
        condition = model.condition_segmap(model.segmap(labels), instances, instance_edges)
        images = self.make_generate_function()(z, condition)
        return np.asarray(ops.convert_to_numpy(images))

    @renamed_keywords(masks="labels")
    def encode(self, images, labels) -> tuple[np.ndarray, np.ndarray]:
        """(mu, logvar) of real images, as NumPy arrays (inference mode).

        Args:
            images: (B, H, W, 3) in [-1, 1] (uint8 images are converted).
            labels: label maps (B, H, W) / (B, H, W, 1), or their one-hot segmap (B, H, W, C).
                (`masks=` is its deprecated spelling.)
        """
        images = self.check_images(images)
        labels = self.check_labels(labels)
        if len(images) != len(labels):
            raise ValueError(
                f"`images` and `labels` must have the same batch size; received {len(images)} "
                f"images and {len(labels)} label maps"
            )
        segmap = self.model.segmap(labels)
        mu, logvar = self.inference_function("encode_segmap")(images, segmap)
        return ops.convert_to_numpy(mu), ops.convert_to_numpy(logvar)

    def sample_z(
        self,
        batch_size: int,
        seed: int | None = None,
        spatially_shared: bool = False,
        prior: str = "auto",
    ) -> np.ndarray:
        """Random codes: (batch_size, h, w, 8C) NumPy array.

        Args:
            batch_size: number of codes.
            seed: int seed (None: Keras's global seed state).
            spatially_shared: False (the official sampling): every position of the h x w latent
                grid draws its own code. True: one N(0, 1) code per class, repeated over the
                grid (a decoder trained only briefly renders independent positions as
                blotches; see docs/zoo.md). Only for the standard prior.
            prior: "standard" draws from N(0, 1), the VAE prior of the paper. The measured
                channels of `region_colour_code` and `region_texture_code` are region
                measurements, not in the paper: they take one training region's values per
                class from the model's `code_prior` when it holds them (`FittedCodePrior.
                with_measured_channels`), else one N(0, 1) value per class for the whole grid,
                the colours clipped to the image range [-1, 1]; "fitted" from
                the model's `code_prior` (a `FittedCodePrior` fitted to the encoder's codes of
                training images, which zoo presets ship); "auto" (default) uses the fitted
                prior when the model has one and `spatially_shared` is False, else N(0, 1).

        Examples:
            ```python
            z = model.sample_z(4, seed=0, prior="standard")  # (4, h, w, 8C)
            images = model.generate(labels, z=z)
            ```
        """
        batch_size = require_positive_int("batch_size", batch_size)
        require_choice("prior", prior, CODE_PRIORS)
        code_prior = getattr(self.model, "code_prior", None)
        if prior == "fitted" and code_prior is None:
            raise ValueError(
                "`prior` is 'fitted' but this model has no `code_prior` (fit one with "
                "FittedCodePrior.fit, or load a preset that ships code_prior.npz)"
            )
        if prior == "fitted" and spatially_shared:
            raise ValueError("`spatially_shared` applies to the standard prior only")
        fitted = prior == "fitted" or (prior == "auto" and not spatially_shared)
        if fitted and code_prior is not None:
            return code_prior.sample(batch_size, seed)
        h, w, channels = self.model.latent_shape
        shape = (batch_size, 1, 1, channels) if spatially_shared else (batch_size, h, w, channels)
        z = np.asarray(ops.convert_to_numpy(keras.random.normal(shape, seed=seed)), "float32")
        z = np.broadcast_to(z, (batch_size, h, w, channels)).copy()  # writable, C order
        measured = getattr(self.model, "measured_code_channels", 0)
        if measured and code_prior is not None and code_prior.measured is not None:
            return code_prior.with_measured_channels(z, seed)
        if measured:
            # Per-position colours decode to far worse images (docs/zoo.md, N(0, 1) codes); the
            # measured channels are one value per region in training.
            per_class = z.reshape(batch_size, h, w, self.model.num_classes, -1)
            per_class[..., :measured] = per_class[:, :1, :1, :, :measured]
            colour = self.model.region_colour_channels
            per_class[..., :colour] = np.clip(per_class[..., :colour], -1.0, 1.0)
        return z

    # ------------------------------------------------------------------ class codes
    def class_channels(self, class_index: int) -> tuple[int, int]:
        """(first, end) latent channels owned by class `class_index`."""
        num_classes = self.model.num_classes
        if not 0 <= class_index < num_classes:
            raise ValueError(f"`class_index` must be in [0, {num_classes}); received {class_index}")
        k = self.model.schedule.latent_channels
        return k * class_index, k * (class_index + 1)

    def class_code(self, z, class_index: int) -> np.ndarray:
        """Class `class_index`'s part of the codes: (..., latent_channels)."""
        lo, hi = self.class_channels(class_index)
        return np.asarray(z)[..., lo:hi]

    def with_class_code(self, z, class_index: int, code) -> np.ndarray:
        """A float32 copy of `z` in which class `class_index`'s code is replaced by `code`."""
        lo, hi = self.class_channels(class_index)
        z = np.array(z, dtype="float32", copy=True)
        z[..., lo:hi] = code
        return z

    # ------------------------------------------------------------------ input checks
    def check_labels(self, labels, name: str = "labels") -> np.ndarray:
        """`labels` (label maps, or their one-hot segmap) as a NumPy array after checking its
        format, dtype, size and values."""
        labels = require_numeric_array(name, labels)
        c, image_size = self.model.num_classes, self.model.image_size
        if labels.ndim < 3 or labels.ndim > 4 or tuple(labels.shape[1:3]) != image_size:
            raise ValueError(
                f"`{name}` must be (batch, {image_size[0]}, {image_size[1]}[, C or 1]) "
                f"for this model; received shape {labels.shape}"
            )
        if labels.ndim == 4 and labels.shape[-1] not in (1, c):
            raise ValueError(
                f"`{name}` must have 1 (label map) or {c} (one-hot) channels; "
                f"received shape {labels.shape}"
            )
        if labels.shape[0] == 0:
            raise ValueError(
                f"`{name}` must hold at least one label map; received shape {labels.shape}"
            )
        require_finite(name, labels)
        if labels.ndim == 4 and labels.shape[-1] == c and c > 1:
            low, high = float(labels.min()), float(labels.max())
            if low < 0 or high > 1:
                raise ValueError(
                    f"`{name}` is a one-hot (or soft) segmap of {c} channels and must hold values "
                    f"in [0, 1]; received values in [{low:.4g}, {high:.4g}]. Pass label maps as "
                    "(batch, height, width) integer arrays."
                )
            return labels
        check_label_values(name, labels, c)
        return labels

    check_masks = renamed_function(check_labels, "Synthesizer.check_masks")

    def check_images(self, images, name: str = "images") -> np.ndarray:
        """`images` as float32 (B, H, W, 3) in [-1, 1] (uint8 converted, [0, 255] refused)."""
        images = require_numeric_array(name, images)
        expected = (*self.model.image_size, 3)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"`{name}` must be (batch, {expected[0]}, {expected[1]}, 3); received shape "
                f"{images.shape}"
            )
        return check_image_range(name, images)

    def check_z(self, z, batch: int, name: str = "z") -> np.ndarray:
        """`z` as float32 of shape (batch, *latent_shape), finite."""
        model = self.model
        z = require_numeric_array(name, z).astype("float32")
        if z.shape != (batch, *model.latent_shape):
            raise ValueError(
                f"`{name}` must have shape {(batch, *model.latent_shape)} (batch, latent height, "
                f"latent width, {model.schedule.latent_channels} channels x {model.num_classes} "
                f"classes); received {z.shape}"
            )
        require_finite(name, z)
        return z

    def check_instance_input(self, name: str, value, batch: int) -> np.ndarray | None:
        """An instance id or edge map (batch, H, W[, 1]), finite; None passes through."""
        if value is None:
            return None
        value = require_numeric_array(name, value)
        shape = tuple(value.shape)
        expected = (batch, *self.model.image_size)
        if shape not in (expected, (*expected, 1)):
            raise ValueError(
                f"`{name}` must be {expected} or {(*expected, 1)}, one map per label map; "
                f"received shape {shape}"
            )
        require_finite(name, value)
        return value


def compile_inference(model: keras.Model, name: str) -> Callable:
    """`getattr(model, name)(*args, training=False)` compiled for the Keras backend.

    Args:
        model: the network.
        name: the method, "decode" or "encode_segmap".
    """
    method = getattr(model, name)

    def inference(*args):
        return method(*args, training=False)

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(inference, autograph=False)
    if backend == "jax":
        return _jax_jit(model, inference)
    if backend == "torch":
        import torch

        def no_grad(*args):
            with torch.no_grad():
                return inference(*args)

        return no_grad
    return inference


def _jax_jit(model: keras.Model, inference: Callable) -> Callable:
    """`jax.jit` of `inference` with the model's variables as arguments (keras-hub's way): the
    variables' current values are read at every call, so loading weights later is seen."""
    import jax

    @jax.jit
    def stateless(state, *args):
        trainable, non_trainable = state
        mapping = [
            *zip(model.trainable_variables, trainable, strict=True),
            *zip(model.non_trainable_variables, non_trainable, strict=True),
        ]
        with keras.StatelessScope(state_mapping=mapping):
            return inference(*args)

    def call(*args):
        state = (
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
        )
        return stateless(state, *args)

    call.jitted = stateless  # the jax.jit function (its `lower` shows the compiled program)
    return call
