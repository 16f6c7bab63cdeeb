"""Named architectures (untrained): the official GroupDNet networks and the small *_shapes64
models of the synthetic benchmark, which train on a CPU.

The *_shapes64 models share C=8 classes, 64x64 images, 4x4 latents with 8 channels per class
(12 in the zoo v3 presets, whose region colour and two texture waves take 11), CGNorm hidden
width 64 (16 for the SPADE baselines) and a generator budget of roughly 0.5M parameters (widths
chosen per model to match it; the table is in docs/models.md).
"""

from __future__ import annotations

from smis_layers.data.datasets import DATASETS
from smis_layers.layers.group_decreasing_schedule import GroupDecreasingSchedule
from smis_layers.models.baselines import VSPADE, GroupEnc, GroupNet, MulNet
from smis_layers.models.groupdnet.groupdnet import GroupDNet
from smis_layers.models.region_codes import REGION_TEXTURE_MAX_WAVES

SHAPES64_CLASSES = 8
SHAPES64_SIZE = 64
SHAPES64_HIDDEN = 64
SHAPES64_LATENT = 8


def _recipe(
    model_class,
    classes: int,
    size: int,
    base_filters: int,
    groups: int | None,
    encoder_channels: int,
    hidden: int,
    latent_channels: int = SHAPES64_LATENT,
    width_multipliers: tuple[int, ...] | None = None,
):
    """(model class, config) of the small-model recipe: a decreasing schedule from `classes`
    groups (`groups` None) or a constant one, crop_resize split."""
    widths = {
        "norm_hidden_channels": hidden,
        "width_multipliers": width_multipliers,
        "latent_channels": latent_channels,
    }
    if groups is None:
        schedule = GroupDecreasingSchedule.decreasing(classes, base_filters, size, **widths)
    else:
        schedule = GroupDecreasingSchedule.constant(
            classes, base_filters, size, groups=groups, **widths
        )
    config = {
        "num_classes": classes,
        "image_size": (size, size),
        "schedule": schedule.get_config(),
        "encoder_channels": encoder_channels,
        "split_mode": "crop_resize",
    }
    return model_class, config


def _shapes64(
    model_class,
    base_filters: int,
    groups: int | None,
    encoder_channels: int,
    hidden: int = SHAPES64_HIDDEN,
    width_multipliers: tuple[int, ...] | None = None,
    latent_channels: int = SHAPES64_LATENT,
):
    return _recipe(
        model_class,
        SHAPES64_CLASSES,
        SHAPES64_SIZE,
        base_filters,
        groups,
        encoder_channels,
        hidden,
        latent_channels=latent_channels,
        width_multipliers=width_multipliers,
    )


def _with_region_codes(architecture, texture_waves: int = 0):
    """The architecture with the region colour code, and `texture_waves` waves of the region
    texture code when given."""
    model_class, config = architecture
    config = {**config, "region_colour_code": True}
    if texture_waves:
        config["region_texture_code"] = texture_waves
    return model_class, config


ARCHITECTURES = {
    # Zoo v2: the first 3 channels of each class's code carry its region's mean colour, which
    # keeps every class's code in use (docs/zoo.md). Zoo v3 (the flagship, MulNet, GroupEnc)
    # adds two texture waves (8 channels), so 12 latent channels per class.
    "groupdnet_shapes64": _with_region_codes(
        _shapes64(GroupDNet, 12, None, 16, latent_channels=12), texture_waves=2
    ),
    # With 8 groups in every block, the default widths (256 ... 16) left each class 2 channels at
    # 64x64 and the preset drew speckle; the last blocks are cheap in parameters, so they keep
    # 8 channels per class (64 wide) within the budget. Trained with the zoo v2 recipe without
    # the colour code, it used 2 of its 8 class codes (docs/zoo.md).
    "groupnet_shapes64": _with_region_codes(
        _shapes64(GroupNet, 16, SHAPES64_CLASSES, 16, width_multipliers=(16, 8, 4, 4, 4))
    ),
    "mulnet_shapes64": _with_region_codes(
        _shapes64(MulNet, 16, SHAPES64_CLASSES, 16, latent_channels=12), texture_waves=2
    ),
    # The SPADE baselines' CGNorm convolutions are dense (groups 1): at hidden width 64 they take
    # most of the budget and left a decoder 3 channels wide at 64x64, which drew blotches. Hidden
    # 16 (still twice C) buys twice the decoder width within the same budget.
    "groupenc_shapes64": _with_region_codes(
        _shapes64(GroupEnc, 6, 1, 16, hidden=16, latent_channels=12), texture_waves=2
    ),
    "vspade_shapes64": _shapes64(VSPADE, 6, 1, 8, hidden=16),
}
OFFICIAL = tuple(DATASETS)  # the official networks, one per dataset of the table


#: Small models for any dataset, by family:
#: `FAMILY:classes=C,size=S,width=W[,encoder=E][,latent=K][,colour=1][,texture=N]`
#: (see `small_architecture`).
SMALL_FAMILIES = {
    "groupdnet": GroupDNet,
    "groupnet": GroupNet,
    "mulnet": MulNet,
    "groupenc": GroupEnc,
    "vspade": VSPADE,
}
SMALL_KEYS = ("classes", "size", "width", "encoder", "latent", "colour", "texture")
#: Settings that may be 0, with their largest value: switches (1 on, 0 off) and counts.
SMALL_SWITCHES = {"colour": 1, "texture": REGION_TEXTURE_MAX_WAVES}
SMALL_DEFAULTS = {"size": 64, "width": 16}


def parse_small_architecture(name: str) -> tuple[str, dict[str, int]]:
    """`"FAMILY:key=value,..."` -> (family, settings), or a ValueError naming the bad part."""
    family, _, text = name.partition(":")
    if family not in SMALL_FAMILIES:
        raise ValueError(
            f"Unknown model family {family!r} in {name!r}; expected one of {sorted(SMALL_FAMILIES)}"
        )
    settings = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key not in SMALL_KEYS:
            raise ValueError(f"Unknown setting {key!r} in {name!r}; expected keys {SMALL_KEYS}")
        if key in SMALL_SWITCHES:
            allowed = [str(v) for v in range(SMALL_SWITCHES[key] + 1)]
            if value not in allowed:
                raise ValueError(
                    f"Setting {key} in {name!r} must be one of {', '.join(allowed)}; received "
                    f"{value!r}"
                )
        elif not value.isdigit() or int(value) < 1:
            raise ValueError(
                f"Setting {key} in {name!r} must be a positive integer; received {value!r}"
            )
        settings[key] = int(value)
    return family, {**SMALL_DEFAULTS, **settings}


def complete_architecture_name(name: str, num_classes: int) -> str:
    """A small architecture's canonical name, its class count filled in from the data when
    absent (other names are returned as they are)."""
    if ":" not in name:
        return name
    family, settings = parse_small_architecture(name)
    settings.setdefault("classes", num_classes)
    return f"{family}:" + ",".join(f"{k}={settings[k]}" for k in SMALL_KEYS if k in settings)


def small_architecture(name: str):
    """(model class, config) of `FAMILY:classes=C,size=S,width=W[,encoder=E][,latent=K]
    [,colour=1][,texture=N]`: the recipe of the *_shapes64 models at any class count and size.
    S is the square image size (a power of two times the 4x4 latent), W the width unit
    (`base_filters`: the first blocks are 16W wide), E the encoder's base channels (a multiple
    of C for the grouped encoders; default 2C, 8 for VSPADE's ungrouped one), K the latent
    channels per class (default 8); `colour=1` switches `region_colour_code` on and
    `texture=N` gives `region_texture_code` N waves per class, 1 or 2 (neither in the paper;
    docs/zoo.md; the colour and two waves take 11 channels, so `latent=12`). GroupDNet's groups
    decrease from C (`GroupDecreasingSchedule.decreasing`, which warns when W makes its first
    layers mix classes); GroupNet and MulNet keep C groups; GroupEnc and VSPADE use 1."""
    family, settings = parse_small_architecture(name)
    if "classes" not in settings:
        raise ValueError(f"{name!r} names no class count; add classes=C")
    c, size, width = settings["classes"], settings["size"], settings["width"]
    model_class = SMALL_FAMILIES[family]
    spade = family in ("groupenc", "vspade")
    hidden = 16 if spade else SHAPES64_HIDDEN
    # None: decreasing from C groups (GroupDNet); the SPADE baselines' decoders are dense.
    groups = None if family == "groupdnet" else 1 if spade else c
    # VSPADE's single encoder is not grouped: per-class widths would make it the largest part.
    encoder = settings.get("encoder", 8 if family == "vspade" else 2 * c)
    latent = settings.get("latent", SHAPES64_LATENT)
    model_class, config = _recipe(model_class, c, size, width, groups, encoder, hidden, latent)
    if settings.get("colour"):
        config["region_colour_code"] = True
    if settings.get("texture"):
        config["region_texture_code"] = True if settings["texture"] == 1 else settings["texture"]
    return model_class, config


def is_architecture(name: str) -> bool:
    """Whether `build_architecture` knows `name` (without building anything)."""
    official = name.startswith("groupdnet_") and name.removeprefix("groupdnet_") in OFFICIAL
    if name in ARCHITECTURES or official:
        return True
    if ":" in name:
        parse_small_architecture(name)  # a malformed spec says what is wrong
        return True
    return False


def available_architectures() -> list[str]:
    return sorted([*ARCHITECTURES, *(f"groupdnet_{name}" for name in OFFICIAL)])


def build_architecture(name: str, **overrides) -> GroupDNet:
    """An untrained model by architecture name (or small spec `FAMILY:classes=C,size=S,width=W`,
    see `small_architecture`); keyword arguments override its config."""
    if name.startswith("groupdnet_") and name.removeprefix("groupdnet_") in OFFICIAL:
        return GroupDNet.official(name.removeprefix("groupdnet_"), **overrides)
    if ":" in name:
        model_class, config = small_architecture(name)
        return model_class(**{**config, **overrides})
    if name not in ARCHITECTURES:
        raise ValueError(f"Unknown architecture {name!r}; available: {available_architectures()}")
    model_class, config = ARCHITECTURES[name]
    return model_class(**{**config, **overrides})
