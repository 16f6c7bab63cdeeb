"""Named architectures (untrained): the official GroupDNet networks and the small *_shapes64
models of the synthetic benchmark, which train on a CPU.

The *_shapes64 models share C=8 classes, 64x64 images, 4x4 latents with 8 channels per class,
CGNorm hidden width 64 (16 for the SPADE baselines) and a generator budget of roughly 0.5M
parameters (widths chosen per model to match it; the table is in docs/models.md).
"""

from __future__ import annotations

from smis_layers.layers.group_decreasing_schedule import GroupDecreasingSchedule
from smis_layers.models.baselines import VSPADE, GroupEnc, GroupNet, MulNet
from smis_layers.models.groupdnet.groupdnet import GroupDNet

SHAPES64_CLASSES = 8
SHAPES64_SIZE = 64
SHAPES64_HIDDEN = 64


def _shapes64(
    model_class,
    base_filters: int,
    groups: int | None,
    encoder_channels: int,
    hidden: int = SHAPES64_HIDDEN,
    width_multipliers: tuple[int, ...] | None = None,
):
    c, size = SHAPES64_CLASSES, SHAPES64_SIZE
    widths = {"norm_hidden_channels": hidden, "width_multipliers": width_multipliers}
    if groups is None:
        schedule = GroupDecreasingSchedule.decreasing(c, base_filters, size, **widths)
    else:
        schedule = GroupDecreasingSchedule.constant(c, base_filters, size, groups=groups, **widths)
    config = {
        "num_classes": c,
        "image_size": (size, size),
        "schedule": schedule.get_config(),
        "encoder_channels": encoder_channels,
        "split_mode": "crop_resize",
    }
    return model_class, config


ARCHITECTURES = {
    "groupdnet_shapes64": _shapes64(GroupDNet, 12, None, 16),
    # With 8 groups in every block, the default widths (256 ... 16) left each class 2 channels at
    # 64x64 and the preset drew speckle; the last blocks are cheap in parameters, so they keep
    # 8 channels per class (64 wide) within the budget.
    "groupnet_shapes64": _shapes64(
        GroupNet, 16, SHAPES64_CLASSES, 16, width_multipliers=(16, 8, 4, 4, 4)
    ),
    "mulnet_shapes64": _shapes64(MulNet, 16, SHAPES64_CLASSES, 16),
    # The SPADE baselines' CGNorm convolutions are dense (groups 1): at hidden width 64 they take
    # most of the budget and left a decoder 3 channels wide at 64x64, which drew blotches. Hidden
    # 16 (still twice C) buys twice the decoder width within the same budget.
    "groupenc_shapes64": _shapes64(GroupEnc, 6, 1, 16, hidden=16),
    "vspade_shapes64": _shapes64(VSPADE, 6, 1, 8, hidden=16),
}
OFFICIAL = ("deepfashion", "cityscapes", "ade20k")


def available_architectures() -> list[str]:
    return sorted([*ARCHITECTURES, *(f"groupdnet_{name}" for name in OFFICIAL)])


def build_architecture(name: str, **overrides) -> GroupDNet:
    """An untrained model by architecture name; keyword arguments override its config."""
    if name.startswith("groupdnet_") and name.removeprefix("groupdnet_") in OFFICIAL:
        return GroupDNet.official(name.removeprefix("groupdnet_"), **overrides)
    if name not in ARCHITECTURES:
        raise ValueError(f"Unknown architecture {name!r}; available: {available_architectures()}")
    model_class, config = ARCHITECTURES[name]
    return model_class(**{**config, **overrides})
