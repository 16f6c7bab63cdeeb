"""Where do a preset's missing mIoU and textures go? Two measurements on held-out scenes.

1. The segmenter's per-class IoU (`segmenter_shapes64`, the judge behind the table's mIoU), its
   pixel accuracy by the texture family of each pixel's region, and the domain FID against as
   many other real scenes (its features, as in the table), on
   real images, on the same images with every region painted its own mean colour (what a
   model that gets every colour right and draws no texture would score), on each preset's
   reconstructions (`generate` from the encoder's means) and on its samples (fitted prior). If
   the mean-colour images score far below the real ones, the segmenter reads textures, and
   mIoU cannot reach the real images' without them.
2. How much of a region's texture reaches its class's code: ridge regressions from the class's
   code (all `latent_channels` numbers over the latent grid, standardized) to the benchmark's
   texture family (accuracy of the arg-max over a one-hot fit; the majority family is the
   floor) and, for striped regions, to the stripes' orientation (cos 2a, sin 2a) and frequency
   (held-out R^2; 0: nothing). Fitted on two thirds of the regions (shuffled), scored on the
   rest. If the codes carry the orientation and frequency, the decoder is what loses the
   textures; if not, the encoder.

`--figure PATH` writes a PNG of the first preset on a few scenes: the real image, its
mean-colour painting, the reconstruction, the label map and the segmenter's reading of the
reconstruction and of the real image.

    python scripts/quality_gap_probe.py groupdnet_shapes64 --n-images 256 --probe-images 1536
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from encoder_colour_probe import r_squared
from texture_and_morph import font, reconstruct

MIN_PIXELS = 64  # smaller regions are left out of the code probe


def _region_colours(images: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(B, C, 3) mean colour of every (image, class) region."""
    from smis_layers.models.groupdnet.groupdnet import region_mean_colours

    return np.asarray(region_mean_colours(images, np.eye(num_classes, dtype="float32")[labels]))


def mean_colour_images(images: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Each (image, class) region painted its own mean colour."""
    colours = _region_colours(images, labels, num_classes)
    return colours[np.arange(len(images))[:, None, None], labels]


def _ridge(x: np.ndarray, y: np.ndarray, fit: int, alpha: float = 1.0) -> np.ndarray:
    """Held-out predictions of a ridge regression fitted on the first `fit` rows (features
    standardized and targets centred on those rows, so the penalty leaves the mean alone)."""
    mean, std = x[:fit].mean(axis=0), x[:fit].std(axis=0) + 1e-12
    z, offset = (x - mean) / std, y[:fit].mean(axis=0)
    a = z[:fit]
    weights = np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ (y[:fit] - offset))
    return z[fit:] @ weights + offset


def region_features(model, batch: dict, mu, class_index: int, keep: np.ndarray) -> np.ndarray:
    """(regions, features): the class's code (in the encoder's means `mu`) of each kept image,
    or (model None) the region's mean colour, the reference of what the colour alone tells."""
    if model is None:
        images, labels = batch["images"][keep], batch["masks"][keep]
        return _region_colours(images, (labels == class_index).astype("int32"), 2)[:, 1]
    return model.class_code(mu[keep], class_index).reshape(keep.sum(), -1)


def code_probe(model, dataset, n_images: int, batch_size: int = 64) -> dict[str, float]:
    """Texture family accuracy and stripe orientation / frequency R^2 from the class codes
    (model None: from the regions' mean colours)."""
    from smis_layers.data.synthetic import TEXTURES

    codes, family, params = [], [], []
    for first in range(0, n_images, batch_size):
        batch = dataset.batch(np.arange(first, min(first + batch_size, n_images)))
        mu = None if model is None else model.encode(batch["images"], batch["masks"])[0]
        for c in range(dataset.num_classes):
            keep = (batch["masks"] == c).sum(axis=(1, 2)) >= MIN_PIXELS
            if keep.any():
                codes.append(region_features(model, batch, mu, c, keep))
                family.append(batch["texture"][keep, c])
                params.append(batch["params"][keep, c])
    x = np.concatenate(codes).astype("float64")
    family, params = np.concatenate(family), np.concatenate(params)
    order = np.random.default_rng(0).permutation(len(x))
    x, family, params = x[order], family[order], params[order]
    fit = 2 * len(x) // 3
    one_hot = np.eye(len(TEXTURES))[family]
    accuracy = float((_ridge(x, one_hot, fit).argmax(axis=1) == family[fit:]).mean())
    majority = float((family[fit:] == np.bincount(family[:fit]).argmax()).mean())
    stripes = family == TEXTURES.index("stripes")
    xs, ps = x[stripes], params[stripes]
    fit_s = 2 * len(xs) // 3
    angle = np.stack([np.cos(2 * ps[:, 1]), np.sin(2 * ps[:, 1])], axis=1)
    return {
        "regions": len(x),
        "family_accuracy": accuracy,
        "family_majority": majority,
        "stripe_regions": len(xs),
        "stripe_angle_r2": r_squared(_ridge(xs, angle, fit_s), angle[fit_s:]),
        "stripe_frequency_r2": r_squared(_ridge(xs, ps[:, :1], fit_s), ps[fit_s:, :1]),
    }


def figure(path: Path, columns: list[tuple[str, np.ndarray]], scale: int = 2) -> None:
    """A grid: one row per scene, one titled column per (name, images or label maps)."""
    from PIL import Image, ImageDraw

    from smis_layers.utils.images import MASK_COLOURS

    tile, gap, title = 64 * scale, 6, 34
    rows = len(columns[0][1])
    sheet = Image.new(
        "RGB", (gap + len(columns) * (tile + gap), title + rows * (tile + gap)), "white"
    )
    draw = ImageDraw.Draw(sheet)
    for j, (name, arrays) in enumerate(columns):
        left = gap + j * (tile + gap)
        draw.text((left, 2), name, fill="black", font=font(11))
        for i, array in enumerate(arrays):
            if array.ndim == 2:
                pixels = MASK_COLOURS[array].astype("uint8")
            else:
                pixels = ((np.clip(array, -1, 1) + 1) * 127.5).astype("uint8")
            pixels = np.repeat(np.repeat(pixels, scale, 0), scale, 1)
            sheet.paste(Image.fromarray(pixels), (left, title + i * (tile + gap)))
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("presets", nargs="+", help="zoo names or preset folders")
    parser.add_argument("--n-images", type=int, default=256, help="held-out scenes (IoU)")
    parser.add_argument("--probe-images", type=int, default=1536, help="held-out scenes (codes)")
    parser.add_argument("--seed", type=int, default=0, help="held-out data: seed 1000 + S")
    parser.add_argument("--segmenter", default="segmenter_shapes64")
    parser.add_argument("--figure", type=Path, help="PNG of the first preset on a few scenes")
    args = parser.parse_args()
    from smis_layers.data.synthetic import HELD_OUT_SEED, TEXTURES, SyntheticShapes
    from smis_layers.metrics.batching import map_batches
    from smis_layers.metrics.evaluate import _generate_all
    from smis_layers.metrics.fid import feature_statistics, frechet_distance
    from smis_layers.metrics.segmentation import segmentation_scores
    from smis_layers.models.segmenter import ShapesSegmenter
    from smis_layers.presets import load_preset

    segmenter = load_preset(args.segmenter, expected_class=ShapesSegmenter)
    classes = segmenter.num_classes
    dataset = SyntheticShapes(64, classes, seed=HELD_OUT_SEED + args.seed)
    batch = dataset.batch(np.arange(args.n_images))
    real, labels = batch["images"], batch["masks"]
    other = dataset.batch(np.arange(args.n_images, 2 * args.n_images))["images"]
    reference = feature_statistics(map_batches(segmenter.features, other, batch_size=32))

    # The texture family of every pixel's region.
    pixel_family = np.take_along_axis(batch["texture"][:, None, None], labels[..., None], -1)[
        ..., 0
    ]

    def iou_row(name: str, images: np.ndarray) -> str:
        predicted = segmenter.predict_labels(images)
        scores = segmentation_scores(labels, predicted, classes)
        ours = feature_statistics(map_batches(segmenter.features, images, batch_size=32))
        right = predicted == labels
        accuracy = " | ".join(
            f"{right[pixel_family == f].mean():.3f}" for f in range(len(TEXTURES))
        )
        cells = " | ".join(f"{v:.3f}" for v in scores["iou"])
        fid = frechet_distance(*reference, *ours)
        return f"| {name} | {fid:.2f} | {scores['miou']:.3f} | {accuracy} | {cells} |"

    painted = mean_colour_images(real, labels, classes)
    rows = [iou_row("real images", real), iou_row("real, regions in their mean colour", painted)]
    probes = [("region mean colour alone", code_probe(None, dataset, args.probe_images))]
    for preset in args.presets:
        name = str(preset)
        model = load_preset(preset)
        rebuilt = reconstruct(model, real, labels, batch_size=32)
        rows.append(iou_row(f"{name} reconstructions", rebuilt))
        rows.append(
            iou_row(f"{name} samples (fitted prior)", _generate_all(model, labels, args.seed, 32))
        )
        probes.append((name, code_probe(model, dataset, args.probe_images)))
        if args.figure and len(probes) == 2:
            shown = slice(0, 6)
            figure(
                args.figure,
                [
                    ("real", real[shown]),
                    ("mean colours", painted[shown]),
                    (f"{name}\nreconstruction", rebuilt[shown]),
                    ("label map", labels[shown]),
                    ("segmenter:\nreconstruction", segmenter.predict_labels(rebuilt[shown])),
                    ("segmenter:\nreal", segmenter.predict_labels(real[shown])),
                ],
            )

    held_out = f"held-out scenes (seed {HELD_OUT_SEED + args.seed})"
    header = " | ".join([*(f"acc. {t}" for t in TEXTURES), *(f"IoU {c}" for c in range(classes))])
    print(f"Segmenter IoU per class, {args.n_images} {held_out}")
    print(f"| images | domain FID | mIoU | {header} |")
    print("|---|---|---|" + "---|" * (len(TEXTURES) + classes))
    print("\n".join(rows))
    print(
        f"\nTexture in the class codes ({MIN_PIXELS}+ px regions), {args.probe_images} {held_out}"
    )
    print(
        "| preset | regions | family accuracy (majority) | stripe regions | orientation R^2 ",
        end="",
    )
    print("| frequency R^2 |\n|---|---|---|---|---|---|")
    for name, p in probes:
        family = f"{p['family_accuracy']:.3f} ({p['family_majority']:.3f})"
        print(
            f"| {name} | {p['regions']} | {family} | {p['stripe_regions']} | "
            f"{p['stripe_angle_r2']:.3f} | {p['stripe_frequency_r2']:.3f} |"
        )


if __name__ == "__main__":
    main()
