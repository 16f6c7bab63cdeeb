"""Does the decoder use each class's code? For every class, on held-out scenes where the class
covers at least 64 pixels: redraw only that class's code 4 times (`applications.resample_class`,
the other classes keeping one fixed draw) and report the standard deviation of the class
region's mean colour over the redraws, averaged over the scenes (0: the class is drawn the same
whatever its code). Once with the preset's code prior ("auto": its fitted prior if it ships one)
and once with N(0, 1) codes.

    python scripts/class_code_usage.py groupdnet_shapes64 mulnet_shapes64
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def colour_spread(model, masks, class_index: int, prior: str, base: np.ndarray) -> list[float]:
    from smis_layers.applications import resample_class

    spreads = []
    for mask in masks:
        region = mask == class_index
        if region.sum() < 64:
            continue
        images = resample_class(model, mask, class_index, n=4, seed=1, z=base, prior=prior)
        spreads.append(float(images[:, region].mean(axis=1).std(axis=0).mean()))
    return spreads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("presets", nargs="+", help="zoo names or preset folders")
    parser.add_argument("--scenes", type=int, default=32, help="held-out scenes")
    args = parser.parse_args()
    from smis_layers.data.synthetic import HELD_OUT_SEED, SyntheticShapes
    from smis_layers.models import from_preset

    masks = SyntheticShapes(64, 8, seed=HELD_OUT_SEED).batch(np.arange(args.scenes))["masks"]
    print("| preset | prior | " + " | ".join(f"class {c}" for c in range(8)) + " |")
    print("|---|---|" + "---|" * 8)
    for preset in args.presets:
        model = from_preset(preset)
        base = model.sample_z(1, seed=7)[0]
        for prior in ("auto", "standard"):
            cells = []
            for c in range(model.num_classes):
                spreads = colour_spread(model, masks, c, prior, base)
                cells.append(f"{np.mean(spreads):.3f}" if spreads else "-")
            print(f"| {preset} | {prior} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
