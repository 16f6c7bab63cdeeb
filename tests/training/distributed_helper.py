"""Subprocess body of tests/training/test_distribution.py (never collected by pytest).

TensorFlow's logical devices and a `MultiWorkerMirroredStrategy`'s cluster must be configured
before TensorFlow initializes its runtime, so each check runs in a fresh interpreter:

    python tests/training/distributed_helper.py mirrored OUT.json
    TF_CONFIG=... python tests/training/distributed_helper.py worker OUT.npz STEPS

`mirrored` splits the CPU into 2 logical devices, runs one training step of two identical tiny
trainers, one under `MirroredStrategy` over the 2 devices and one without a strategy, on the
same global batch, and writes the losses and weights' differences as JSON. `worker` is one
worker of a `MultiWorkerMirroredStrategy` cluster (from TF_CONFIG): it trains the tiny trainer
for STEPS steps on synthetic data and writes its losses and final weights.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import tensorflow as tf

C, SIZE, GLOBAL_BATCH = 8, 64, 4
# The noise of z is part of the equality check: every replica draws the noise of the global
# batch from the same seed state and keeps its own rows (GroupDNet._sample_training_z).
LEARNING_RATE = 1.0


def tiny_trainer(norm: str = "sync_batch", seed: int = 0):
    """The tiny trainer of tests/training/test_trainer.py, with the given CGNorm `norm`."""
    import keras

    from smis_layers import GroupDecreasingSchedule
    from smis_layers.models import GroupDNet, MultiScaleDiscriminator
    from smis_layers.training import SMISTrainer

    keras.utils.set_random_seed(seed)
    generator = GroupDNet(
        num_classes=C,
        image_size=SIZE,
        schedule=GroupDecreasingSchedule.decreasing(C, 4, SIZE, norm_hidden_channels=16),
        encoder_channels=8,
        norm=norm,
        seed=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SMISTrainer(generator, MultiScaleDiscriminator(num_layers=2, base_filters=8))


def _weights(model) -> list[np.ndarray]:
    return [np.array(v.numpy()) for v in model.weights]


def _replica_copies_equal(trainer, strategy) -> bool:
    """Whether every replica holds bitwise the same value of every variable."""
    for model in (trainer.generator, trainer.discriminator):
        for variable in model.weights:
            copies = [c.numpy() for c in strategy.experimental_local_results(variable.value)]
            if any(not np.array_equal(copies[0], c) for c in copies[1:]):
                return False
    return True


def _differences(a: list[np.ndarray], b: list[np.ndarray], floor: float = 1e-3) -> dict:
    """How far the arrays `a` are from the reference arrays `b`.

    "global": max |a - b| / max |b| over all the arrays together. "per_array": the worst
    max |a - b| / max |b| of one array, whose scale is floored at `floor` times the global one:
    the biases of convolutions followed by batch norm get a gradient that is zero in exact
    arithmetic (the norm removes them), pure round-off, and without a floor their relative
    difference is meaningless.
    """
    scale = max(float(np.max(np.abs(y))) for y in b) or 1.0
    errors = [float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True)]
    per_array = max(
        err / max(float(np.max(np.abs(y))), floor * scale) for err, y in zip(errors, b, strict=True)
    )
    return {"global": max(errors) / scale, "per_array": per_array, "max_abs": max(errors)}


def mirrored(out_path: str) -> None:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    from smis_layers.data import SyntheticShapes

    start = time.perf_counter()
    batch = SyntheticShapes(SIZE, num_classes=C, seed=0).batch(np.arange(GLOBAL_BATCH))
    batch = {"images": batch["images"], "masks": batch["masks"].astype("int32")}

    def dataset():
        return tf.data.Dataset.from_tensors(batch)

    def compile_sgd(trainer):
        # SGD: the update is lr * gradient, so a wrong gradient scale shows in the weights
        # (Adam's first step, lr * g / |g|, would hide a factor of 2).
        trainer.compile(
            g_optimizer=keras.optimizers.SGD(LEARNING_RATE),
            d_optimizer=keras.optimizers.SGD(LEARNING_RATE),
        )

    single = tiny_trainer()
    compile_sgd(single)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        distributed = tiny_trainer()
        distributed.generator.set_weights(single.generator.get_weights())
        distributed.discriminator.set_weights(single.discriminator.get_weights())
        distributed.generator.seed_generator.state.assign(single.generator.seed_generator.state)
        compile_sgd(distributed)

    before = {
        "generator": _weights(single.generator),
        "discriminator": _weights(single.discriminator),
    }
    copied = all(
        np.array_equal(a, b)
        for name in ("generator", "discriminator")
        for a, b in zip(before[name], _weights(getattr(distributed, name)), strict=True)
    )
    logs_single = single.fit(dataset(), epochs=1, verbose=0).history
    logs_distributed = distributed.fit(dataset(), epochs=1, verbose=0).history

    result = {
        "num_replicas": strategy.num_replicas_in_sync,
        "weights_copied_exactly": copied,
        "replica_copies_equal": _replica_copies_equal(distributed, strategy),
        "losses_single": {k: float(v[-1]) for k, v in logs_single.items()},
        "losses_distributed": {k: float(v[-1]) for k, v in logs_distributed.items()},
        "seconds": time.perf_counter() - start,
    }
    for name in ("generator", "discriminator"):
        after_single = _weights(getattr(single, name))
        after_distributed = _weights(getattr(distributed, name))
        update_single = [a - b for a, b in zip(after_single, before[name], strict=True)]
        update_distributed = [a - b for a, b in zip(after_distributed, before[name], strict=True)]
        result[f"{name}_weights"] = _differences(after_distributed, after_single)
        result[f"{name}_updates"] = _differences(update_distributed, update_single)
        result[f"{name}_changed_fraction"] = float(np.mean([np.any(u != 0) for u in update_single]))
    with open(out_path, "w") as f:
        json.dump(result, f, indent=2)


def worker(out_path: str, steps: int) -> None:
    start = time.perf_counter()
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=120)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    from smis_layers.data import SyntheticShapes, synthetic_tf_dataset

    with strategy.scope():
        trainer = tiny_trainer()
        trainer.compile()
    # Every worker builds the same infinite stream; Keras distributes it (auto-sharding by
    # data: each worker takes its own sub-batches of every global batch).
    data = synthetic_tf_dataset(SyntheticShapes(SIZE, num_classes=C, seed=0), GLOBAL_BATCH)
    initial = _weights(trainer.generator) + _weights(trainer.discriminator)
    history = trainer.fit(data, epochs=1, steps_per_epoch=steps, verbose=0).history
    final = _weights(trainer.generator) + _weights(trainer.discriminator)
    changed = float(
        np.mean([not np.array_equal(a, b) for a, b in zip(initial, final, strict=True)])
    )
    arrays = {
        f"{name}_{i}": np.array(v.numpy())
        for name in ("generator", "discriminator")
        for i, v in enumerate(getattr(trainer, name).weights)
    }
    losses = {k: float(v[-1]) for k, v in history.items()}
    np.savez(
        out_path,
        losses=json.dumps(losses),
        num_replicas=strategy.num_replicas_in_sync,
        changed_fraction=changed,
        seconds=time.perf_counter() - start,
        **arrays,
    )


def main(argv: list[str]) -> None:
    if argv[1] == "mirrored":
        mirrored(argv[2])
    elif argv[1] == "worker":
        try:
            worker(argv[2], int(argv[3]))
        except BaseException:
            # A failed worker would otherwise wait at exit for the cluster's shutdown barrier
            # (and TensorFlow's preemption handler swallows SIGTERM): leave at once.
            traceback.print_exc()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
    else:
        raise SystemExit(f"unknown mode {argv[1]!r}")


if __name__ == "__main__":
    main(sys.argv)
