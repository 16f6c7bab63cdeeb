"""Can a preset's decoder draw the benchmark's textures from some code, or is it the codes it
is given that lack them? The class codes of held-out real scenes are optimised (Adam, per
scene, the decoder's weights fixed) to reconstruct each scene, starting from the encoder's
means; the channels measured from the image (`region_colour_code`, `region_texture_code`) keep
the region's true values.
The table compares the reconstructions from the encoder's means with those from the optimised
codes: texture agreement of striped and checked regions (`texture_agreement`, as
`texture_and_morph.py`), the segmenter's mIoU, the pixel L1, and the codes' mean absolute value.
For the encoder's codes it also gives the signal-to-noise ratio of the posterior the decoder
is trained on (`posterior_snr`): how far the means move from scene to scene against the noise
`z = mu + sigma * eps` adds to them in a training step.

`--train-encoder N` adds the amortised question: the encoder alone is trained for N batches of
training scenes under the same loss (decoder fixed, codes = the encoder's means, Adam at
`--encoder-lr`), then scored like the rest; `--split-mode mask` has the encoder read each class
through its mask over the whole image (the paper's split) instead of its cropped bounding box.

    python scripts/decoder_texture_probe.py groupdnet_shapes64 --n-images 16 --steps 300
    python scripts/decoder_texture_probe.py groupdnet_shapes64 --spectrum-weight 0.2
    python scripts/decoder_texture_probe.py groupdnet_shapes64 --train-encoder 600 --split-mode mask

Needs the TensorFlow backend (the codes' gradients come from `tf.GradientTape`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quality_gap_probe import figure
from texture_and_morph import FAMILIES

#: Training scenes per batch of `train_encoder`.
ENCODER_BATCH = 16


def posterior_snr(model, mu: np.ndarray, logvar: np.ndarray) -> tuple[float, float]:
    """(the median over code elements of each element's spread of the means across scenes over
    its mean posterior sigma, the median of those sigmas), over the encoder's channels only (the
    channels measured from the image, region colour and texture, have no noise)."""
    channels = model.schedule.latent_channels
    measured = getattr(model, "measured_code_channels", 0)

    def own(t: np.ndarray) -> np.ndarray:
        per_class = np.asarray(t, "float64").reshape(*t.shape[:3], model.num_classes, channels)
        return per_class[..., measured:]

    spread = own(mu).std(axis=0)
    sigma = np.exp(0.5 * own(logvar)).mean(axis=0)
    return float(np.median(spread / sigma)), float(np.median(sigma))


def reconstruction_objective(real, fake, segmap, spectrum_weight: float = 0.0):
    """The pixel L1 of `fake` against `real`, plus `spectrum_weight` x `region_spectrum_loss`."""
    import tensorflow as tf

    from smis_layers.training.losses import region_spectrum_loss

    fake = tf.cast(fake, "float32")
    loss = tf.reduce_mean(tf.abs(fake - real))
    if spectrum_weight:
        loss += spectrum_weight * region_spectrum_loss(real, fake, segmap)
    return loss


def with_split_mode(model, split_mode: str):
    """The same network and weights with its encoder reading each class through `split_mode`
    (`ClassMaskSplit` has no weights); `model` itself when it already does."""
    if model.split_mode == split_mode:
        return model
    copy = type(model).from_config({**model.get_config(), "split_mode": split_mode})
    copy.set_weights(model.get_weights())
    return copy


def train_encoder(
    model,
    steps: int,
    learning_rate: float = 1e-3,
    spectrum_weight: float = 0.0,
    batch_size: int = ENCODER_BATCH,
    seed: int = 0,
) -> list[float]:
    """Trains `model.encoder` alone (Adam, the decoder fixed) to reconstruct `steps` batches of
    `SyntheticShapes(seed=seed)` scenes from its means (`z = mu`, no noise), under
    `reconstruction_objective`; returns the loss of every step."""
    import keras
    import tensorflow as tf

    from smis_layers.data.synthetic import SyntheticShapes

    size = int(model.image_size[0])
    data = SyntheticShapes(size, model.num_classes, seed=seed)
    variables = model.encoder.trainable_variables
    optimizer = keras.optimizers.Adam(learning_rate)

    @tf.function
    def step(images, labels):
        segmap = model.segmap(labels)
        condition = model.condition_segmap(segmap)
        with tf.GradientTape() as tape:
            mu, _ = model.encode_segmap(images, segmap, training=True)
            loss = reconstruction_objective(
                images, model.decode(mu, condition), segmap, spectrum_weight
            )
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(
            [(g, v) for g, v in zip(gradients, variables, strict=True) if g is not None]
        )
        return loss

    losses = []
    for i in range(steps):
        batch = data.batch(np.arange(i * batch_size, (i + 1) * batch_size))
        images = tf.constant(batch["images"], "float32")
        losses.append(float(step(images, tf.constant(batch["masks"]))))
    return losses


def invert_codes(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    steps: int,
    learning_rate: float = 0.05,
    spectrum_weight: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """(the encoder's means, the optimised codes, the loss every step): codes that minimise
    the pixel L1 (plus `spectrum_weight` x `region_spectrum_loss`) of `model.decode` against
    `images`, from the encoder's means, the measured channels (colour, texture) held at the
    regions' values."""
    import keras
    import tensorflow as tf

    segmap = model.segmap(labels)
    condition = model.condition_segmap(segmap)
    mu = np.asarray(model.encode(images, labels)[0], "float32")
    per_class = (*mu.shape[:3], model.num_classes, model.schedule.latent_channels)
    free = np.ones(per_class, "float32")
    free[..., : getattr(model, "measured_code_channels", 0)] = 0.0
    free = tf.constant(free.reshape(mu.shape))
    codes = tf.Variable(mu)
    optimizer = keras.optimizers.Adam(learning_rate)
    real = tf.constant(images, "float32")

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = reconstruction_objective(
                real, model.decode(codes, condition), segmap, spectrum_weight
            )
        gradient = tape.gradient(loss, codes)
        optimizer.apply_gradients([(gradient * free, codes)])
        return loss

    losses = [float(step()) for _ in range(steps)]
    return mu, codes.numpy(), losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("presets", nargs="+", help="zoo names or preset folders")
    parser.add_argument("--n-images", type=int, default=16, help="held-out scenes")
    parser.add_argument("--seed", type=int, default=0, help="held-out data: seed 1000 + S")
    parser.add_argument(
        "--steps", type=int, default=300, help="Adam steps on the codes (0: no inversion)"
    )
    parser.add_argument("--lr", type=float, default=0.05, help="Adam's learning rate")
    parser.add_argument(
        "--spectrum-weight", type=float, default=0.0, help="adds region_spectrum_loss"
    )
    parser.add_argument(
        "--train-encoder", type=int, default=0, help="batches to train the encoder alone on"
    )
    parser.add_argument("--encoder-lr", type=float, default=1e-3, help="its Adam's rate")
    parser.add_argument(
        "--split-mode", choices=("crop_resize", "mask"), help="the trained encoder's class split"
    )
    parser.add_argument("--segmenter", default="segmenter_shapes64", help="judges the mIoU")
    parser.add_argument("--figure", type=Path, help="PNG: real, from the means, from the codes")
    args = parser.parse_args()
    for name, low in (("n_images", 1), ("steps", 0), ("train_encoder", 0)):
        if getattr(args, name) < low:
            parser.error(
                f"--{name.replace('_', '-')} must be >= {low}; received {getattr(args, name)}"
            )
    import keras

    if keras.backend.backend() != "tensorflow":
        parser.error(f"needs KERAS_BACKEND=tensorflow; received {keras.backend.backend()}")
    from smis_layers.data.synthetic import HELD_OUT_SEED, SyntheticShapes
    from smis_layers.metrics import texture_agreement
    from smis_layers.metrics.segmentation import segmentation_scores
    from smis_layers.models.segmenter import ShapesSegmenter
    from smis_layers.presets import load_preset

    segmenter = load_preset(args.segmenter, expected_class=ShapesSegmenter)
    classes = segmenter.num_classes
    batch = SyntheticShapes(64, classes, seed=HELD_OUT_SEED + args.seed).batch(
        np.arange(args.n_images)
    )
    real, labels = batch["images"], batch["masks"]
    factors = (labels, batch["texture"], batch["params"])

    def row(name: str, images: np.ndarray, codes: np.ndarray | None, snr: str = "-") -> str:
        scores = texture_agreement(images, *factors, families=FAMILIES)
        cells = [
            f"{s['agreement']:.3f} ({int(s['matches'].sum())} / {s['count']})"
            for s in scores.values()
        ]
        miou = segmentation_scores(labels, segmenter.predict_labels(images), classes)["miou"]
        l1 = float(np.mean(np.abs(images - real)))
        size = "-" if codes is None else f"{float(np.mean(np.abs(codes))):.3f}"
        return f"| {name} | {' | '.join(cells)} | {miou:.3f} | {l1:.3f} | {size} | {snr} |"

    lines = [
        "| images | stripes agreement | checker agreement | mIoU | pixel L1 | mean abs code "
        "| posterior SNR (sigma) |",
        "|---|---|---|---|---|---|---|",
        row("real images", real, None),
    ]
    columns = [("real", real)]

    def decode(model, codes: np.ndarray) -> np.ndarray:
        condition = model.condition_segmap(model.segmap(labels))
        return np.asarray(model.decode(codes, condition), "float32")

    for preset in args.presets:
        name = Path(preset).name if Path(preset).is_dir() else str(preset)
        model = load_preset(preset)
        if tuple(model.image_size) != (64, 64) or model.num_classes != classes:
            raise ValueError(
                f"Preset {name} is {model.image_size} with {model.num_classes} classes; the "
                f"segmenter and the held-out data are 64 x 64 with {classes} classes"
            )
        mu, logvar = (np.asarray(t, "float32") for t in model.encode(real, labels))
        snr, sigma = posterior_snr(model, mu, logvar)
        from_mu = decode(model, mu)
        lines.append(
            row(f"{name}, from the encoder's means", from_mu, mu, f"{snr:.3f} ({sigma:.3f})")
        )
        columns.append((f"{name}: means", from_mu))
        if args.steps:
            start = time.perf_counter()
            _, codes, losses = invert_codes(
                model, real, labels, args.steps, args.lr, args.spectrum_weight
            )
            from_codes = decode(model, codes)
            lines.append(row(f"{name}, from the optimised codes", from_codes, codes))
            columns.append((f"{name}: optimised", from_codes))
            print(
                f"{name}: inversion loss {losses[0]:.4f} -> {losses[-1]:.4f} in {args.steps} "
                f"steps ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
        if args.train_encoder:
            if args.split_mode:
                model = with_split_mode(model, args.split_mode)
            start = time.perf_counter()
            losses = train_encoder(
                model, args.train_encoder, args.encoder_lr, args.spectrum_weight, seed=args.seed
            )
            trained = np.asarray(model.encode(real, labels)[0], "float32")
            from_trained = decode(model, trained)
            label = f"{name}, the encoder trained alone ({model.split_mode} split)"
            lines.append(row(label, from_trained, trained))
            columns.append((f"{name}: encoder trained", from_trained))
            window = min(50, len(losses))
            print(
                f"{name}: encoder training loss {np.mean(losses[:window]):.4f} -> "
                f"{np.mean(losses[-window:]):.4f} (means of {window}) in {args.train_encoder} "
                f"batches ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    print(
        f"\n{args.n_images} held-out scenes (seed {HELD_OUT_SEED + args.seed}); inversion: "
        f"{args.steps} Adam steps at {args.lr}; encoder alone: {args.train_encoder} batches of "
        f"{ENCODER_BATCH} at {args.encoder_lr}; spectrum weight {args.spectrum_weight}\n"
    )
    print("\n".join(lines))
    if args.figure:
        figure(args.figure, columns)
        print(f"\nfigure: {args.figure}")


if __name__ == "__main__":
    main()
