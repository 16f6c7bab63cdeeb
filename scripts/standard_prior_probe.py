"""Where do codes from N(0, 1) lose image quality: in the region colour channels or in the
encoder's own channels? For a preset with the region colour code, the segmenter's mIoU on
`smis evaluate`'s held-out scenes of `--seed` (its codes are drawn here) when each half of
every class's code comes from the fitted code prior or from N(0, 1), drawn per latent grid
position (as the paper draws codes) or once per class.

    python scripts/standard_prior_probe.py groupdnet_shapes64 mulnet_shapes64 --n-images 256

Rows: `fitted` (the preset's default), `sample_z standard` (what `prior="standard"` draws: the
encoder's channels per position, one colour per class clipped to [-1, 1]), and the mixtures.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from smis_layers.data.synthetic import HELD_OUT_SEED, SyntheticShapes
from smis_layers.metrics.segmentation import SegmentationScores
from smis_layers.models.segmenter import ShapesSegmenter
from smis_layers.presets import load_preset

BATCH = 32


def codes(model, n: int, seed: int, prior: str) -> np.ndarray:
    return np.concatenate(
        [model.sample_z(BATCH, seed=seed * 1000 + i, prior=prior) for i in range(n // BATCH)]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("presets", nargs="+", help="zoo names or preset folders")
    parser.add_argument("--n-images", type=int, default=256, help="a multiple of 32")
    parser.add_argument("--seed", type=int, default=0, help="held-out scenes and codes")
    args = parser.parse_args()
    if args.n_images < BATCH or args.n_images % BATCH:
        parser.error(f"--n-images must be a positive multiple of {BATCH}; got {args.n_images}")
    seg = load_preset("segmenter_shapes64", expected_class=ShapesSegmenter)
    data = SyntheticShapes(image_size=64, num_classes=8, seed=HELD_OUT_SEED + args.seed)
    labels = data.batch(np.arange(args.n_images))["masks"]
    print("| preset | colour channels | encoder channels | mIoU | of the fitted prior's |")
    print("|---|---|---|---|---|")
    for preset in args.presets:
        model = load_preset(preset)
        name = os.path.basename(os.path.normpath(preset))
        width = model.region_colour_channels
        if not width or model.code_prior is None:
            parser.error(f"{preset} has no region colour code or no fitted code prior")
        colour = np.zeros(model.latent_shape[-1], bool)
        for c in range(model.num_classes):
            first = model.class_channels(c)[0]
            colour[first : first + width] = True
        fitted = codes(model, args.n_images, args.seed, "fitted")
        standard = codes(model, args.n_images, args.seed + 1, "standard")
        rng = np.random.default_rng(args.seed)
        per_position = rng.standard_normal(standard.shape).astype("float32")
        per_class = np.broadcast_to(per_position[:, :1, :1], standard.shape)
        rows = [
            ("fitted", "fitted", fitted),
            ("N(0, 1) per position", "N(0, 1) per position", per_position),
            ("fitted", "N(0, 1) per position", np.where(colour, fitted, standard)),
            ("N(0, 1) per position", "fitted", np.where(colour, per_position, fitted)),
            ("N(0, 1) per class", "N(0, 1) per position", np.where(colour, per_class, standard)),
            ("N(0, 1) per class, clipped (sample_z standard)", "N(0, 1) per position", standard),
        ]
        reference = None
        for colour_source, encoder_source, z in rows:
            images = np.concatenate(
                [
                    np.asarray(model.generate(labels[i : i + BATCH], z=z[i : i + BATCH]))
                    for i in range(0, args.n_images, BATCH)
                ]
            )
            metric = SegmentationScores(seg.num_classes)
            metric.update_state(labels, seg.predict_labels(images, BATCH))
            miou = float(np.asarray(metric.result()["miou"]))
            reference = reference or miou
            print(
                f"| {name} | {colour_source} | {encoder_source} | {miou:.3f} | "
                f"{miou / reference:.0%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
