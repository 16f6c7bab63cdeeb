"""Models built from the layers: GroupDNet (and, as they land, the discriminator and baselines)."""

from smis_layers.models.architectures import available_architectures, build_architecture
from smis_layers.models.baselines import VSPADE, GroupEnc, GroupNet, MulNet
from smis_layers.models.code_prior import FittedCodePrior
from smis_layers.models.discriminator import MultiScaleDiscriminator
from smis_layers.models.groupdnet import GroupDNet
from smis_layers.models.groupdnet.synthesizer import Synthesizer
from smis_layers.models.segmenter import ShapesSegmenter


def from_preset(name_or_path):
    """The model of a preset folder or zoo name, of whatever class its config.json names
    (GroupDNet, a baseline, a segmenter), after verifying its files' sha256."""
    from smis_layers.presets import load_preset

    return load_preset(name_or_path)


__all__ = [
    "VSPADE",
    "FittedCodePrior",
    "GroupDNet",
    "GroupEnc",
    "GroupNet",
    "MulNet",
    "MultiScaleDiscriminator",
    "ShapesSegmenter",
    "Synthesizer",
    "available_architectures",
    "build_architecture",
    "from_preset",
]
