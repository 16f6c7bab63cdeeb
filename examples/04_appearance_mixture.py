"""Appearance mixture: each class's look taken from a different source.

One label map is drawn with the background's code encoded from a first reference image, one shape
class's code from a second reference, another class's code drawn from the prior with a seed,
and the remaining classes from a shared random draw (`applications.mix_appearance`). The
references are real images of the synthetic benchmark encoded with their own label maps. Writes the
mixed image next to its label map and the references.

    python examples/04_appearance_mixture.py [--preset NAME_OR_FOLDER] [--out DIR] [--smoke]

Takes 20 to 45 s on a shared 2-core CPU (about 6 s of CPU time, most of it importing
TensorFlow); --smoke about the same.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quiet TensorFlow; set before importing it

import numpy as np

from smis_layers import applications as apps
from smis_layers.models import from_preset
from smis_layers.utils.images import colourize, image_grid, save_png, to_uint8


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="groupdnet_shapes64", help="zoo name or folder")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/04"))
    parser.add_argument("--smoke", action="store_true", help="tiny and fast (used by the tests)")
    args = parser.parse_args(argv)  # the example is already small: --smoke changes nothing

    model = from_preset(args.preset)
    scenes = apps.example_data(model, 3)  # held-out images, label maps and appearance factors
    labels = scenes["masks"][0]
    shapes = [int(c) for c in np.unique(labels) if c != 0]
    donors = {
        0: (scenes["images"][1], scenes["masks"][1]),  # background from reference 1
        shapes[0]: (scenes["images"][2], scenes["masks"][2]),  # first shape class: reference 2
    }
    if len(shapes) > 1:
        donors[shapes[1]] = 7  # second shape class: a prior code drawn with seed 7
    for c, donor in donors.items():
        source = f"seed {donor}" if isinstance(donor, int) else "a reference image"
        print(f"class {c}: code from {source}")

    mixed, z = apps.mix_appearance(model, labels, donors, seed=0)  # image (H, W, 3), codes
    print(f"codes {z.shape}: class c in channels 8c..8c+7")
    rows = [
        np.stack([colourize(labels), to_uint8(mixed)]),
        np.concatenate([colourize(scenes["masks"][1:3]), to_uint8(scenes["images"][1:3])]),
    ]
    path = save_png(image_grid(rows), args.out / "mixture.png", scale=2)
    print(f"wrote {path} (top: label map, mixture; bottom: reference label maps, reference images)")


if __name__ == "__main__":
    main()
