"""smis-layers: Keras 3 layers and models for semantically multi-modal image synthesis.

Implements GroupDNet (Zhu et al., "Semantically Multi-modal Image Synthesis", CVPR 2020,
https://arxiv.org/abs/2003.12697) from reusable layers.

The public names are imported on first use, so `import smis_layers` (and the `smis` command)
does not start TensorFlow until a layer is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smis_layers.utils.lazy import lazy_exports
from smis_layers.version import __version__

_LAZY_EXPORTS = {
    "CGBlock": "smis_layers.layers",
    "CGNorm": "smis_layers.layers",
    "ClassMaskSplit": "smis_layers.layers",
    "DecoderBlockSpec": "smis_layers.layers",
    "GroupConv2D": "smis_layers.layers",
    "GroupConvEncoder": "smis_layers.layers",
    "GroupDecreasingSchedule": "smis_layers.layers",
}

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

if TYPE_CHECKING:
    from smis_layers.layers import (
        CGBlock,
        CGNorm,
        ClassMaskSplit,
        DecoderBlockSpec,
        GroupConv2D,
        GroupConvEncoder,
        GroupDecreasingSchedule,
    )


__getattr__, __dir__ = lazy_exports(__name__, _LAZY_EXPORTS)
