"""Semantic manipulation: edit the label map, keep every class's appearance.

A real image is encoded with its label map into per-class codes; then the label map is edited
(one class relabelled as another with `replace_class`, another scene's objects pasted in with
`paste_labels`) and drawn with the same codes (`applications.manipulate`), so the classes keep
their look where they move or grow. Classes the image did not contain get prior codes.

    python examples/05_semantic_manipulation.py [--preset NAME_OR_FOLDER] [--out DIR] [--smoke]

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
    parser.add_argument("--out", type=Path, default=Path("runs/examples/05"))
    parser.add_argument("--smoke", action="store_true", help="tiny and fast (used by the tests)")
    args = parser.parse_args(argv)

    model = from_preset(args.preset)
    scenes = apps.example_data(model, 4)
    image, labels = scenes["images"][0], scenes["masks"][0]
    # The shape classes of the label map, largest first.
    shapes = sorted(
        (int(c) for c in np.unique(labels) if c != 0), key=lambda c: -np.sum(labels == c)
    )

    # Edit 1: relabel the largest shape class as the second largest (or as background).
    old, new = shapes[0], shapes[1] if len(shapes) > 1 else 0
    edits = {f"class {old} -> {new}": apps.replace_class(labels, old, new)}
    if not args.smoke:
        # Edit 2: paste another scene's objects (its non-background pixels) over the label map.
        edits["objects of scene 3 pasted"] = apps.paste_labels(labels, scenes["masks"][3])

    rows = []
    for name, edited in edits.items():
        reconstruction, result = apps.manipulate(model, image, labels, edited, seed=0)
        print(f"{name}: {np.sum(edited != labels)} pixels relabelled")
        before = [colourize(labels), to_uint8(image), to_uint8(reconstruction)]
        rows.append(np.stack([*before, colourize(edited), to_uint8(result)]))
    path = save_png(image_grid(rows), args.out / "manipulation.png", scale=2)
    print(
        f"wrote {path} (per row: label map, image, reconstruction, edited label map, edited image)"
    )


if __name__ == "__main__":
    main()
