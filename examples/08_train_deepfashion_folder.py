"""Training on DeepFashion read from its folder.

Reads a dataset folder in the official SMIS DeepFashion layout (`ROOT/train/*.jpg` images and
`ROOT/cihp_train_mask/*.png` label maps of 8 classes; `test` / `cihp_test_mask` for the test
split) with `smis_layers.data.folder_dataset` (images resized bicubic and masks nearest to the
model's size, paired horizontal flips, a resumable shuffled stream), checks every file once,
and trains a GroupDNet on it with `SMISTrainer`. `--model groupdnet_deepfashion` is the official
network (256x256, 96M parameters: a GPU job); `--model groupdnet_shapes64` trains a small
64x64 model on a CPU. With --smoke the script first writes a tiny fake DeepFashion folder (the
synthetic benchmark in that layout, `export_deepfashion_layout`) and trains a tiny network on it.
The command-line equivalent is `smis train --data deepfashion --data-dir ROOT --model ...`.

    python examples/08_train_deepfashion_folder.py --data-dir ROOT [--model groupdnet_shapes64]
        [--steps 1000] [--batch-size 8] [--out DIR]
    python examples/08_train_deepfashion_folder.py --smoke

Takes as long as the steps you ask for (about 2 s per step at batch 16 for
groupdnet_shapes64 on a shared 2-core CPU, as in example 07); --smoke about 30 s.
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quiet TensorFlow; set before importing it

import numpy as np

from smis_layers import GroupDecreasingSchedule
from smis_layers.data import (
    SyntheticShapes,
    export_deepfashion_layout,
    folder_dataset,
    list_samples,
    verify_samples,
)
from smis_layers.models import GroupDNet, MultiScaleDiscriminator, build_architecture
from smis_layers.training import SMISTrainer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, help="DeepFashion root (official SMIS layout)")
    parser.add_argument("--model", default="groupdnet_deepfashion", help="architecture name")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("runs/examples/08"))
    parser.add_argument("--smoke", action="store_true", help="tiny and fast (used by the tests)")
    args = parser.parse_args(argv)

    if args.smoke:
        root = args.out / "fake_deepfashion"  # 8 training and 2 test scenes, 64x64
        export_deepfashion_layout(
            SyntheticShapes(image_size=64, num_classes=8, seed=0), root, 8, 2, overwrite=True
        )
        schedule = GroupDecreasingSchedule.decreasing(8, 4, 64, norm_hidden_channels=16)
        generator = GroupDNet(num_classes=8, image_size=64, schedule=schedule, encoder_channels=8)
        discriminator = MultiScaleDiscriminator(num_layers=2, base_filters=8)
        steps, batch_size = 1, 2
    else:
        if args.data_dir is None:
            parser.error("--data-dir is required (or --smoke for a fake folder)")
        root = args.data_dir
        generator = build_architecture(args.model)
        discriminator = MultiScaleDiscriminator(
            base_filters=64 if "deepfashion" in args.model else 32
        )
        steps, batch_size = args.steps, args.batch_size
    if generator.num_classes != 8:
        raise SystemExit(f"{args.model} has {generator.num_classes} classes; DeepFashion has 8")

    # Pair every image with its label map and read each file once: one error lists every bad
    # file (missing partner, unreadable, labels outside [0, 8)) before training starts.
    samples = list_samples("deepfashion", root, "train")
    verify_samples("deepfashion", samples, generator.image_size)
    print(f"{len(samples)} training pairs in {root}")
    data = folder_dataset(
        "deepfashion", root, "train", generator.image_size, batch_size, flip=True, seed=0
    )

    with warnings.catch_warnings():  # training without VGG19 weights warns once: expected here
        warnings.simplefilter("ignore")
        trainer = SMISTrainer(generator, discriminator)
    # --smoke runs eagerly: tracing the step would take longer than the step itself.
    trainer.compile(run_eagerly=args.smoke)
    verbose = 0 if args.smoke else 1  # a progress bar
    history = trainer.fit(data, steps_per_epoch=steps, shuffle=False, verbose=verbose)
    losses = {k: round(float(v[-1]), 4) for k, v in history.history.items()}
    print(f"losses after {steps} steps: {losses}")
    assert all(np.isfinite(v) for v in losses.values())
    preset = generator.save_to_preset(args.out / "preset", overwrite=True)
    print(f"wrote the preset {preset}")


if __name__ == "__main__":
    main()
