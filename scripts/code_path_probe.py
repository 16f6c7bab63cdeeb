"""Which part of GroupDNet keeps a class's colour from reaching its region: the encoder's codes,
or the decoder? Trains the architecture as a plain autoencoder (pixel L1 x 10 + KL x 2e-5, Adam
5e-4, bfloat16, no discriminator) with one experimental change, then reports the held-out pixel
L1 and, per class, the mean-colour error of reconstructions (|mean colour of the class's region,
reconstructed - real|, averaged over RGB and over the held-out scenes where the class covers at
least 64 pixels; images in [-1, 1]).

The changes (combine them with "_", e.g. `gate_nonoise`); none is a library option:
- `base`: the architecture as it is;
- `nonoise`: z = mu in training (no reparameterization noise);
- `pool`: each class's code averaged over the latent grid (one code per class);
- `gate`: before the first block that merges class groups, class c's features are multiplied
  by its segmap channel (area-averaged to the feature size), so merged groups see at each pixel
  only the class that is there;
- `oracle`: the encoder is replaced by each class's true mean colour (3 of its 8 code channels,
  the same over the grid, no noise): what the decoder does with a code that carries the colour.
`--set KEY=VALUE` changes the model's config (`region_colour_code=1` is the library's option
that keeps the encoder's code and puts the region's mean colour into 3 of its channels).

    python scripts/code_path_probe.py oracle --steps 600
    python scripts/code_path_probe.py base --set encoder_channels=64
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

NO_NOISE_LOGVAR = -20.0


def oracle_code(model, mu, colours):
    """(mu, logvar) in which every class's code is its mean colour in its first 3 channels and
    0 in the others, over the whole grid, with no noise."""
    from keras import ops

    c, latent = model.num_classes, model.schedule.latent_channels
    shape = ops.shape(mu)
    per_class = (shape[0], shape[1], shape[2], c, latent)
    colour = ops.broadcast_to(ops.cast(colours, mu.dtype)[:, None, None], (*per_class[:4], 3))
    rest = ops.zeros((*per_class[:4], latent - 3), mu.dtype)
    code = ops.reshape(ops.concatenate([colour, rest], -1), shape)
    return code, ops.full_like(code, NO_NOISE_LOGVAR)


def apply_variant(model_class, variant: str) -> None:
    """Patch `model_class` (every instance, presets loaded later included) with `variant`."""
    from keras import ops

    parts = set(variant.split("_"))
    unknown = parts - {"base", "nonoise", "pool", "gate", "oracle"}
    if unknown:
        raise SystemExit(f"unknown change(s) {sorted(unknown)} in variant {variant!r}")
    encode = model_class.encode_segmap

    def encode_segmap(self, images, segmap, training=None):
        mu, logvar = encode(self, images, segmap, training=training)
        if "pool" in parts:
            mu, logvar = (
                ops.broadcast_to(ops.mean(t, axis=(1, 2), keepdims=True), ops.shape(t))
                for t in (mu, logvar)
            )
        if "oracle" in parts:
            from smis_layers.models.groupdnet.groupdnet import region_mean_colours

            mu, logvar = oracle_code(self, mu, region_mean_colours(images, segmap))
        return mu, logvar

    model_class.encode_segmap = encode_segmap
    if "nonoise" in parts:
        model_class._sample_training_z = lambda self, mu, logvar: mu
    if "gate" in parts:
        model_class.decoder_features = gated_decoder_features


def gated_decoder_features(self, z, condition, training=None):
    from keras import ops

    c = self.num_classes
    x = self.fc(z)
    groups = self.schedule.input_groups
    for spec, block in zip(self.schedule.blocks, self.blocks, strict=True):
        if spec.upsample:
            x = self.upsample(x)
        if groups == c and spec.groups < groups:
            segmap = ops.cast(condition[..., :c], x.dtype)
            factor = condition.shape[1] // x.shape[1]
            if factor > 1:
                segmap = ops.average_pool(segmap, factor, factor)
            x = x * ops.repeat(segmap, x.shape[-1] // c, axis=-1)
        x = block(x, condition, training=training)
        groups = spec.groups
    return x


def train_autoencoder(args) -> dict:
    import keras
    import tensorflow as tf

    from smis_layers.data.synthetic import HELD_OUT_SEED, SyntheticShapes, synthetic_tf_dataset
    from smis_layers.models import build_architecture
    from smis_layers.training import losses

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from class_code_usage import reconstruction_colour_error

    overrides = {k: int(v) if v.isdigit() else v for k, v in (s.split("=", 1) for s in args.set)}
    keras.config.set_dtype_policy("mixed_bfloat16")
    keras.utils.set_random_seed(args.seed)
    model = build_architecture(args.model, seed=args.seed, **overrides)
    apply_variant(type(model), args.variant)
    optimizer = keras.optimizers.Adam(5e-4, beta_1=0.5, beta_2=0.999)
    data = iter(synthetic_tf_dataset(SyntheticShapes(64, seed=args.seed), 16))

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            out = model(batch, training=True)
            l1 = tf.reduce_mean(tf.abs(tf.cast(out["images"], "float32") - batch["images"]))
            mu, logvar = (tf.cast(out[k], "float32") for k in ("mu", "logvar"))
            loss = 10.0 * l1 + 2e-5 * losses.kl_divergence_loss(mu, logvar)
        variables = model.trainable_variables
        pairs = zip(tape.gradient(loss, variables), variables, strict=True)
        optimizer.apply_gradients([(g, v) for g, v in pairs if g is not None])
        return l1

    start = time.time()
    for i in range(1, args.steps + 1):
        l1 = step(next(data))
        if i % 200 == 0:
            print(f"step {i}: batch L1 {float(l1):.3f} ({time.time() - start:.0f} s)", flush=True)
    batch = SyntheticShapes(64, seed=HELD_OUT_SEED).batch(np.arange(64))
    mu, _ = model.encode(batch["images"], batch["masks"])
    l1 = float(np.abs(np.asarray(model.generate(batch["masks"], z=mu)) - batch["images"]).mean())
    errors = reconstruction_colour_error(model, batch)
    return {
        "variant": args.variant,
        "model": args.model,
        "set": args.set,
        "seed": args.seed,
        "steps": args.steps,
        "held_out_l1": round(l1, 4),
        "class_colour_error": [round(e, 3) for e in errors],
        "seconds": round(time.time() - start),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variant", help="changes joined by _, e.g. gate_nonoise")
    parser.add_argument("--model", default="groupdnet_shapes64")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="model config")
    print(json.dumps(train_autoencoder(parser.parse_args())))


if __name__ == "__main__":
    main()
