"""How well do codes reconstruct the synthetic benchmark? Held-out pixel L1 of reconstructions
(decoded from the encoder's means) for presets and run folders, against two baselines that
know the mask: every class's pixels replaced by that class's mean (or median) colour in the
real image. With `--autoencoder STEPS`, first trains an architecture's encoder and decoder as
a plain autoencoder (pixel L1 x 10 + a small KL, no discriminator) and reports it too, with a
sample sheet: what the architecture reproduces when no GAN loss competes. Also reported: the
mean colour of the reconstructions (a GAN's colour collapse shows as a channel drifting from the
real images' mean) and the background's colour spread in random samples (the official sampling,
4 per mask; real images' spread includes their textures).

    python scripts/reconstruction_probe.py --presets groupdnet_shapes64 --runs runs/zoo2/g
    python scripts/reconstruction_probe.py --autoencoder 1500 --out runs/ae
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def held_out(count: int) -> dict[str, np.ndarray]:
    from smis_layers.data.synthetic import HELD_OUT_SEED, SyntheticShapes

    return SyntheticShapes(64, seed=HELD_OUT_SEED).batch(np.arange(count))


def class_colour_l1(batch: dict, reduce) -> float:
    """L1 of the image whose every class region is filled with `reduce` of its real colours."""
    images, masks = batch["images"], batch["masks"]
    filled = np.empty_like(images)
    for i, mask in enumerate(masks):
        for c in np.unique(mask):
            region = mask == c
            filled[i][region] = reduce(images[i][region], axis=0)
    return float(np.abs(filled - images).mean())


def mean_rgb(images: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:+.2f}" for v in np.asarray(images).mean(axis=(0, 1, 2))) + ")"


def background_spread(images: np.ndarray, masks: np.ndarray) -> float:
    """Mean over images of the per-channel std of the background's (class 0) pixels."""
    pairs = zip(images, masks, strict=True)
    return float(np.mean([image[mask == 0].std(axis=0).mean() for image, mask in pairs]))


def reconstruction(generator, batch: dict) -> str:
    """Held-out L1 of the reconstructions, the nats the codes carry per image, the mean colour
    of the reconstructions and the background spread of random samples."""
    from smis_layers.metrics import code_information

    mu, _ = generator.encode(batch["images"], batch["masks"])
    rebuilt = np.asarray(generator.generate(batch["masks"], z=mu))
    l1 = float(np.abs(rebuilt - batch["images"]).mean())
    nats = code_information(generator, batch["images"], batch["masks"])["nats_per_image"]
    masks = np.repeat(batch["masks"][:16], 4, axis=0)
    samples = np.asarray(generator.generate(masks, seed=0))
    return (
        f"L1 {l1:.3f}, codes {nats:.1f} nats/image, mean RGB {mean_rgb(rebuilt)}, "
        f"random-sample background spread {background_spread(samples, masks):.3f}"
    )


def train_autoencoder(model: str, steps: int, lr: float, kl_weight: float, batch_size: int):
    """Encoder + decoder of `model` trained on pixel L1 x 10 + kl_weight x KL (TensorFlow)."""
    import keras
    import tensorflow as tf

    from smis_layers.data.synthetic import SyntheticShapes, synthetic_tf_dataset
    from smis_layers.models import build_architecture
    from smis_layers.training import losses

    keras.utils.set_random_seed(0)
    generator = build_architecture(model, seed=0)
    optimizer = keras.optimizers.Adam(lr, beta_1=0.5, beta_2=0.999)
    data = iter(synthetic_tf_dataset(SyntheticShapes(64, seed=0), batch_size))

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            out = generator(batch, training=True)
            l1 = tf.reduce_mean(tf.abs(tf.cast(out["images"], "float32") - batch["images"]))
            kl = losses.kl_divergence_loss(
                tf.cast(out["mu"], "float32"), tf.cast(out["logvar"], "float32")
            )
            loss = 10.0 * l1 + kl_weight * kl
        variables = generator.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return l1

    start = time.time()
    for i in range(1, steps + 1):
        l1 = step(next(data))
        if i % 100 == 0:
            print(f"autoencoder step {i}: batch L1 {float(l1):.3f} ({time.time() - start:.0f} s)")
    return generator


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="*", default=[])
    parser.add_argument("--runs", nargs="*", default=[], type=Path, help="smis train folders")
    parser.add_argument("--autoencoder", type=int, default=0, metavar="STEPS")
    parser.add_argument("--model", default="groupdnet_shapes64")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--kl-weight", type=float, default=2e-5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dtype-policy", default="float32", help="of the autoencoder's training")
    parser.add_argument("--out", type=Path, default=Path("runs/autoencoder_probe"))
    parser.add_argument("--images", type=int, default=64, help="held-out scenes")
    args = parser.parse_args(argv)

    from smis_layers.data.synthetic import HELD_OUT_SEED
    from smis_layers.models import from_preset
    from smis_layers.training.run import load_run_models

    batch = held_out(args.images)
    print(f"held-out reconstructions of {args.images} scenes (seed {HELD_OUT_SEED}):")
    print(f"  class mean colours: L1 {class_colour_l1(batch, np.mean):.3f}")
    print(f"  class median colours: L1 {class_colour_l1(batch, np.median):.3f}")
    spread = background_spread(batch["images"][:16], batch["masks"][:16])
    print(f"  real images: mean RGB {mean_rgb(batch['images'])}, background spread {spread:.3f}")
    for name in args.presets:
        print(f"  preset {name}: {reconstruction(from_preset(name), batch)}")
    for folder in args.runs:
        generator, _, _, state = load_run_models(folder)
        step = state["completed_steps"]
        print(f"  run {folder} (step {step}): {reconstruction(generator, batch)}")
    if args.autoencoder:
        from smis_layers.training.run import float32_copy, global_dtype_policy, write_sample_sheet

        with global_dtype_policy(args.dtype_policy):
            generator = train_autoencoder(
                args.model, args.autoencoder, args.lr, args.kl_weight, args.batch_size
            )
        generator = float32_copy(generator)
        print(f"  autoencoder ({args.autoencoder} steps): {reconstruction(generator, batch)}")
        args.out.mkdir(parents=True, exist_ok=True)
        run = {"data": "synthetic", "image_size": 64, "num_classes": 8, "seed": 0}
        print(f"  sample sheet: {write_sample_sheet(generator, run, args.out / 'samples.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
