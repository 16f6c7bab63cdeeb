"""Multi-GPU training with MirroredStrategy.

Creates the generator, the discriminator, the trainer and its optimizers under
`tf.distribute.MirroredStrategy().scope()` and calls `fit` with global batches: Keras splits
every global batch between the replicas, and `SMISTrainer` scales each replica's share of the
loss so that a replicated step is the single-device step on the global batch (see
docs/training_distributed.md). The generator uses synchronized batch norm (`norm="sync_batch"`,
the official choice). With --smoke the CPU is split into two logical devices, so the same code
runs two replicas without a GPU. For several machines, use `MultiWorkerMirroredStrategy` and
`TF_CONFIG` (docs/training_distributed.md).

    python examples/09_multi_gpu_training.py [--model groupdnet_shapes64] [--steps 500]
        [--batch-per-replica 8] [--out DIR]
    python examples/09_multi_gpu_training.py --smoke

Takes as long as the steps you ask for; --smoke (2 CPU replicas, a tiny network, 1 step) under
a minute on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quiet TensorFlow; set before importing it

import numpy as np
import tensorflow as tf


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="groupdnet_shapes64", help="architecture name")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch-per-replica", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("runs/examples/09"))
    parser.add_argument("--smoke", action="store_true", help="tiny and fast (used by the tests)")
    args = parser.parse_args(argv)

    if args.smoke:
        # Two logical CPU devices; this must happen before TensorFlow uses any device.
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        strategy = tf.distribute.MirroredStrategy()  # every visible GPU (or the CPU)
    replicas = strategy.num_replicas_in_sync
    print(f"{replicas} replica(s): {[d for d in strategy.extended.worker_devices]}")

    from smis_layers import GroupDecreasingSchedule
    from smis_layers.data import SyntheticShapes, synthetic_tf_dataset
    from smis_layers.models import GroupDNet, MultiScaleDiscriminator, build_architecture
    from smis_layers.training import SMISTrainer

    with strategy.scope():  # variables and optimizers are mirrored on every replica
        if args.smoke:
            schedule = GroupDecreasingSchedule.decreasing(8, 4, 64, norm_hidden_channels=16)
            generator = GroupDNet(
                num_classes=8,
                image_size=64,
                schedule=schedule,
                encoder_channels=8,
                norm="sync_batch",
            )
            discriminator = MultiScaleDiscriminator(num_layers=2, base_filters=8)
        else:
            generator = build_architecture(args.model, norm="sync_batch")
            discriminator = MultiScaleDiscriminator(base_filters=32)
        with warnings.catch_warnings():  # training without VGG19 weights warns: expected
            warnings.simplefilter("ignore")
            trainer = SMISTrainer(generator, discriminator)
        # --smoke runs eagerly: tracing would take longer than the step itself (and
        # TensorFlow's notice that eager MirroredStrategy is slow is silenced).
        trainer.compile(run_eagerly=args.smoke)
        if args.smoke:
            tf.get_logger().setLevel("ERROR")

    steps, per_replica = (1, 2) if args.smoke else (args.steps, args.batch_per_replica)
    global_batch = per_replica * replicas  # fit takes global batches; every batch is full
    height = generator.image_size[0]
    data = synthetic_tf_dataset(SyntheticShapes(image_size=height, seed=0), global_batch)
    verbose = 0 if args.smoke else 1  # a progress bar
    history = trainer.fit(data, steps_per_epoch=steps, shuffle=False, verbose=verbose)
    losses = {k: round(float(v[-1]), 4) for k, v in history.history.items()}
    print(f"global batch {global_batch}, losses after {steps} steps: {losses}")
    assert all(np.isfinite(v) for v in losses.values())
    preset = generator.save_to_preset(args.out / "preset", overwrite=True)
    print(f"wrote the preset {preset}")


if __name__ == "__main__":
    main()
