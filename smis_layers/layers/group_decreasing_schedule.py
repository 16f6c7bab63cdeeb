from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence

import keras

from smis_layers.data.datasets import DATASETS, OFFICIAL_BLOCK_NAMES
from smis_layers.utils.validation import require_choice, require_int_pair, require_positive_int

# Read from the dataset table (smis_layers.data.datasets); kept as names of this module.
OFFICIAL_DATASETS = tuple(DATASETS)
OFFICIAL_NUM_CLASSES = {name: facts.num_classes for name, facts in DATASETS.items()}
OFFICIAL_NGF = {name: facts.ngf for name, facts in DATASETS.items()}
OFFICIAL_LATENT_SIZE = {name: facts.latent_size for name, facts in DATASETS.items()}


@dataclasses.dataclass(frozen=True)
class DecoderBlockSpec:
    """One CGBlock of the decoder.

    Attributes:
        name: block name (the official names are head_0, G_middle_0, G_middle_1, up_0..up_3).
        filters: output channels.
        groups: groups of the block's convolutions.
        norm_hidden_channels: hidden width of the block's CGNorm layers.
        norm_shared_groups: groups of CGNorm's shared (segmap) convolution.
        norm_groups: groups of CGNorm's gamma/beta convolutions.
        upsample: whether a nearest x2 upsampling precedes the block.
    """

    name: str
    filters: int
    groups: int
    norm_hidden_channels: int
    norm_shared_groups: int
    norm_groups: int
    upsample: bool


@keras.saving.register_keras_serializable(package="smis_layers")
class GroupDecreasingSchedule:
    """The decoder of GroupDNet: which groups, widths and CGNorm settings each block uses.

    The decoder starts from the latent code `z` of shape `(B, *latent_size, latent_channels * C)`,
    a grouped 3x3 convolution (`input_filters` channels, `input_groups` groups), then the CGBlocks
    of `blocks` (nearest x2 upsampling before the blocks that ask for it), then LeakyReLU, a 3x3
    convolution to RGB and tanh. The groups decrease from C towards 1 so that the classes' streams
    start apart and merge gradually: that is the "group decreasing" of GroupDNet.

    Build one with `official(...)` (the official networks, exactly), `decreasing(...)` (a rule for
    any number of classes and output size) or `constant(...)` (no decrease: the GroupNet
    baseline), or directly from `DecoderBlockSpec`s. Construction validates the whole schedule.

    Args:
        num_classes: C.
        latent_size: (height, width) of the latent code.
        latent_channels: latent channels per class.
        input_filters: channels after the input convolution.
        input_groups: groups of the input convolution.
        blocks: the decoder blocks, in order.
        require_decreasing: reject schedules whose groups ever increase.

    Examples:
        >>> schedule = GroupDecreasingSchedule.official("deepfashion")
        >>> [block.groups for block in schedule.blocks]
        [8, 8, 4, 4, 2, 2, 1]
        >>> rule = GroupDecreasingSchedule.decreasing(num_classes=6, base_filters=12, image_size=64)
        >>> rule.output_size
        (64, 64)

    Reference:
        Zhu et al., "Semantically Multi-modal Image Synthesis", CVPR 2020, Sec. 3.3.
    """

    def __init__(
        self,
        num_classes: int,
        latent_size: Sequence[int],
        latent_channels: int,
        input_filters: int,
        input_groups: int,
        blocks: Sequence[DecoderBlockSpec | dict],
        require_decreasing: bool = True,
    ):
        self.num_classes = require_positive_int("num_classes", num_classes)
        self.latent_size = tuple(int(v) for v in latent_size)
        if len(self.latent_size) != 2 or min(self.latent_size) < 1:
            raise ValueError(
                f"`latent_size` must be a pair of positive ints; received {latent_size!r}"
            )
        self.latent_channels = require_positive_int("latent_channels", latent_channels)
        self.input_filters = require_positive_int("input_filters", input_filters)
        self.input_groups = require_positive_int("input_groups", input_groups)
        self.blocks = tuple(
            block if isinstance(block, DecoderBlockSpec) else DecoderBlockSpec(**block)
            for block in blocks
        )
        self.require_decreasing = bool(require_decreasing)
        self._validate()

    # ------------------------------------------------------------------ constructors
    @classmethod
    def official(cls, dataset: str, ngf: int | None = None) -> GroupDecreasingSchedule:
        """The decoder of the official GroupDNet code for a dataset of the table.

        The blocks' widths, groups and CGNorm widths are the row's `decoder`
        (`smis_layers.data.datasets.DATASETS[dataset].decoder`).

        Args:
            dataset: one of "deepfashion" (C=8), "cityscapes" (C=35), "ade20k" (C=151).
            ngf: base width (official: 160, 280, 64).
        """
        require_choice("dataset", dataset, OFFICIAL_DATASETS)
        facts = DATASETS[dataset]
        ngf = facts.ngf if ngf is None else require_positive_int("ngf", ngf)
        c, recipe = facts.num_classes, facts.decoder
        widths = [m * ngf for m in recipe.widths]
        if recipe.class_width is not None:
            widths[0] = recipe.class_width * c
        blocks = [
            DecoderBlockSpec(name, filters, *norm, upsample=i > 0)
            for i, (name, filters, *norm) in enumerate(
                zip(
                    OFFICIAL_BLOCK_NAMES,
                    widths,
                    recipe.groups,
                    recipe.norm_hidden,
                    recipe.norm_shared_groups,
                    recipe.norm_groups,
                    strict=True,
                )
            )
        ]
        return cls(c, facts.latent_size, 8, widths[0], recipe.input_groups, blocks)

    @classmethod
    def decreasing(
        cls,
        num_classes: int,
        base_filters: int,
        image_size: int | Sequence[int] = 256,
        latent_size: int | Sequence[int] = 4,
        latent_channels: int = 8,
        halve_every: int = 2,
        final_groups: int = 1,
        norm_hidden_channels: int | None = None,
        width_multipliers: Sequence[int] | None = None,
        start_groups: int | None = None,
    ) -> GroupDecreasingSchedule:
        """A decreasing schedule by rule, for any number of classes and output size.

        One block at the latent size, then one block per x2 upsampling. Block `i` targets
        `num_classes / 2 ** (i // halve_every)` groups (the largest count not above that which
        divides its channels), the last block uses `final_groups`; CGNorm's shared (segmap)
        convolution uses `gcd(groups, num_classes)` groups, so that it splits the segmap's C
        channels (equal to the block's groups whenever they divide C). Widths are
        `width_multipliers * base_filters`, by default 16, ..., 16, 8, 4, 2, 1. With
        `num_classes=8, base_filters=160, image_size=256` this is the official DeepFashion
        decoder.

        The input convolution and the blocks the rule targets at C groups must keep the classes
        apart: their groups must be multiples of C, which needs widths that are. When the
        widths do not allow it, a `ClassMixingWarning` names the layers and the way out (a
        `base_filters` that does, merging classes, or `start_groups` < C, which declares the
        merge from the start and warns about nothing).

        Args:
            num_classes: C.
            base_filters: ngf, the width unit.
            image_size: output size, int or (height, width); a power-of-two multiple of
                `latent_size`.
            latent_size: latent code size, int or (height, width).
            latent_channels: latent channels per class.
            halve_every: blocks between two halvings of the groups.
            final_groups: groups of the last block.
            norm_hidden_channels: CGNorm hidden width (default 128, raised to a multiple of
                the block's groups).
            width_multipliers: one multiplier of `base_filters` per block.
            start_groups: groups of the first block (default `num_classes`).
        """
        num_classes = require_positive_int("num_classes", num_classes)
        base_filters = require_positive_int("base_filters", base_filters)
        halve_every = require_positive_int("halve_every", halve_every)
        start_groups = require_positive_int("start_groups", start_groups or num_classes)
        latent_size = require_int_pair("latent_size", latent_size)
        num_upsamplings = _num_upsamplings(require_int_pair("image_size", image_size), latent_size)
        num_blocks = num_upsamplings + 1
        if width_multipliers is None:
            tail = (8, 4, 2, 1)[-num_blocks:] if num_blocks < 4 else (8, 4, 2, 1)
            width_multipliers = (16,) * (num_blocks - len(tail)) + tail
        if len(width_multipliers) != num_blocks:
            raise ValueError(
                f"`width_multipliers` must have one entry per block ({num_blocks}); "
                f"received {tuple(width_multipliers)}"
            )
        widths = [m * base_filters for m in width_multipliers]
        names = _rule_block_names(num_blocks)
        input_filters = 16 * base_filters if num_blocks >= 4 else widths[0]
        blocks, in_channels, per_class = [], input_filters, []
        for i, filters in enumerate(widths):
            channels = (in_channels, min(in_channels, filters), filters)
            target = final_groups if i == num_blocks - 1 else start_groups / 2 ** (i // halve_every)
            groups = _largest_common_divisor_at_most(channels, max(1, math.floor(target)))
            if target >= num_classes:
                per_class.append((names[i], groups, width_multipliers[i]))
            hidden = _round_up(norm_hidden_channels or 128, groups)
            # CGNorm's shared convolution splits the segmap's C channels: its groups must divide
            # C as well as the hidden width (groups when groups divides C, as officially).
            shared = math.gcd(groups, num_classes)
            blocks.append(
                DecoderBlockSpec(names[i], filters, groups, hidden, shared, groups, i > 0)
            )
            in_channels = filters
        input_groups = _largest_common_divisor_at_most(
            (latent_channels * num_classes, input_filters), start_groups
        )
        if start_groups >= num_classes:
            input_multiplier = input_filters // base_filters
            _warn_if_classes_mix(
                num_classes,
                base_filters,
                [("the input convolution", input_groups, input_multiplier), *per_class],
                next((b.name for b in blocks[len(per_class) :]), None),
            )
        return cls(num_classes, latent_size, latent_channels, input_filters, input_groups, blocks)

    @classmethod
    def constant(
        cls,
        num_classes: int,
        base_filters: int,
        image_size: int | Sequence[int] = 256,
        latent_size: int | Sequence[int] = 4,
        latent_channels: int = 8,
        norm_hidden_channels: int | None = None,
        groups: int | None = None,
        width_multipliers: Sequence[int] | None = None,
    ) -> GroupDecreasingSchedule:
        """Every block keeps the same groups: `num_classes` (the GroupNet baseline: no
        decrease) by default, or `groups=1` for an ordinary SPADE decoder. The other arguments
        are those of `decreasing`."""
        groups = groups or num_classes
        rule = cls.decreasing(
            num_classes,
            base_filters,
            image_size,
            latent_size,
            latent_channels,
            norm_hidden_channels=norm_hidden_channels,
            halve_every=10**9,
            final_groups=groups,
            width_multipliers=width_multipliers,
            start_groups=groups,
        )
        return cls(**{**rule.get_config(), "require_decreasing": False})

    # ------------------------------------------------------------------ properties
    @property
    def num_upsamplings(self) -> int:
        return sum(block.upsample for block in self.blocks)

    @property
    def output_size(self) -> tuple[int, int]:
        scale = 2**self.num_upsamplings
        return (self.latent_size[0] * scale, self.latent_size[1] * scale)

    @property
    def groups(self) -> tuple[int, ...]:
        return tuple(block.groups for block in self.blocks)

    def table(self) -> str:
        """A Markdown table of the blocks."""
        rows = [
            "| block | in -> out | groups | CGNorm hidden / shared / groups | upsample |",
            "|---|---|---|---|---|",
        ]
        in_channels = self.input_filters
        for b in self.blocks:
            rows.append(
                f"| {b.name} | {in_channels} -> {b.filters} | {b.groups} | "
                f"{b.norm_hidden_channels} / {b.norm_shared_groups} / {b.norm_groups} | "
                f"{'x2' if b.upsample else '-'} |"
            )
            in_channels = b.filters
        return "\n".join(rows)

    # ------------------------------------------------------------------ validation
    def _validate(self):
        if not self.blocks:
            raise ValueError("`blocks` must hold at least one DecoderBlockSpec; received none")
        latent = self.latent_channels * self.num_classes
        _check_divides(
            "input convolution",
            "input_groups",
            self.input_groups,
            {"latent channels": latent, "input_filters": self.input_filters},
        )
        in_channels = self.input_filters
        previous_groups = None
        for block in self.blocks:
            for field in (
                "filters",
                "groups",
                "norm_hidden_channels",
                "norm_shared_groups",
                "norm_groups",
            ):
                require_positive_int(f"{block.name}.{field}", getattr(block, field))
            middle = min(in_channels, block.filters)
            _check_divides(
                block.name,
                "groups",
                block.groups,
                {
                    "input channels": in_channels,
                    "middle channels": middle,
                    "filters": block.filters,
                },
            )
            _check_divides(
                block.name,
                "norm_groups",
                block.norm_groups,
                {
                    "input channels": in_channels,
                    "middle channels": middle,
                    "norm_hidden_channels": block.norm_hidden_channels,
                },
            )
            _check_divides(
                block.name,
                "norm_shared_groups",
                block.norm_shared_groups,
                {"norm_hidden_channels": block.norm_hidden_channels},
            )
            if (
                self.require_decreasing
                and previous_groups is not None
                and block.groups > previous_groups
            ):
                raise ValueError(
                    f"Block {block.name}: groups must not increase along the decoder "
                    f"(require_decreasing=True); received {block.groups} after {previous_groups}. "
                    "Pass require_decreasing=False to allow it."
                )
            previous_groups = block.groups
            in_channels = block.filters

    # ------------------------------------------------------------------ serialization
    def get_config(self) -> dict:
        return {
            "num_classes": self.num_classes,
            "latent_size": list(self.latent_size),
            "latent_channels": self.latent_channels,
            "input_filters": self.input_filters,
            "input_groups": self.input_groups,
            "blocks": [dataclasses.asdict(block) for block in self.blocks],
            "require_decreasing": self.require_decreasing,
        }

    @classmethod
    def from_config(cls, config: dict) -> GroupDecreasingSchedule:
        return cls(**config)

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, GroupDecreasingSchedule) and self.get_config() == other.get_config()
        )

    def __hash__(self) -> int:
        return hash(repr(self.get_config()))

    def __repr__(self) -> str:
        return (
            f"GroupDecreasingSchedule(num_classes={self.num_classes}, "
            f"latent_size={self.latent_size}, groups={self.groups}, "
            f"filters={tuple(b.filters for b in self.blocks)})"
        )


class ClassMixingWarning(UserWarning):
    """A rule-based schedule mixes the codes of several classes in a layer that it meant to
    keep per class (its widths are not multiples of the class count)."""


def _warn_if_classes_mix(
    num_classes: int,
    base_filters: int,
    layers: list[tuple[str, int, int]],
    first_merged: str | None,
) -> None:
    """Warns when a layer the rule keeps per class, `(name, groups, width multiplier)`, has
    groups that are not a multiple of C: each group then takes channels of several classes."""
    mixing = [(name, groups) for name, groups, _ in layers if groups % num_classes]
    if not mixing:
        return
    # The smallest base width whose multiples make every such layer's width divisible by C.
    step = math.lcm(*(num_classes // math.gcd(num_classes, m) for _, _, m in layers))
    suggestion = step * -(-base_filters // step)
    where = (
        f"before {first_merged}, where the schedule starts merging groups"
        if first_merged
        else ("in layers the schedule keeps per class")
    )
    shown = ", ".join(f"{name} ({groups} groups)" for name, groups in mixing)
    warnings.warn(
        f"GroupDecreasingSchedule for {num_classes} classes with base_filters={base_filters}: "
        f"{shown} mix the codes of several classes {where}, because their widths are not "
        f"multiples of {num_classes}. To keep every class apart there, use "
        f"base_filters={suggestion} (per-class widths), or merge the classes into fewer groups "
        "(relabel the data, as the official answer to SMIS issue #13 suggests), or pass "
        "start_groups below the class count to declare the merge from the start.",
        ClassMixingWarning,
        stacklevel=3,
    )


def _check_divides(where: str, name: str, groups: int, values: dict[str, int]) -> None:
    for value_name, value in values.items():
        if value % groups:
            raise ValueError(
                f"{where}: `{name}` ({groups}) must divide the {value_name} ({value}); "
                f"received {name}={groups}, {value_name}={value}"
            )


def _num_upsamplings(image_size: tuple[int, int], latent_size: tuple[int, int]) -> int:
    ratios = {image_size[i] / latent_size[i] for i in range(2)}
    ratio = ratios.pop()
    if ratios or ratio < 1 or not float(ratio).is_integer() or int(ratio) & (int(ratio) - 1):
        raise ValueError(
            "`image_size` must be the same power-of-two multiple of `latent_size` on both axes; "
            f"received image_size={image_size}, latent_size={latent_size}"
        )
    return int(ratio).bit_length() - 1


def _rule_block_names(num_blocks: int) -> list[str]:
    num_up = min(4, num_blocks - 1)
    num_middle = num_blocks - 1 - num_up
    return (
        ["head_0"]
        + [f"G_middle_{i}" for i in range(num_middle)]
        + [f"up_{i}" for i in range(num_up)]
    )


def _largest_common_divisor_at_most(values: Sequence[int], limit: int) -> int:
    common = math.gcd(*values)
    return max(d for d in range(1, max(1, limit) + 1) if common % d == 0)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
