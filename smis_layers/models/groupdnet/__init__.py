from smis_layers.models.groupdnet.groupdnet import GroupDNet

__all__ = ["GroupDNet"]
