from __future__ import annotations

import keras

from smis_layers.layers.group_decreasing_schedule import GroupDecreasingSchedule
from smis_layers.models.groupdnet.groupdnet import GroupDNet


@keras.saving.register_keras_serializable(package="smis_layers")
class GroupNet(GroupDNet):
    """Baseline GroupNet: grouped convolutions everywhere, groups kept at C (no decrease).

    In the paper's argument it isolates the effect of *decreasing* the groups: with C groups in
    every decoder block the classes never share features until the RGB convolution, which the
    paper shows costs image quality (and compute) without improving class-specific control.
    Same API and arguments as `GroupDNet`; the default schedule is
    `GroupDecreasingSchedule.constant(num_classes, 16, image_size)`.

    Examples:
        >>> model = build_architecture("groupnet_shapes64")  # or GroupNet(num_classes, ...)
        >>> images = model.generate(np.zeros((1, 64, 64), "int32"), seed=0)
    """

    @classmethod
    def default_schedule(cls, num_classes: int, image_size) -> GroupDecreasingSchedule:
        return GroupDecreasingSchedule.constant(num_classes, 16, image_size)
