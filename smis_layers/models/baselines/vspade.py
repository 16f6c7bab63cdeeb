from __future__ import annotations

import keras

from smis_layers.layers.group_decreasing_schedule import GroupDecreasingSchedule
from smis_layers.models.groupdnet.groupdnet import GroupDNet


@keras.saving.register_keras_serializable(package="smis_layers")
class VSPADE(GroupDNet):
    """Baseline VSPADE: SPADE's generator with one VAE encoder for the whole image.

    In the paper's argument it is the multi-modal model without per-class codes: its single
    latent controls the whole image's style, so resampling cannot target one class. The encoder
    sees the full image (no `ClassMaskSplit`) through ordinary convolutions; to keep the API of
    the other models its code has the same shape (h, w, 8C) as GroupDNet's, but no channel
    belongs to a class (`class_code` still slices it, which then changes the whole image). The
    official SPADE encodes to a 256-d vector with a linear layer instead. The default schedule
    is an ordinary SPADE decoder (`GroupDecreasingSchedule.constant(..., groups=1)`).

    Examples:
        >>> model = build_architecture("vspade_shapes64")  # or VSPADE(num_classes, image_size, ...)
        >>> images = model.generate(np.zeros((1, 64, 64), "int32"), seed=0)
    """

    class_owned_codes = False  # the encoder: 1 group over the whole image (GroupDNet's)

    @classmethod
    def default_schedule(cls, num_classes: int, image_size) -> GroupDecreasingSchedule:
        return GroupDecreasingSchedule.constant(num_classes, 16, image_size, groups=1)
