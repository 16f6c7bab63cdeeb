"""Sampling from a zoo preset.

Loads the pretrained preset `groupdnet_shapes64` (shipped with the library; its files' sha256
are verified on loading), takes built-in example label maps (held-out scenes of the synthetic
benchmark) and draws several images per label map, each from fresh per-class codes. Writes a
grid (one row per label map: the label map, then the samples) and the label maps as .npy files
that the command line takes too: `smis sample --labels DIR/labels_0.npy --n 8 --out sample.png`.

    python examples/02_sample_from_zoo.py [--preset NAME_OR_FOLDER] [--out DIR] [--smoke]

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
from smis_layers.presets import preset_metadata
from smis_layers.utils.images import colourize, image_grid, save_png, to_uint8


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="groupdnet_shapes64", help="zoo name or folder")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/02"))
    parser.add_argument("--smoke", action="store_true", help="tiny and fast (used by the tests)")
    args = parser.parse_args(argv)
    num_maps, per_map = (1, 2) if args.smoke else (4, 6)

    model = from_preset(args.preset)
    meta = preset_metadata(args.preset)
    print(f"{args.preset}: {meta['class_name']}, {meta['parameters']:,} parameters,")
    print(f"  {model.num_classes} classes, {model.image_size} images, codes {model.latent_shape}")

    label_maps = apps.example_labels(model, num_maps)  # (num_maps, H, W) integer label maps
    rows = []
    for i, labels in enumerate(label_maps):
        images = apps.sample(model, labels, n=per_map, seed=i)  # (n, H, W, 3) in [-1, 1]
        rows.append(np.concatenate([colourize(labels)[None], to_uint8(images)]))
    args.out.mkdir(parents=True, exist_ok=True)
    for i, labels in enumerate(label_maps):
        np.save(args.out / f"labels_{i}.npy", labels)
    path = save_png(image_grid(rows), args.out / "samples.png", scale=2)
    print(f"wrote {path} and {len(label_maps)} label map(s) as .npy")


if __name__ == "__main__":
    main()
