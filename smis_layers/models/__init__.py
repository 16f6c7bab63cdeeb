"""Models built from the layers: GroupDNet (and, as they land, the discriminator and baselines)."""

from smis_layers.models.architectures import available_architectures, build_architecture
from smis_layers.models.baselines import VSPADE, GroupEnc, GroupNet, MulNet
from smis_layers.models.discriminator import MultiScaleDiscriminator
from smis_layers.models.groupdnet import GroupDNet

__all__ = [
    "VSPADE",
    "GroupDNet",
    "GroupEnc",
    "GroupNet",
    "MulNet",
    "MultiScaleDiscriminator",
    "available_architectures",
    "build_architecture",
]
