"""Where does a class's code stop mattering in the decoder? For every class, on held-out scenes
where it covers at least 64 pixels: redraw only that class's code (4 draws of the preset's code
prior, the other classes keeping one fixed draw) and measure, after the decoder's `fc` layer and
after every block, the relative change of the features inside the class's region,
`|f(z') - f(z)| / |f(z)|` (L2 over channels, averaged over the region's pixels, the draws and
the scenes; the features resized to the image size). A class whose influence is already near 0
after `fc` was ignored from the start; one that is large early and vanishes later is lost in the
later blocks.

    python scripts/code_influence_probe.py groupdnet_shapes64 mulnet_shapes64
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def stage_features(model, z: np.ndarray, segmap) -> list[np.ndarray]:
    """The decoder's features after `fc` and after every block, as NumPy arrays."""
    from keras import ops

    x = model.fc(z)
    features = [x]
    for spec, block in zip(model.schedule.blocks, model.blocks, strict=True):
        if spec.upsample:
            x = model.upsample(x)
        x = block(x, segmap, training=False)
        features.append(x)
    return [np.asarray(ops.convert_to_numpy(f)) for f in features]


def region_change(before: np.ndarray, after: np.ndarray, region: np.ndarray) -> float:
    """Mean over the region of |after - before| / |before| (channel L2), at the region's
    resolution (nearest-neighbour: the region's mask is subsampled to the features' grid)."""
    size = region.shape[0]
    step = size // before.shape[0]
    small = region[step // 2 :: step, step // 2 :: step]
    if not small.any():
        return float("nan")
    change = np.linalg.norm(after - before, axis=-1)[small]
    scale = np.linalg.norm(before, axis=-1)[small] + 1e-6
    return float((change / scale).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("presets", nargs="+", help="zoo names or preset folders")
    parser.add_argument("--scenes", type=int, default=16, help="held-out scenes")
    parser.add_argument("--draws", type=int, default=4)
    args = parser.parse_args()
    from smis_layers.data.synthetic import HELD_OUT_SEED, SyntheticShapes
    from smis_layers.models import from_preset

    masks = SyntheticShapes(64, 8, seed=HELD_OUT_SEED).batch(np.arange(args.scenes))["masks"]
    for preset in args.presets:
        model = from_preset(preset)
        stages = ["fc", *(f"block {i + 1}" for i in range(len(model.blocks)))]
        print(f"\n{preset}: relative feature change inside the class's region")
        print("| class | " + " | ".join(stages) + " |")
        print("|---|" + "---|" * len(stages))
        base = model.sample_z(len(masks), seed=7)
        segmap = model.segmap(masks)
        reference = stage_features(model, base, segmap)
        for c in range(model.num_classes):
            changes = np.full((args.draws, len(stages), len(masks)), np.nan)
            for d in range(args.draws):
                code = model.class_code(model.sample_z(len(masks), seed=100 + d), c)
                features = stage_features(model, model.with_class_code(base, c, code), segmap)
                for s, (before, after) in enumerate(zip(reference, features, strict=True)):
                    for i, mask in enumerate(masks):
                        if (mask == c).sum() >= 64:
                            changes[d, s, i] = region_change(before[i], after[i], mask == c)
            cells = [f"{np.nanmean(changes[:, s]):.3f}" for s in range(len(stages))]
            print(f"| {c} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
