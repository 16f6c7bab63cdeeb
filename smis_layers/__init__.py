"""smis-layers: Keras 3 layers and models for semantically multi-modal image synthesis.

Implements GroupDNet (Zhu et al., "Semantically Multi-modal Image Synthesis", CVPR 2020,
https://arxiv.org/abs/2003.12697) from reusable layers.
"""

from smis_layers.layers import (
    CGBlock,
    CGNorm,
    ClassMaskSplit,
    DecoderBlockSpec,
    GroupConv2D,
    GroupConvEncoder,
    GroupDecreasingSchedule,
)
from smis_layers.version import __version__

__all__ = [
    "CGBlock",
    "CGNorm",
    "ClassMaskSplit",
    "DecoderBlockSpec",
    "GroupConv2D",
    "GroupConvEncoder",
    "GroupDecreasingSchedule",
    "__version__",
]
