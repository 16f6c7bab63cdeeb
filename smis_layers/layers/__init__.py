"""The reusable layers of GroupDNet."""

from smis_layers.layers.cg_block import CGBlock
from smis_layers.layers.cg_norm import CGNorm
from smis_layers.layers.class_mask_split import ClassMaskSplit
from smis_layers.layers.group_conv2d import GroupConv2D
from smis_layers.layers.group_conv_encoder import GroupConvEncoder
from smis_layers.layers.group_decreasing_schedule import (
    ClassMixingWarning,
    DecoderBlockSpec,
    GroupDecreasingSchedule,
)

__all__ = [
    "CGBlock",
    "CGNorm",
    "ClassMaskSplit",
    "ClassMixingWarning",
    "DecoderBlockSpec",
    "GroupConv2D",
    "GroupConvEncoder",
    "GroupDecreasingSchedule",
]
