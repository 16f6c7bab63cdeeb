"""Can an encoder architecture carry a striped region's orientation and frequency into its class
code when it is trained to? The encoder of a fresh `--model` (with `--set` changes) and one
linear head per class are trained together, supervised, to predict each striped region's
(cos 2a, sin 2a) and standardized frequency from the class's code (Adam 1e-3, batch 32, regions
of at least 64 pixels); then `quality_gap_probe.code_probe` scores the trained encoder's codes
as it scores a preset's. A preset's encoder, trained by the GAN objective, can then be compared
with what its architecture can do.

    python scripts/encoder_texture_probe.py --steps 2000
    python scripts/encoder_texture_probe.py --steps 2000 --set encoder_channels=64
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quality_gap_probe import MIN_PIXELS, code_probe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", default="groupdnet:classes=8,size=64,width=12,encoder=16,colour=1"
    )
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--probe-images", type=int, default=1536, help="held-out scenes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="model config")
    args = parser.parse_args()
    import keras
    import tensorflow as tf

    from smis_layers.data.synthetic import (
        HELD_OUT_SEED,
        TEXTURES,
        SyntheticShapes,
        synthetic_tf_dataset,
    )
    from smis_layers.models import build_architecture

    stripes = TEXTURES.index("stripes")
    overrides = {k: int(v) if v.isdigit() else v for k, v in (s.split("=", 1) for s in args.set)}
    keras.utils.set_random_seed(args.seed)
    model = build_architecture(args.model, seed=args.seed, **overrides)
    classes, latent = model.num_classes, model.schedule.latent_channels
    training = SyntheticShapes(64, classes, seed=args.seed)
    data = iter(synthetic_tf_dataset(training, 32, factors=True))
    held_out = SyntheticShapes(64, classes, seed=HELD_OUT_SEED)
    sample = held_out.batch(np.arange(2))
    grid = int(np.prod(model.encode(sample["images"], sample["masks"])[0].shape[1:3]))
    # One linear head per class: (class, code numbers, 3 targets).
    head = keras.Variable(keras.initializers.GlorotUniform(args.seed)((classes, grid * latent, 3)))
    head_bias = keras.Variable(np.zeros((classes, 3), "float32"))
    optimizer = keras.optimizers.Adam(1e-3)

    @tf.function
    def step(batch):
        segmap = tf.one_hot(batch["masks"], classes)
        area = tf.reduce_sum(segmap, axis=(1, 2))  # (B, C)
        angle, frequency = batch["params"][..., 1], batch["params"][..., 0]
        target = tf.stack([tf.cos(2 * angle), tf.sin(2 * angle), (frequency - 7) / 1.7], -1)
        weight = tf.cast((batch["texture"] == stripes) & (area >= MIN_PIXELS), "float32")
        with tf.GradientTape() as tape:
            mu, _ = model.encode_segmap(batch["images"], segmap, training=True)
            codes = tf.transpose(tf.reshape(mu, (-1, grid, classes, latent)), (0, 2, 1, 3))
            codes = tf.reshape(codes, (-1, classes, grid * latent))
            predicted = tf.einsum("bck,ckt->bct", codes, head) + head_bias
            total = tf.reduce_sum(weight[..., None] * (predicted - target) ** 2)
            loss = total / tf.maximum(tf.reduce_sum(weight), 1.0)
        variables = [*model.encoder.trainable_variables, head, head_bias]
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(
            [(g, v) for g, v in zip(gradients, variables, strict=True) if g is not None]
        )
        return loss

    start = time.time()
    for i in range(1, args.steps + 1):
        loss = step(next(data))
        if i % 500 == 0:
            print(f"step {i}: loss {float(loss):.3f} ({time.time() - start:.0f} s)", flush=True)
    result = code_probe(model, held_out, args.probe_images)
    print(
        json.dumps(
            {
                "model": args.model,
                "set": args.set,
                "steps": args.steps,
                "encoder_params": model.encoder.count_params(),
                **{k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()},
                "seconds": round(time.time() - start),
            }
        )
    )


if __name__ == "__main__":
    main()
