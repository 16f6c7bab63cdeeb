"""Property-based tests of GroupDecreasingSchedule: any arguments give a schedule whose every
block is buildable (groups divide every channel count they split), that decreases, generates
the requested size and round-trips through its config, or the documented ValueError."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smis_layers import GroupDecreasingSchedule
from smis_layers.layers.group_decreasing_schedule import DecoderBlockSpec
from tests.properties.common import cases


def assert_buildable(schedule: GroupDecreasingSchedule) -> None:
    """The invariants `GroupDNet` relies on, stated directly."""
    assert schedule.blocks
    latent = schedule.latent_channels * schedule.num_classes
    assert latent % schedule.input_groups == 0
    assert schedule.input_filters % schedule.input_groups == 0
    in_channels, previous = schedule.input_filters, None
    for block in schedule.blocks:
        middle = min(in_channels, block.filters)
        for channels in (in_channels, middle, block.filters):
            assert channels % block.groups == 0
        for channels in (in_channels, middle, block.norm_hidden_channels):
            assert channels % block.norm_groups == 0
        assert block.norm_hidden_channels % block.norm_shared_groups == 0
        if schedule.require_decreasing and previous is not None:
            assert block.groups <= previous
        previous, in_channels = block.groups, block.filters
    assert GroupDecreasingSchedule.from_config(schedule.get_config()) == schedule


@cases(150)
@given(
    num_classes=st.integers(1, 40),
    base_filters=st.integers(1, 20),
    image_size=st.sampled_from([4, 8, 16, 32, 64, 256, 48, 100, (32, 64), (64, 32)]),
    latent_size=st.sampled_from([1, 2, 4, 3, (4, 8)]),
    halve_every=st.integers(0, 3),
    final_groups=st.integers(1, 4),
    norm_hidden_channels=st.one_of(st.none(), st.integers(1, 64)),
)
def test_decreasing_rule_is_buildable_or_raises(
    num_classes,
    base_filters,
    image_size,
    latent_size,
    halve_every,
    final_groups,
    norm_hidden_channels,
):
    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    latent = (latent_size, latent_size) if isinstance(latent_size, int) else latent_size
    ratios = {size[0] / latent[0], size[1] / latent[1]}
    ratio = next(iter(ratios))
    valid_size = (
        len(ratios) == 1 and ratio >= 1 and ratio.is_integer() and not int(ratio) & int(ratio) - 1
    )
    kwargs = {
        "image_size": image_size,
        "latent_size": latent_size,
        "halve_every": halve_every,
        "final_groups": final_groups,
        "norm_hidden_channels": norm_hidden_channels,
    }
    if halve_every == 0:
        with pytest.raises(ValueError, match="`halve_every` must be a positive integer"):
            GroupDecreasingSchedule.decreasing(num_classes, base_filters, **kwargs)
        return
    if not valid_size:
        with pytest.raises(ValueError, match="power-of-two multiple"):
            GroupDecreasingSchedule.decreasing(num_classes, base_filters, **kwargs)
        return
    try:
        schedule = GroupDecreasingSchedule.decreasing(num_classes, base_filters, **kwargs)
    except ValueError as error:  # the only documented failure left: a final_groups increase
        assert "must not increase" in str(error)
        return
    assert_buildable(schedule)
    # GroupDNet's CGNorms split the C-channel mask with the shared convolution.
    assert all(num_classes % block.norm_shared_groups == 0 for block in schedule.blocks)
    assert schedule.output_size == size
    assert schedule.num_upsamplings == len(schedule.blocks) - 1
    assert schedule.blocks[0].groups <= num_classes


@cases(100)
@given(
    num_classes=st.integers(1, 8),
    latent_channels=st.integers(1, 4),
    input_filters=st.integers(1, 32),
    input_groups=st.integers(1, 8),
    blocks=st.lists(
        st.tuples(
            st.integers(1, 32),  # filters
            st.integers(1, 8),  # groups
            st.integers(1, 16),  # norm_hidden_channels
            st.integers(1, 8),  # norm_shared_groups
            st.integers(1, 8),  # norm_groups
            st.booleans(),  # upsample
        ),
        min_size=0,
        max_size=4,
    ),
    require_decreasing=st.booleans(),
)
def test_any_block_list_is_buildable_or_raises(
    num_classes, latent_channels, input_filters, input_groups, blocks, require_decreasing
):
    specs = [DecoderBlockSpec(f"b{i}", *block) for i, block in enumerate(blocks)]
    try:
        schedule = GroupDecreasingSchedule(
            num_classes, (4, 4), latent_channels, input_filters, input_groups, specs,
            require_decreasing=require_decreasing,
        )  # fmt: skip
    except ValueError as error:
        message = str(error)
        assert any(
            documented in message
            for documented in ("must divide", "must not increase", "at least one")
        ), message
        return
    assert_buildable(schedule)
