import keras
import numpy as np
import pytest

from smis_layers import CGBlock, DecoderBlockSpec, GroupConv2D, GroupDecreasingSchedule

OFFICIAL_ROWS = {
    # dataset: (groups per block, widths, input conv (filters, groups), latent size)
    "deepfashion": (
        (8, 8, 4, 4, 2, 2, 1),
        (2560, 2560, 2560, 1280, 640, 320, 160),
        (2560, 8),
        (4, 4),
    ),
    "cityscapes": (
        (35, 35, 20, 14, 10, 4, 1),
        (4480, 4480, 4480, 2240, 1120, 560, 280),
        (4480, 35),
        (4, 8),
    ),
    "ade20k": (
        (151, 16, 16, 8, 4, 2, 1),
        (2416, 2048, 1024, 1024, 512, 256, 128),
        (2416, 151),
        (4, 4),
    ),
}


@pytest.mark.parametrize("dataset", sorted(OFFICIAL_ROWS))
def test_official_rows(dataset):
    groups, widths, (input_filters, input_groups), latent = OFFICIAL_ROWS[dataset]
    schedule = GroupDecreasingSchedule.official(dataset)
    assert schedule.groups == groups
    assert tuple(b.filters for b in schedule.blocks) == widths
    assert (schedule.input_filters, schedule.input_groups) == (input_filters, input_groups)
    assert schedule.latent_size == latent and schedule.latent_channels == 8
    assert [b.name for b in schedule.blocks] == [
        "head_0",
        "G_middle_0",
        "G_middle_1",
        "up_0",
        "up_1",
        "up_2",
        "up_3",
    ]
    assert [b.upsample for b in schedule.blocks] == [False] + [True] * 6  # 'more' upsampling
    assert schedule.output_size == (latent[0] * 64, latent[1] * 64)


def test_official_cgnorm_variants():
    deepfashion = GroupDecreasingSchedule.official("deepfashion").blocks
    assert all(
        b.norm_hidden_channels == 128 and b.norm_shared_groups == b.norm_groups == b.groups
        for b in deepfashion
    )
    cityscapes = GroupDecreasingSchedule.official("cityscapes").blocks
    assert all(
        b.norm_hidden_channels == 35 * b.groups
        and b.norm_shared_groups == 35
        and b.norm_groups == 35
        for b in cityscapes
    )
    ade20k = GroupDecreasingSchedule.official("ade20k").blocks
    assert [b.norm_hidden_channels for b in ade20k] == [302, 2416, 2416, 1208, 604, 302, 302]
    assert all(b.norm_shared_groups == 151 and b.norm_groups == b.groups for b in ade20k)


def _decoder_parameter_count(schedule, mask_channels, mask_size):
    """Trainable parameters of fc + CGBlocks + RGB conv built from `schedule` with the layers."""
    fc = GroupConv2D(
        schedule.input_filters, 3, groups=schedule.input_groups, kernel_initializer="zeros"
    )
    fc.build((None, *schedule.latent_size, 8 * schedule.num_classes))
    total, channels, (height, width) = (
        fc.count_params(),
        schedule.input_filters,
        schedule.latent_size,
    )
    for spec in schedule.blocks:
        scale = 2 if spec.upsample else 1
        height, width = height * scale, width * scale
        block = CGBlock(
            spec.filters,
            spec.groups,
            spec.norm_hidden_channels,
            spec.norm_shared_groups,
            spec.norm_groups,
            kernel_initializer="zeros",
        )
        block.build((None, height, width, channels), (None, *mask_size, mask_channels))
        total += sum(int(np.prod(v.shape)) for v in block.trainable_variables)
        channels = spec.filters
    to_rgb = GroupConv2D(3, 3, kernel_initializer="zeros")
    to_rgb.build((None, height, width, channels))
    return total + to_rgb.count_params()


# Generator parameter counts of the official code (DeepFashionGenerator, CityscapesGenerator,
# ADE20KGenerator with 'more' upsampling), computed by instantiating it.
OFFICIAL_GENERATOR_COUNTS = {
    "deepfashion": 96_324_451,
    "cityscapes": 76_501_358,
    "ade20k": 68_326_847,
}
# The official ADE20KGenerator also builds an `up_4` block (128 -> 64, groups 1) that its forward
# never calls; its parameters are in the official count but not in the network that runs.
ADE20K_UNUSED_UP_4 = 1_868_132


@pytest.mark.parametrize(
    "dataset, mask_channels, mask_size",
    [("deepfashion", 8, (256, 256)), ("cityscapes", 70, (256, 512)), ("ade20k", 151, (256, 256))],
)
def test_layers_reproduce_the_official_generator_parameter_counts(
    dataset, mask_channels, mask_size
):
    count = _decoder_parameter_count(
        GroupDecreasingSchedule.official(dataset), mask_channels, mask_size
    )
    unused = ADE20K_UNUSED_UP_4 if dataset == "ade20k" else 0
    assert count + unused == OFFICIAL_GENERATOR_COUNTS[dataset]


def test_the_unused_official_ade20k_block_count():
    block = CGBlock(
        64, groups=1, norm_hidden_channels=302, norm_shared_groups=151, kernel_initializer="zeros"
    )
    block.build((None, 256, 256, 128), (None, 256, 256, 151))
    assert sum(int(np.prod(v.shape)) for v in block.trainable_variables) == ADE20K_UNUSED_UP_4


def test_rule_reproduces_deepfashion_and_generalizes():
    assert GroupDecreasingSchedule.decreasing(
        8, 160, image_size=256
    ) == GroupDecreasingSchedule.official("deepfashion")
    small = GroupDecreasingSchedule.decreasing(num_classes=6, base_filters=12, image_size=64)
    assert small.groups == (6, 6, 3, 3, 1)
    assert small.output_size == (64, 64)
    assert [b.name for b in small.blocks] == ["head_0", "up_0", "up_1", "up_2", "up_3"]
    wide = GroupDecreasingSchedule.decreasing(
        16, 16, image_size=(64, 128), latent_size=(4, 8), halve_every=1
    )
    assert wide.groups == (16, 8, 4, 2, 1) and wide.output_size == (64, 128)
    groups = GroupDecreasingSchedule.decreasing(
        35, 280, image_size=(256, 512), latent_size=(4, 8)
    ).groups
    assert groups[0] == 35 and groups[-1] == 1 and list(groups) == sorted(groups, reverse=True)


def test_constant_schedule_has_no_decrease():
    schedule = GroupDecreasingSchedule.constant(6, 12, image_size=64)
    assert set(schedule.groups) == {6} and not schedule.require_decreasing
    widened = GroupDecreasingSchedule.constant(6, 12, image_size=32, width_multipliers=(8, 4, 4, 4))
    assert [block.filters for block in widened.blocks] == [96, 48, 48, 48]
    assert set(widened.groups) == {6}


def test_serialization_round_trip():
    schedule = GroupDecreasingSchedule.official("ade20k")
    config = schedule.get_config()
    assert GroupDecreasingSchedule.from_config(config) == schedule
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert restored == schedule and restored is not schedule
    assert "| up_3 | 256 -> 128 | 1 |" in schedule.table()


def _blocks(*groups, filters=16):
    return [DecoderBlockSpec(f"b{i}", filters, g, 16, g, g, i > 0) for i, g in enumerate(groups)]


def test_validation_errors():
    with pytest.raises(ValueError, match=r"b1: `groups` \(3\) must divide the input channels"):
        GroupDecreasingSchedule(4, (4, 4), 8, 16, 4, _blocks(4, 3))
    with pytest.raises(ValueError, match=r"groups must not increase .* received 4 after 2"):
        GroupDecreasingSchedule(4, (4, 4), 8, 16, 4, _blocks(4, 2, 4))
    GroupDecreasingSchedule(4, (4, 4), 8, 16, 4, _blocks(4, 2, 4), require_decreasing=False)
    with pytest.raises(ValueError, match=r"input convolution: `input_groups` \(3\) must divide"):
        GroupDecreasingSchedule(4, (4, 4), 8, 16, 3, _blocks(4))
    with pytest.raises(ValueError, match="`dataset` must be one of"):
        GroupDecreasingSchedule.official("coco")
    with pytest.raises(ValueError, match="power-of-two multiple"):
        GroupDecreasingSchedule.decreasing(8, 16, image_size=96)
    with pytest.raises(ValueError, match="at least one DecoderBlockSpec"):
        GroupDecreasingSchedule(4, (4, 4), 8, 16, 4, [])


@pytest.mark.parametrize("num_classes", [8, 35, 151])
def test_rule_keeps_the_first_layers_per_class_or_warns(num_classes):
    import warnings

    from smis_layers.layers.group_decreasing_schedule import ClassMixingWarning

    def per_class(schedule):
        # A grouped conv keeps classes apart iff its groups are a multiple of C (each group
        # then reads channels of one class only); the rule declares blocks 0 and 1 per class.
        layers = [schedule.input_groups, *schedule.groups[:2]]
        return all(groups % num_classes == 0 for groups in layers)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        small = GroupDecreasingSchedule.decreasing(num_classes, 4, 64)
    mixing = [w for w in caught if issubclass(w.category, ClassMixingWarning)]
    assert bool(mixing) != per_class(small)
    if mixing:
        message = str(mixing[0].message)
        suggestion = num_classes  # 16 * base_filters divisible by 35 or 151 needs base = C
        assert "the input convolution" in message and "mix the codes" in message
        assert f"base_filters={suggestion}" in message and "start_groups" in message
        assert "SMIS issue #13" in message
        with warnings.catch_warnings():
            warnings.simplefilter("error", ClassMixingWarning)
            assert per_class(GroupDecreasingSchedule.decreasing(num_classes, suggestion, 64))
            # declaring the merge from the start is the user's choice: no warning
            GroupDecreasingSchedule.decreasing(num_classes, 4, 64, start_groups=16)
