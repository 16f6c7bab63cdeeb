"""Evaluating models: mCSD / mOCD, diversity, and the full table of the zoo.

First the weight-free metrics on one preset: the paper's mCSD (resampling class c's code
changes class c: higher is better) and mOCD (it changes nothing else: lower is better), scored
with the masked L1 distance, and the overall diversity. Then `evaluate_presets`, which adds the
segmenter-based scores (domain FID, mIoU, pixel accuracy, with the benchmark's segmenter preset
`segmenter_shapes64`), the appearance-swap score of the synthetic benchmark, parameter counts
and throughput, and writes the Markdown table that docs/evaluation.md describes. The paper's
LPIPS distance and Inception FID need local weight files (`smis_layers.metrics.LPIPS`,
`inception_v3_feature_extractor`); nothing is downloaded.

    python examples/10_evaluate_models.py [--presets groupdnet_shapes64 ...] [--n-images 16]
        [--out DIR] [--smoke]

Takes one to two minutes per preset with the default 16 images on a shared 2-core CPU (77 s
measured for one preset; the zoo's table, `smis evaluate`, uses 64 images: about 8 minutes per
preset, most of it mCSD / mOCD); --smoke (2 images, one preset) about 40 s.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quiet TensorFlow; set before importing it

import numpy as np

from smis_layers.data import SyntheticShapes
from smis_layers.metrics import (
    class_specific_diversity,
    evaluate_presets,
    markdown_table,
    masked_l1_distance,
    overall_diversity,
)
from smis_layers.models import from_preset
from smis_layers.presets import available_presets, preset_metadata

SEGMENTER = "segmenter_shapes64"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", help="default: every generator of the zoo")
    parser.add_argument("--n-images", type=int, default=16, help="held-out label maps per preset")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/10"))
    parser.add_argument("--smoke", action="store_true", help="tiny and fast (used by the tests)")
    args = parser.parse_args(argv)
    generators = [
        p for p in available_presets() if preset_metadata(p)["class_name"] != "ShapesSegmenter"
    ]
    presets = args.presets or (generators[:1] if args.smoke else generators)
    n_images, num_samples = (2, 2) if args.smoke else (args.n_images, 6)

    # 1. The weight-free metrics of one preset, on held-out label maps of the synthetic benchmark.
    model = from_preset(presets[0])
    label_maps = SyntheticShapes(image_size=64, seed=1000).batch(np.arange(n_images))["masks"]
    scores = class_specific_diversity(
        model, label_maps, masked_l1_distance(), num_samples=num_samples, seed=0
    )
    diversity = overall_diversity(model, label_maps, masked_l1_distance(), num_samples=num_samples)
    print(f"{presets[0]} on {n_images} held-out label maps (masked L1):")
    print(f"  mCSD {scores['mcsd']:.4f} (higher is better), mOCD {scores['mocd']:.4f} (lower)")
    print(f"  per class CSD {np.round(scores['csd_per_class'], 3).tolist()}")
    print(f"  overall diversity {diversity['diversity']:.4f}")

    # 2. The full table (the segmenter is a preset of the zoo too).
    if SEGMENTER not in available_presets():
        print(f"the segmenter preset {SEGMENTER} is not installed: skipping evaluate_presets")
        return
    rows = evaluate_presets(
        presets,
        n_images=n_images,
        seed=0,
        segmenter=SEGMENTER,
        num_samples=num_samples,
        progress=not args.smoke,
        timing_repeats=0 if args.smoke else 3,
    )
    table = markdown_table(rows)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "evaluation.md").write_text(table + "\n")
    print(f"wrote {args.out / 'evaluation.md'}")


if __name__ == "__main__":
    main()
