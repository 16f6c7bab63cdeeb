"""The paper's baselines, with GroupDNet's API so that training and evaluation take any of them."""

from smis_layers.models.baselines.groupenc import GroupEnc
from smis_layers.models.baselines.groupnet import GroupNet
from smis_layers.models.baselines.mulnet import MulNet
from smis_layers.models.baselines.vspade import VSPADE

__all__ = ["VSPADE", "GroupEnc", "GroupNet", "MulNet"]
