"""The analytic FLOP counter: hand counts, equality with the convolutions a forward pass
actually runs, and the official DeepFashion model."""

import keras
import numpy as np

from smis_layers import GroupConv2D
from smis_layers.layers import group_conv2d as group_conv2d_module
from smis_layers.layers.group_decreasing_schedule import GroupDecreasingSchedule
from smis_layers.metrics import flops
from smis_layers.models import GroupDNet, MultiScaleDiscriminator
from smis_layers.ops import grouped_conv


def tiny_models():
    schedule = GroupDecreasingSchedule.decreasing(4, 4, 16, norm_hidden_channels=8)
    generator = GroupDNet(num_classes=4, image_size=16, schedule=schedule, encoder_channels=8)
    return generator, MultiScaleDiscriminator(num_layers=2, base_filters=8)


def test_conv_flops_match_a_hand_count():
    conv = GroupConv2D(16, 3, groups=4)
    conv.build((None, 8, 8, 8))
    # 8x8 outputs x 16 filters x (3*3 taps x 8/4 input channels) multiply-adds, 2 FLOPs each.
    assert flops.layer_flops(conv).flops == 2 * (8 * 8 * 16) * (3 * 3 * 2) == 36_864
    dense = keras.layers.Conv2D(16, 3, padding="same")
    dense.build((None, 8, 8, 8))
    assert flops.layer_flops(dense).flops == 4 * 36_864  # groups=1: 4x the grouped count
    strided = GroupConv2D(6, 4, groups=2, strides=2, padding=2, use_bias=False)
    strided.build((None, 9, 9, 4))
    # PyTorch-style padding 2: out = (9 + 4 - 4) // 2 + 1 = 5
    assert flops.layer_flops(strided).flops == 2 * (5 * 5 * 6) * (4 * 4 * 2)
    linear = keras.layers.Dense(5)
    linear.build((None, 3, 7))
    assert flops.layer_flops(linear).flops == 2 * 3 * 7 * 5


def test_generator_flops_equal_a_count_of_the_convolutions_actually_run(monkeypatch):
    generator, discriminator = tiny_models()
    seen = []
    original = grouped_conv.grouped_conv2d

    def recording_conv(inputs, kernel, groups, strides=(1, 1), padding="valid", lowering="auto"):
        outputs = original(inputs, kernel, groups, strides, padding, lowering)
        height, width = outputs.shape[1:3]
        seen.append(2 * height * width * int(np.prod(kernel.shape)))  # per image
        return outputs

    # Every grouped convolution runs through this op, also those that CGNorm and CGBlock fuse
    # into one call (gamma with beta, the norms' shared convolutions).
    monkeypatch.setattr(grouped_conv, "grouped_conv2d", recording_conv)
    monkeypatch.setattr(group_conv2d_module, "grouped_conv2d", recording_conv)
    batch = {
        "images": np.zeros((2, 16, 16, 3), "float32"),
        "masks": np.random.default_rng(0).integers(0, 4, (2, 16, 16)),
    }
    generator(batch, training=False)
    assert sum(seen) == flops.generator_flops(generator, "train") > 0
    seen.clear()
    generator.generate(batch["masks"], z=generator.sample_z(2, seed=0))
    assert sum(seen) == flops.generator_flops(generator, "decoder")
    assert flops.generator_flops(generator, "train", batch_size=3) == 3 * (
        flops.generator_flops(generator, "encoder") + flops.generator_flops(generator, "decoder")
    )
    step = flops.train_step_flops(generator, discriminator, 2)
    assert step["total"] == 4 * step["generator_forward"] + 9 * step["discriminator_forward"]
    assert not discriminator.built  # counted on a copy: SMISTrainer can still build it


def test_official_deepfashion_counts_match_the_official_parameters():
    generator = GroupDNet.official("deepfashion")
    assert generator.parameter_counts() == {"encoder": 12_835_712, "generator": 96_324_451}
    # Decoder FLOPs per image are dominated by the 256x256 blocks; a loose sanity range.
    assert 1e11 < flops.generator_flops(generator, "decoder") < 1e12
