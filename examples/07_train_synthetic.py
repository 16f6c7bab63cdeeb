"""Training GroupDNet on the synthetic benchmark.

Trains `groupdnet_shapes64` (C = 8 classes, 64x64 images) with `SMISTrainer` (one generator
and one discriminator step per batch: hinge GAN, feature matching, KL, plus the zoo's pixel
L1 reconstruction term in place of the VGG19 perceptual loss, whose weights are not
downloaded), exports the generator as a preset folder, reloads it and writes a sample sheet.
The loss weights and learning rates are the zoo's (`scripts/train_zoo.sh`, which also
computes in bfloat16 and trains 1,500 steps, then extends the run to 3,000). For long runs use
the resumable command instead, which adds checkpoints and restarts where a killed run stopped:
`smis train --model groupdnet_shapes64 --steps 1500 --reconstruction-weight 10
--kl-weight 0.0002 --prior-gan-weight 1 --lr-g 4e-4 --lr-d 1e-4 --out runs/g64`, then
`--extend` to go on.

    python examples/07_train_synthetic.py [--steps 200] [--batch-size 16] [--out DIR] [--smoke]

Takes about 1 s per step at batch 16 on an idle 2-core CPU: 3.8 minutes measured for the
whole script at the default 200 steps, after which the samples show the layouts faintly under
coloured noise (the zoo's presets train for 3,000 steps). --smoke: a tiny network, 1 step,
about 30 s.
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quiet TensorFlow; set before importing it

import numpy as np

from smis_layers import GroupDecreasingSchedule
from smis_layers import applications as apps
from smis_layers.data import SyntheticShapes, synthetic_tf_dataset
from smis_layers.models import GroupDNet, MultiScaleDiscriminator, build_architecture, from_preset
from smis_layers.training import SMISTrainer, ttur_optimizer
from smis_layers.utils.images import colourize, image_grid, save_png, to_uint8


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("runs/examples/07"))
    parser.add_argument("--smoke", action="store_true", help="tiny and fast (used by the tests)")
    args = parser.parse_args(argv)

    if args.smoke:  # a tiny GroupDNet (decoder widths 4 x 8 .. 4) and discriminator
        schedule = GroupDecreasingSchedule.decreasing(8, 4, 64, norm_hidden_channels=16)
        generator = GroupDNet(num_classes=8, image_size=64, schedule=schedule, encoder_channels=8)
        discriminator = MultiScaleDiscriminator(num_layers=2, base_filters=8)
        steps, batch_size = 1, 2
    else:
        generator = build_architecture("groupdnet_shapes64")  # 0.5M-parameter generator
        discriminator = MultiScaleDiscriminator(base_filters=32)  # 2 scales, 4 layers
        steps, batch_size = args.steps, args.batch_size
    print("decoder:\n" + generator.schedule.table())

    with warnings.catch_warnings():  # the no-VGG19 notice: expected here
        warnings.simplefilter("ignore")
        trainer = SMISTrainer(generator, discriminator)
    # The zoo's recipe: Adam (beta_1 0, beta_2 0.9) with a slower discriminator, pixel L1, a
    # small KL weight and the prior GAN term. --smoke runs eagerly: tracing the step would take
    # longer than the step itself.
    trainer.compile(
        g_optimizer=ttur_optimizer(4e-4),
        d_optimizer=ttur_optimizer(1e-4),
        reconstruction_weight=10.0,
        kl_weight=0.0002,
        prior_gan_weight=1.0,
        run_eagerly=args.smoke,
    )
    data = synthetic_tf_dataset(SyntheticShapes(image_size=64, num_classes=8, seed=0), batch_size)
    verbose = 0 if args.smoke else 1  # a progress bar
    history = trainer.fit(data, steps_per_epoch=steps, shuffle=False, verbose=verbose)
    losses = {k: round(float(v[-1]), 4) for k, v in history.history.items()}
    print(f"losses after {steps} steps: {losses}")
    assert all(np.isfinite(v) for v in losses.values())

    # Export, reload (verifying the files' sha256) and sample from held-out label maps.
    preset = generator.save_to_preset(
        args.out / "preset", metadata={"trained_by": "examples/07", "steps": steps}, overwrite=True
    )
    model = from_preset(preset)
    label_maps = apps.example_labels(model, 3)
    rows = [
        np.concatenate([colourize(m)[None], to_uint8(apps.sample(model, m, n=4, seed=0))])
        for m in label_maps
    ]
    path = save_png(image_grid(rows), args.out / "samples.png", scale=2)
    print(f"wrote the preset {preset} and {path}")


if __name__ == "__main__":
    main()
