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
    from smis_layers.metrics.class_control import class_code_control, reconstruction_colour_errors
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
            results = [class_code_control(model, masks, c, prior, base) for c in classes]
            cells = [f"{r['usage'].mean():.3f}" if r["usage"].size else "-" for r in results]
            print(row(preset, f"usage, {prior} prior", cells))
            if args.leakage:
                cells = [
                    f"{np.median(r['isolation']):.1f}" if r["isolation"].size else "-"
                    for r in results
                ]
                print(row(preset, f"inside / outside, {prior} prior (median)", cells))
        if args.reconstruction:
            errors = reconstruction_colour_errors(model, batch["images"], masks)
            print(row(preset, "reconstruction colour error", [f"{e:.3f}" for e in errors]))


if __name__ == "__main__":
    main()
