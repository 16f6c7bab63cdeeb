"""Does the decoder use each class's code? For every class, on held-out scenes where the class
covers at least 64 pixels: redraw only that class's code 4 times (`applications.resample_class`,
the other classes keeping one fixed draw) and report the standard deviation of the class
region's mean colour over the redraws, averaged over the scenes (0: the class is drawn the same
whatever its code). Once with the preset's code prior ("auto": its fitted prior if it ships one)
and once with N(0, 1) codes.

`--leakage` adds, per class, the ratio of the per-pixel colour spread inside the class's region
to that outside it under the same redraws (the issue's target: at least 5). `--reconstruction`
adds each class's mean-colour error in reconstructions (`encode`, then `generate` from the
means) of held-out scenes: |reconstructed - real| mean colour of the class's region, averaged
over RGB and over the scenes where the class covers at least 64 pixels (target: at most 0.1).

    python scripts/class_code_usage.py groupdnet_shapes64 mulnet_shapes64 --leakage
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def colour_spread(
    model, masks, class_index: int, prior: str, base: np.ndarray
) -> tuple[list[float], list[float]]:
    """Per scene: the spread of the region's mean colour over the redraws, and the ratio of the
    mean per-pixel spread inside the region to that outside it."""
    from smis_layers.applications import resample_class

    spreads, ratios = [], []
    for mask in masks:
        region = mask == class_index
        if region.sum() < 64:
            continue
        images = resample_class(model, mask, class_index, n=4, seed=1, z=base, prior=prior)
        spreads.append(float(images[:, region].mean(axis=1).std(axis=0).mean()))
        per_pixel = images.std(axis=0).mean(axis=-1)
        ratios.append(float(per_pixel[region].mean() / max(per_pixel[~region].mean(), 1e-6)))
    return spreads, ratios


def reconstruction_colour_error(model, batch: dict) -> list[float]:
    """Per class: the mean-colour error of reconstructions, averaged over the scenes where
    the class covers at least 64 pixels (nan where it never does)."""
    mu, _ = model.encode(batch["images"], batch["masks"])
    rebuilt = np.asarray(model.generate(batch["masks"], z=mu))
    errors = {c: [] for c in range(model.num_classes)}
    for image, rec, labels in zip(batch["images"], rebuilt, batch["masks"], strict=True):
        for c in np.unique(labels):
            region = labels == c
            if region.sum() >= 64:
                gap = np.abs(image[region].mean(axis=0) - rec[region].mean(axis=0))
                errors[int(c)].append(float(gap.mean()))
    return [float(np.mean(e)) if e else float("nan") for e in errors.values()]


def row(preset: str, label: str, values) -> str:
    return f"| {preset} | {label} | " + " | ".join(values) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("presets", nargs="+", help="zoo names or preset folders")
    parser.add_argument("--scenes", type=int, default=32, help="held-out scenes")
    parser.add_argument("--leakage", action="store_true", help="inside / outside spread")
    parser.add_argument("--reconstruction", action="store_true", help="colour error")
    args = parser.parse_args()
    from smis_layers.data.synthetic import HELD_OUT_SEED, SyntheticShapes
    from smis_layers.models import from_preset

    batch = SyntheticShapes(64, 8, seed=HELD_OUT_SEED).batch(np.arange(args.scenes))
    masks = batch["masks"]
    print("| preset | measure | " + " | ".join(f"class {c}" for c in range(8)) + " |")
    print("|---|---|" + "---|" * 8)
    for preset in args.presets:
        model = from_preset(preset)
        base = model.sample_z(1, seed=7)[0]
        for prior in ("auto", "standard"):
            classes = range(model.num_classes)
            results = [colour_spread(model, masks, c, prior, base) for c in classes]
            cells = [f"{np.mean(s):.3f}" if s else "-" for s, _ in results]
            print(row(preset, f"usage, {prior} prior", cells))
            if args.leakage:
                cells = [f"{np.median(r):.1f}" if r else "-" for _, r in results]
                print(row(preset, f"inside / outside, {prior} prior (median)", cells))
        if args.reconstruction:
            errors = reconstruction_colour_error(model, batch)
            print(row(preset, "reconstruction colour error", [f"{e:.3f}" for e in errors]))


if __name__ == "__main__":
    main()
