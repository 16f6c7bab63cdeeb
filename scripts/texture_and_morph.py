"""Texture fidelity of reconstructions and the domain FID of morphs, for generator presets.

On held-out scenes (samples 0 .. n - 1 of `SyntheticShapes(64, C, seed=1000 + seed)`):

- texture agreement (`smis_layers.metrics.texture_agreement`): the fraction of striped and of
  checked regions (of at least 128 pixels) whose dominant 2D-FFT peak lies within 15 degrees and
  20 % of the benchmark's texture angle and frequency, first on the real images (the estimator's
  own accuracy, the ceiling), then on each preset's reconstructions (`generate` from the
  encoder's means of the real image, as `reconstruction_colour_errors`). Issue 23's target: at
  least 0.5 for both families. The dominant peak cannot tell a checker from stripes along its
  diagonal, so checked and dotted regions are also scored for both of their fundamentals
  (`second_peak_ratio`, rows "checker, both peaks" and "dots, both peaks").
- morph FID ratio (`smis_layers.metrics.morph_fid_ratio`): each real scene A and the same layout
  rendered with other appearance factors (`donor_appearance`, a second real image of the same
  labels) are encoded and morphed in `--steps` frames; the domain FID (`segmenter_shapes64`'s
  features) of every frame position against n other real scenes (samples n .. 2n - 1). Target:
  the middle frame's FID at most 1.5 times the end frames'.

`--figure PATH` writes a PNG: a few real striped / checked regions next to each preset's
reconstruction, with the true and measured frequency and angle (a checked region's "match"
asks for both of its peaks).

    python scripts/texture_and_morph.py groupdnet_shapes64 --n-images 32 --figure texture.png
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

FAMILIES = ("stripes", "checker")
#: Families with two fundamentals, and the power the second needs against the first.
TWO_PEAK_FAMILIES = ("checker", "dots")
SECOND_PEAK_RATIO = 0.25
FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)


def reconstruct(model, images: np.ndarray, labels: np.ndarray, batch_size: int = 16):
    """`generate` from the encoder's means of the real images."""
    from smis_layers.metrics.batching import map_batches

    return map_batches(
        lambda x, m: model.generate(m, z=model.encode(x, m)[0]),
        images,
        labels,
        batch_size=batch_size,
    )


def texture_rows(name: str, scores: dict, suffix: str = "") -> list[str]:
    rows = []
    for family, s in scores.items():
        family = family + suffix
        angle = np.nanmedian(np.abs(s["angle_error_deg"])) if s["count"] else float("nan")
        frequency = np.nanmedian(np.abs(s["frequency_error"])) if s["count"] else float("nan")
        rows.append(
            f"| {name} | {family} | {s['agreement']:.3f} | {int(s['matches'].sum())} / "
            f"{s['count']} | {s['skipped']} | {angle:.1f} | {frequency:.3f} |"
        )
    return rows


def font(size: int):
    from PIL import ImageFont

    for path in FONT_FILES:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def describe(frequency: float, angle: float) -> str:
    if not np.isfinite(frequency):
        return "no peak"
    return f"f {frequency:.1f}, {np.degrees(angle):.0f}°"


def figure(path: Path, real, labels, reference: dict, columns: list[tuple[str, np.ndarray, dict]]):
    """Rows of regions (3 striped, 3 checked): the real image, then each preset's
    reconstruction, the region's outside dimmed; the true and measured peaks under each tile."""
    from PIL import Image, ImageDraw

    chosen = []
    for family in FAMILIES:
        chosen += [(family, k) for k in range(min(3, reference[family]["count"]))]
    scale, caption, gap = 3, 34, 8
    tile = real.shape[1] * scale
    names = ["real", *[name for name, _, _ in columns]]
    width = len(names) * (tile + gap) + gap + 150
    height = 24 + len(chosen) * (tile + caption + gap)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    small, big = font(11), font(13)
    for j, name in enumerate(names):
        draw.text((150 + gap + j * (tile + gap), 4), name, fill="black", font=big)
    for row, (family, k) in enumerate(chosen):
        b, c = reference[family]["regions"][k]
        true_f, true_a = reference[family]["expected"][k]
        top = 24 + row * (tile + caption + gap)
        draw.text(
            (4, top + 4),
            f"scene {b}, class {c}\n{family}\ntrue: f {true_f:.1f},\n{np.degrees(true_a):.0f}°"
            + (" (mod 90°)" if family == "checker" else ""),
            fill="black",
            font=small,
        )
        region = labels[b] == c
        images = [real[b], *[images[b] for _, images, _ in columns]]
        scores = [reference, *[s for _, _, s in columns]]
        for j, (image, score) in enumerate(zip(images, scores, strict=True)):
            pixels = (np.clip(image, -1, 1) + 1) * 127.5
            pixels = np.where(region[..., None], pixels, 0.35 * pixels + 0.65 * 255)
            pixels = np.repeat(np.repeat(pixels, scale, 0), scale, 1).astype("uint8")
            left = 150 + gap + j * (tile + gap)
            sheet.paste(Image.fromarray(pixels), (left, top))
            s = score[family]
            k_here = int(np.nonzero((s["regions"] == (b, c)).all(axis=1))[0][0])
            ok = bool(s["matches"][k_here])
            text = describe(*s["measured"][k_here]) + ("  match" if ok else "  miss")
            colour = (0, 110, 0) if ok else (180, 0, 0)
            draw.text((left, top + tile + 3), text, fill=colour, font=small)
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("presets", nargs="+", help="zoo names or preset folders")
    parser.add_argument("--n-images", type=int, default=64, help="held-out scenes")
    parser.add_argument("--seed", type=int, default=0, help="held-out data: seed 1000 + S")
    parser.add_argument("--steps", type=int, default=5, help="frames per morph (>= 3)")
    parser.add_argument("--segmenter", default="segmenter_shapes64", help="domain-FID features")
    parser.add_argument("--figure", type=Path, help="PNG of regions and their reconstructions")
    args = parser.parse_args()
    from smis_layers.data.synthetic import HELD_OUT_SEED, SyntheticShapes
    from smis_layers.metrics import donor_appearance, morph_fid_ratio, texture_agreement
    from smis_layers.models.segmenter import ShapesSegmenter
    from smis_layers.presets import load_preset

    if args.n_images < 2:
        parser.error(f"--n-images must be >= 2 (FID); received {args.n_images}")
    segmenter = load_preset(args.segmenter, expected_class=ShapesSegmenter)
    classes = segmenter.num_classes
    dataset = SyntheticShapes(64, classes, seed=HELD_OUT_SEED + args.seed)
    batch = dataset.batch(np.arange(args.n_images))
    real, labels = batch["images"], batch["masks"]
    other = dataset.batch(np.arange(args.n_images, 2 * args.n_images))["images"]
    donor = donor_appearance(
        dataset, batch["palette"], batch["texture"], batch["params"], seed=args.seed
    )
    images_b = dataset.render(labels, *donor)
    factors = (labels, batch["texture"], batch["params"])

    def score(images) -> tuple[dict, dict]:
        both = texture_agreement(
            images, *factors, families=TWO_PEAK_FAMILIES, second_peak_ratio=SECOND_PEAK_RATIO
        )
        return texture_agreement(images, *factors, families=FAMILIES), both

    reference, reference_both = score(real)
    lines = [
        "| images | family | agreement | matches | skipped (< 128 px) | median angle error (°) "
        "| median frequency error |",
        "|---|---|---|---|---|---|---|",
        *texture_rows("real images", reference),
        *texture_rows("real images", reference_both, ", both peaks"),
    ]
    morphs, columns = [], []
    for preset in args.presets:
        name = Path(preset).name if Path(preset).is_dir() else str(preset)
        model = load_preset(preset)
        if tuple(model.image_size) != (64, 64) or model.num_classes != classes:
            raise ValueError(
                f"Preset {name} is {model.image_size} with {model.num_classes} classes; the "
                f"segmenter and the held-out data are 64 x 64 with {classes} classes"
            )
        rebuilt = reconstruct(model, real, labels)
        scores, both = score(rebuilt)
        lines += texture_rows(f"{name} reconstructions", scores)
        lines += texture_rows(f"{name} reconstructions", both, ", both peaks")
        columns.append((name, rebuilt, {**scores, "checker": both["checker"]}))
        result = morph_fid_ratio(
            model, segmenter.features, real, labels, images_b, other, steps=args.steps
        )
        morphs.append((name, result))
    print(f"Texture agreement, {args.n_images} held-out scenes (seed {HELD_OUT_SEED + args.seed})")
    print("\n".join(lines))
    print(
        f"\nMorph domain FID, {args.n_images} morphs of {args.steps} frames vs "
        f"{args.n_images} other real images"
    )
    print("| preset | FID ends | FID middle | ratio | FID per frame |")
    print("|---|---|---|---|---|")
    for name, r in morphs:
        steps = ", ".join(f"{v:.2f}" for v in r["fid_per_step"])
        print(
            f"| {name} | {r['fid_ends']:.2f} | {r['fid_middle']:.2f} | {r['ratio']:.2f} | {steps} |"
        )
    if args.figure:
        figure(
            args.figure, real, labels, {**reference, "checker": reference_both["checker"]}, columns
        )
        print(f"\nwrote {args.figure}")


if __name__ == "__main__":
    main()
