"""Where does a grouped decoder's noise come from? Reconstructs held-out scenes twice: as the
model does, and with each class's group of the last block's features zeroed outside that
class's region before the RGB convolution (a diagnostic, not the model). If the noise goes away,
it is painted by other classes' groups outside their regions, which the dense RGB convolution
mixes into every pixel (as in the first GroupNet preset, 2 channels per class in its last
block; docs/zoo.md). Prints the mean |feature| of each group inside and outside its class
and the reconstructions' pixel L1, and writes a sheet: real images, reconstructions, gated.

Needs a model whose last decoder block has one group per class (GroupNet; MulNet composes per
class anyway).

    python scripts/group_feature_gating.py groupnet_shapes64 --out groupnet_gating.png
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset", help="zoo name or preset folder")
    parser.add_argument("--scenes", type=int, default=6, help="held-out scenes")
    parser.add_argument("--out", required=True, help="PNG sheet to write")
    args = parser.parse_args()

    from keras import ops

    from smis_layers.applications import example_data
    from smis_layers.data.synthetic import HELD_OUT_SEED
    from smis_layers.models import from_preset
    from smis_layers.utils.images import image_grid, save_png, to_uint8

    model = from_preset(args.preset)
    classes, last_groups = model.num_classes, model.schedule.blocks[-1].groups
    if last_groups != classes:
        raise SystemExit(
            f"preset: expected a last decoder block with one group per class ({classes}), "
            f"got {last_groups} groups"
        )
    data = example_data(model, args.scenes, seed=HELD_OUT_SEED)
    images = np.asarray(data["images"], "float32")
    segmap = model.segmap(data["masks"])
    mu, _ = model.encode_segmap(images, segmap)  # the codes `encode` gives: posterior means
    features = ops.convert_to_numpy(ops.cast(model.decoder_features(mu, segmap), "float32"))
    per_class = features.shape[-1] // classes
    own_region = np.repeat(ops.convert_to_numpy(segmap)[..., :classes], per_class, axis=-1)
    inside = np.abs(features)[own_region > 0].mean()
    outside = np.abs(features)[own_region == 0].mean()
    print(f"mean |feature| of a class's group: inside {inside:.3f}, outside {outside:.3f}")
    reconstructed, gated = (
        ops.convert_to_numpy(ops.cast(model.render_features(f, segmap), "float32"))
        for f in (features, features * own_region)
    )
    for name, result in (("reconstruction", reconstructed), ("gated", gated)):
        print(f"{name} pixel L1 to the real images: {np.abs(result - images).mean():.3f}")
    rows = [to_uint8(images), to_uint8(reconstructed), to_uint8(gated)]
    print(save_png(image_grid(rows), args.out, scale=2))


if __name__ == "__main__":
    main()
