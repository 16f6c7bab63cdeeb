import pytest

from smis_layers.models import available_architectures, build_architecture
from smis_layers.models.architectures import ARCHITECTURES


def test_shapes64_models_have_roughly_equal_generator_budgets():
    budgets = {
        name: build_architecture(name).parameter_counts()["generator"] for name in ARCHITECTURES
    }
    reference = budgets["groupdnet_shapes64"]
    for name, count in budgets.items():
        assert 0.9 * reference <= count <= 1.15 * reference, (name, count, reference)


def test_shapes64_groupdnet_decreases_its_groups():
    model = build_architecture("groupdnet_shapes64")
    assert model.schedule.groups == (8, 8, 4, 4, 1)
    assert model.image_size == (64, 64) and model.latent_shape == (4, 4, 96)
    assert model.region_colour_code and model.region_texture_code == 2


def test_shapes64_groupnet_keeps_eight_channels_per_class_to_the_last_block():
    schedule = build_architecture("groupnet_shapes64").schedule
    assert schedule.groups == (8,) * 5
    assert [block.filters // block.groups for block in schedule.blocks] == [32, 16, 8, 8, 8]


def test_unknown_architecture():
    assert "groupdnet_deepfashion" in available_architectures()
    with pytest.raises(ValueError, match="Unknown architecture 'x'; available"):
        build_architecture("x")


def test_small_spec_colour_switch():
    from smis_layers.models.architectures import complete_architecture_name, small_architecture

    spec = "groupdnet:classes=8,size=64,width=12,encoder=16,latent=12,colour=1,texture=2"
    _, flagship = ARCHITECTURES["groupdnet_shapes64"]
    assert small_architecture(spec)[1] == flagship and flagship["region_colour_code"] is True
    plain = small_architecture(spec.replace("colour=1,texture=2", "colour=0"))[1]
    assert plain == {
        k: v for k, v in flagship.items() if k not in ("region_colour_code", "region_texture_code")
    }
    assert complete_architecture_name("groupdnet:colour=1", 8) == (
        "groupdnet:classes=8,size=64,width=16,colour=1"
    )
    with pytest.raises(ValueError, match=r"Setting colour in .* must be one of 0, 1; received '2'"):
        small_architecture("groupdnet:classes=8,colour=2")
    _, textured = small_architecture("groupnet:classes=8,colour=1,texture=1")
    assert textured["region_texture_code"] is True and textured["region_colour_code"] is True
    assert "region_texture_code" not in small_architecture("groupnet:classes=8,texture=0")[1]
    assert complete_architecture_name("mulnet:texture=1", 8) == (
        "mulnet:classes=8,size=64,width=16,texture=1"
    )
    _, two = small_architecture("groupdnet:classes=8,width=12,encoder=16,latent=12,texture=2")
    assert two["region_texture_code"] == 2 and two["schedule"]["latent_channels"] == 12
    assert small_architecture("groupdnet:classes=8")[1]["schedule"]["latent_channels"] == 8
    assert complete_architecture_name("groupdnet:texture=2,latent=12", 8) == (
        "groupdnet:classes=8,size=64,width=16,latent=12,texture=2"
    )
    with pytest.raises(ValueError, match=r"Setting texture in .* must be one of 0, 1, 2; recei"):
        small_architecture("groupdnet:classes=8,texture=3")
