from __future__ import annotations

import keras

from smis_layers.layers.group_decreasing_schedule import GroupDecreasingSchedule
from smis_layers.models.groupdnet.groupdnet import GroupDNet


@keras.saving.register_keras_serializable(package="smis_layers")
class GroupEnc(GroupDNet):
    """Baseline GroupEnc: GroupDNet's grouped per-class encoder with an ordinary SPADE decoder.

    In the paper's argument it shows that per-class codes alone are not enough: a decoder whose
    convolutions mix all classes from the first layer (groups=1 everywhere, CGNorm reduced to
    SPADE) lets one class's code change other classes' pixels. Same API and arguments as
    `GroupDNet`; the default schedule is `GroupDecreasingSchedule.constant(num_classes, 16,
    image_size, groups=1)`.

    Examples:
        >>> model = build_architecture("groupenc_shapes64")  # or GroupEnc(num_classes, ...)
        >>> images = model.generate(np.zeros((1, 64, 64), "int32"), seed=0)
    """

    @classmethod
    def default_schedule(cls, num_classes: int, image_size) -> GroupDecreasingSchedule:
        return GroupDecreasingSchedule.constant(num_classes, 16, image_size, groups=1)
