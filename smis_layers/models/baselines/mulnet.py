from __future__ import annotations

import keras
from keras import ops

from smis_layers.layers.group_conv2d import GroupConv2D
from smis_layers.layers.group_decreasing_schedule import GroupDecreasingSchedule
from smis_layers.models.groupdnet.groupdnet import GroupDNet


@keras.saving.register_keras_serializable(package="smis_layers")
class MulNet(GroupDNet):
    """Baseline MulNet: one generator per class, combined by the segmap's class channels.

    In the paper's argument it is the brute-force solution to per-class control: C independent
    generators, generator `c` seeing only class `c`'s code and segmap channel, and the image
    `sum_c M_c * G_c(z_c)`. It is exactly disentangled but C times as expensive, which is what
    GroupDNet's group decrease avoids. The C generators are computed as one decoder whose every
    convolution has `groups=C` (block-diagonal weights are C separate networks), CGNorm's segmap
    convolutions use `groups=C` too, and the RGB convolution gives 3 channels per class.
    Same API and arguments as `GroupDNet`; every block of `schedule` must have
    `groups == norm_groups == norm_shared_groups == num_classes`, and `use_instance_edges` must
    be False.

    Examples:
        >>> model = build_architecture("mulnet_shapes64")  # or MulNet(num_classes, image_size, ...)
        >>> images = model.generate(np.zeros((1, 64, 64), "int32"), seed=0)
    """

    @classmethod
    def default_schedule(cls, num_classes: int, image_size) -> GroupDecreasingSchedule:
        return GroupDecreasingSchedule.constant(num_classes, 16, image_size)

    def _validate_schedule(self):
        super()._validate_schedule()
        c = self.num_classes
        for spec in self.schedule.blocks:
            if not spec.groups == spec.norm_groups == spec.norm_shared_groups == c:
                raise ValueError(
                    f"MulNet needs num_classes ({c}) groups everywhere; block {spec.name} has "
                    f"groups={spec.groups}, norm_groups={spec.norm_groups}, "
                    f"norm_shared_groups={spec.norm_shared_groups}"
                )
        if self.schedule.input_groups != c:
            raise ValueError(
                f"MulNet needs input_groups == num_classes ({c}); received "
                f"{self.schedule.input_groups}"
            )

    def __init__(
        self, num_classes: int, image_size, *args, use_instance_edges: bool = False, **kwargs
    ):
        if use_instance_edges:
            raise ValueError(
                "MulNet composes its image from the segmap's C class channels alone: "
                "`use_instance_edges` "
                f"must be False; received {use_instance_edges!r}"
            )
        super().__init__(num_classes, image_size, *args, use_instance_edges=False, **kwargs)

    def _make_output_conv(self) -> keras.layers.Layer:
        return GroupConv2D(
            3 * self.num_classes,
            3,
            groups=self.num_classes,
            lowering=self.lowering,
            name="conv_img",
        )

    def _compose_output(self, x, segmap):
        per_class = ops.tanh(x)  # (B, H, W, 3C): class c's image in channels 3c..3c+2
        shape = ops.shape(per_class)
        per_class = ops.reshape(per_class, (shape[0], shape[1], shape[2], self.num_classes, 3))
        return ops.sum(per_class * ops.expand_dims(segmap, -1), axis=3)
