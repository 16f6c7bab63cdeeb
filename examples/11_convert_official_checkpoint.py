"""Converting an official SMIS checkpoint.

Converts the official PyTorch checkpoints of GroupDNet (`latest_net_G.pth`, `latest_net_E.pth`
from the Seanseattle/SMIS repository) into a preset folder, loads it with
`GroupDNet.from_preset` and draws a few images. The files are read with
`torch.load(weights_only=True)` (no code runs); every tensor must match the architecture by
name and shape, spectral norm is folded as PyTorch does in eval mode (docs/converting.md).
The official weights are CC BY-NC-SA 4.0, and so are converted ones.

No official checkpoint can be downloaded where this library is tested, so --smoke first writes
a fake one: a DeepFashion-style network with the official tensor names but tiny widths and
random values (names and shapes come from the converter's own list of expected tensors). It
needs PyTorch (`pip install "smis-layers[torch]"`); without it the script says so and stops.

    python examples/11_convert_official_checkpoint.py --generator latest_net_G.pth
        --encoder latest_net_E.pth --config deepfashion [--labels LABEL_MAP.png] [--out DIR]
    python examples/11_convert_official_checkpoint.py --smoke

Takes about 30 s on a 2-core CPU for --smoke; with the official checkpoints, as long as
building the official network (109M parameters for DeepFashion) and reading its tensors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quiet TensorFlow; set before importing it

import numpy as np


def write_fake_official_checkpoints(model, directory: Path) -> tuple[Path, Path]:
    """Random state dicts with the official names and shapes for `model`'s architecture,
    saved as the official code saves them (`torch.save(net.state_dict(), path)`)."""
    import torch

    # The converter's list of the tensors it expects, {name: PyTorch shape} (a private helper:
    # only a fake checkpoint needs it).
    from smis_layers.convert.official import _encoder_plan, _generator_plan

    rng = np.random.default_rng(0)

    def fake(name: str, shape: tuple[int, ...]) -> torch.Tensor:
        if name.endswith(("weight_u", "weight_v")):  # spectral norm's unit vectors
            value = rng.normal(size=shape)
            value /= np.linalg.norm(value)
        elif name.endswith("running_var"):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.normal(0.0, 0.05, shape)
        return torch.tensor(value, dtype=torch.float32)

    paths = []
    for plan, filename in (
        (_generator_plan(model), "latest_net_G.pth"),
        (_encoder_plan(model), "latest_net_E.pth"),
    ):
        state = {name: fake(name, shape) for name, shape in plan.shapes.items()}
        for name in plan.optional:  # batch norm's counters, which the converter skips
            state[name] = torch.tensor(1000)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(state, directory / filename)
        paths.append(directory / filename)
    return paths[0], paths[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generator", type=Path, help="official latest_net_G.pth")
    parser.add_argument("--encoder", type=Path, help="official latest_net_E.pth (optional)")
    parser.add_argument("--config", choices=("deepfashion", "cityscapes", "ade20k"))
    parser.add_argument("--labels", type=Path, help="a label map (PNG or .npy) to draw")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/11"))
    parser.add_argument("--smoke", action="store_true", help="a fake tiny checkpoint (tests)")
    args = parser.parse_args(argv)
    try:
        import torch  # noqa: F401  (reading .pth files needs PyTorch)
    except ImportError:
        print('PyTorch is not installed: pip install "smis-layers[torch]"; nothing to do.')
        return 0

    from smis_layers import GroupDecreasingSchedule
    from smis_layers import applications as apps
    from smis_layers.convert import convert_official_checkpoint
    from smis_layers.models import GroupDNet
    from smis_layers.presets import preset_metadata
    from smis_layers.utils.images import colourize, image_grid, save_png, to_uint8

    if args.smoke:
        # The official DeepFashion network (256x256, C = 8, 7 CGBlocks) with ngf 8 instead of
        # 160 and an encoder of width 16 instead of 256.
        config = GroupDNet.official(
            "deepfashion",
            schedule=GroupDecreasingSchedule.official("deepfashion", ngf=8).get_config(),
            encoder_channels=16,
        ).get_config()
        generator_path, encoder_path = write_fake_official_checkpoints(
            GroupDNet.from_config(config), args.out / "fake_official"
        )
    else:
        if args.generator is None or args.config is None:
            parser.error("--generator and --config are required (or --smoke)")
        config, generator_path, encoder_path = args.config, args.generator, args.encoder

    # The same as: smis convert-official --generator G --encoder E --config NAME --out DIR
    preset = convert_official_checkpoint(
        generator_path, encoder_path, config, args.out / "preset", overwrite=True
    )
    conversion = preset_metadata(preset)["conversion"]
    print(f"wrote {preset}: {json.dumps(conversion['tensors'])} tensors converted")

    model = GroupDNet.from_preset(preset)
    if args.labels is not None:  # e.g. a DeepFashion label map of cihp_test_mask/
        label_maps = apps.load_labels(args.labels, model)[None]
    elif model.num_classes <= 16 and model.image_size[0] == model.image_size[1]:
        label_maps = apps.example_labels(model, 2)  # synthetic scenes: shapes, not people
    else:
        print("pass --labels with one of the dataset's label maps to draw images")
        return 0
    rows = [
        np.concatenate([colourize(m)[None], to_uint8(apps.sample(model, m, n=2, seed=0))])
        for m in label_maps
    ]
    path = save_png(image_grid(rows), args.out / "samples.png")
    print(f"wrote {path}" + (" (random weights: noise is expected)" if args.smoke else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
