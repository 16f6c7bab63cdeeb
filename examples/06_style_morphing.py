"""Style morphing: interpolate the codes of two real images.

Two held-out images are encoded into per-class codes; the first one's label map is then drawn with
codes on the line between them (`applications.morph`), which gives a smooth change of
appearance. A second strip morphs only one class (the other classes keep the first image's
codes), which only per-class codes allow. Writes the two strips (PNG) and an animated GIF.

    python examples/06_style_morphing.py [--steps 8] [--preset NAME_OR_FOLDER] [--out DIR] [--smoke]

Takes 20 to 45 s on a shared 2-core CPU (about 6 s of CPU time, most of it importing
TensorFlow); --smoke about the same.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quiet TensorFlow; set before importing it

from PIL import Image

from smis_layers import applications as apps
from smis_layers.models import from_preset
from smis_layers.utils.images import image_grid, save_png, to_uint8


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=8, help="frames per strip")
    parser.add_argument("--preset", default="groupdnet_shapes64", help="zoo name or folder")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/06"))
    parser.add_argument("--smoke", action="store_true", help="tiny and fast (used by the tests)")
    args = parser.parse_args(argv)
    steps = 3 if args.smoke else args.steps

    model = from_preset(args.preset)
    scenes = apps.example_data(model, 2)
    labels = scenes["masks"][0]
    z_a = apps.encode(model, scenes["images"][0], scenes["masks"][0])  # (h, w, 8C)
    z_b = apps.encode(model, scenes["images"][1], scenes["masks"][1])

    whole = apps.morph(model, labels, z_a, z_b, steps=steps)  # every class morphs
    # Only the background (class 0) morphs: its code from z_b, the others' from z_a.
    z_b_background = model.with_class_code(z_a, 0, model.class_code(z_b, 0))
    background = apps.morph(model, labels, z_a, z_b_background, steps=steps)
    strips = [to_uint8(whole), to_uint8(background)]
    path = save_png(image_grid(strips), args.out / "morph.png", scale=2)

    frames = [Image.fromarray(f).resize((128, 128), Image.NEAREST) for f in strips[0]]
    frames += frames[-2:0:-1]  # there and back
    gif = args.out / "morph.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=120, loop=0)
    print(f"wrote {path} (top: all classes, bottom: background only) and {gif}")


if __name__ == "__main__":
    main()
