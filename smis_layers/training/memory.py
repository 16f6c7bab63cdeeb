"""The memory a training step needs, estimated before a run starts, and the memory the process
can use: a run that will not fit gets a warning rather than being killed part-way through.

Examples:
    >>> warning = memory_warning(estimate_training_memory(trainer, batch_size=16))
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np


class MemoryEstimate(NamedTuple):
    """Bytes a training step needs, by part (`estimate_training_memory`)."""

    parameters: int
    gradients: int
    optimizer: int
    activations: int
    batch_size: int

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer + self.activations

    def describe(self) -> str:
        def gib(n):
            return f"{n / 2**30:.2f} GiB"

        return (
            f"about {gib(self.total)} (parameters {gib(self.parameters)}, gradients "
            f"{gib(self.gradients)}, Adam slots {gib(self.optimizer)}, activations at batch "
            f"{self.batch_size} {gib(self.activations)})"
        )


#: Activation memory of a training step per byte of forward outputs: the outputs kept for the
#: backward pass, their gradients and the temporaries of the backward kernels. Calibrated on
#: the shapes64 models against the measured peak RSS (tests/test_reliability.py).
ACTIVATION_FACTOR = 3.0


def _forward_output_bytes(trainer) -> int:
    """Bytes of every layer output (nested layers included) of one sample's generator (encoder
    and decoder) and discriminator forward passes, read from a TensorFlow trace: shapes only,
    nothing is executed, so no state (batch-norm statistics, seeds) changes."""
    import tensorflow as tf

    generator, discriminator = trainer.generator, trainer.discriminator
    height, width = generator.image_size
    total = 0
    original = keras.layers.Layer.__call__

    def recording_call(layer, *args, **kwargs):
        nonlocal total
        outputs = original(layer, *args, **kwargs)
        for tensor in keras.tree.flatten(outputs):
            shape = getattr(tensor, "shape", None)
            if shape is not None and None not in tuple(shape):
                itemsize = np.dtype(keras.backend.standardize_dtype(tensor.dtype)).itemsize
                total += int(np.prod(tuple(shape))) * itemsize
        return outputs

    def forward(images, segmap, z, condition, pair):
        generator.encode_segmap(images, segmap, training=False)
        generator.decode(z, condition, training=False)
        discriminator(pair, training=False)
        return tf.constant(0.0)

    def spec(*shape):
        return tf.TensorSpec((1, *shape), generator.compute_dtype)

    specs = (
        spec(height, width, 3),
        spec(height, width, generator.num_classes),
        spec(*generator.latent_shape),
        spec(height, width, generator.condition_channels),
        spec(height, width, generator.condition_channels + 3),
    )
    keras.layers.Layer.__call__ = recording_call
    try:
        tf.function(forward, autograph=False).get_concrete_function(*specs)
    finally:
        keras.layers.Layer.__call__ = original
    return total


def estimate_training_memory(trainer, batch_size: int) -> MemoryEstimate:
    """An order-of-magnitude estimate of the memory one training step of `trainer` needs.

    Parameters (generator and discriminator), as many bytes of gradients, Adam's two slots per
    trainable parameter, and activations: the bytes of every layer output of one sample's
    forward pass (generator encoder and decoder, discriminator, nested layers included; read
    from a trace, nothing is computed) times the batch size and `ACTIVATION_FACTOR` (outputs
    kept for the backward pass, their gradients, the second discriminator pass). The process's
    own footprint (the framework, the data pipeline) comes on top.
    """
    batch_size = int(batch_size)

    def nbytes(variables):
        return sum(
            int(np.prod(v.shape)) * np.dtype(keras.backend.standardize_dtype(v.dtype)).itemsize
            for v in variables
        )

    models = (trainer.generator, trainer.discriminator)
    weights = sum(nbytes(m.weights) for m in models)
    trainable = sum(nbytes(m.trainable_variables) for m in models)
    try:
        per_sample = _forward_output_bytes(trainer)
    except Exception:  # an architecture the symbolic probe cannot run: count nothing
        per_sample = 0
    weights_of = getattr(trainer, "loss_weights", {})
    # Upper bounds: the prior GAN term adds a decoder and a discriminator pass, the latent
    # regression a decoder and an encoder pass; each at most one more forward pass.
    per_sample *= 1 + sum(weights_of.get(term, 0) > 0 for term in ("prior_gan", "latent"))
    activations = int(per_sample * batch_size * ACTIVATION_FACTOR)
    return MemoryEstimate(weights, trainable, 2 * trainable, activations, batch_size)


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_memory_bytes() -> int | None:
    """Memory this process can still use: the smaller of the host's available memory
    (`MemAvailable` of /proc/meminfo, else sysconf) and the cgroup's limit minus its usage.
    None when unknown. `SMIS_MEMORY_LIMIT_BYTES` overrides it (tests, schedulers)."""
    override = os.environ.get("SMIS_MEMORY_LIMIT_BYTES")
    if override:
        return int(override)
    candidates = []
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    candidates.append(int(line.split()[1]) * 1024)
                    break
    except OSError:
        pass
    if not candidates:
        with contextlib.suppress(ValueError, OSError, AttributeError):
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 2**60:
            candidates.append(max(0, limit - usage))
            break
    return min(candidates) if candidates else None


def memory_warning(estimate: MemoryEstimate, available: int | None = None) -> str | None:
    """A warning when `estimate` exceeds the available memory (None when it fits, or when the
    step runs on a GPU, whose memory this does not read)."""
    available = available_memory_bytes() if available is None else available
    if available is None or estimate.total <= available:
        return None
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.config.list_logical_devices("GPU"):
            return None
    return (
        f"a training step of this configuration needs {estimate.describe()}, but only "
        f"{available / 2**30:.2f} GiB of memory are available: the run will probably be killed "
        "for lack of memory. Reduce --batch-size (activations scale with it) or free memory."
    )
