import numpy as np
import pytest

from smis_layers import GroupDecreasingSchedule
from smis_layers.metrics.evaluate import combine_seeds, evaluate_presets, markdown_table
from smis_layers.models import GroupDNet, MulNet
from smis_layers.models.segmenter import ShapesSegmenter
from smis_layers.presets import save_preset

C = 4


@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    root = tmp_path_factory.mktemp("presets")
    common = {"num_classes": C, "image_size": 64, "encoder_channels": 8}
    save_preset(
        GroupDNet(schedule=GroupDecreasingSchedule.decreasing(C, 2, 64), **common),
        root / "tiny_groupdnet",
    )
    save_preset(
        MulNet(schedule=GroupDecreasingSchedule.constant(C, 4, 64), **common), root / "tiny_mulnet"
    )
    save_preset(ShapesSegmenter(C, filters=(4, 6, 8)), root / "tiny_segmenter")
    return root


def test_evaluate_presets_rows_and_determinism(presets):
    flops_seen = []

    def flops(model):
        flops_seen.append(type(model).__name__)
        return 2.5e9

    kwargs = {
        "n_images": 2,
        "seed": 1,
        "segmenter": presets / "tiny_segmenter",
        "progress": False,
        "num_samples": 2,
    }
    rows = evaluate_presets(
        [presets / "tiny_groupdnet", presets / "tiny_mulnet"],
        flops=flops,
        timing_repeats=1,
        timing_batch_size=2,
        **kwargs,
    )
    assert [r["preset"] for r in rows] == ["real images", "tiny_groupdnet", "tiny_mulnet"]
    assert flops_seen == ["GroupDNet", "MulNet"]
    groupdnet, mulnet = rows[1], rows[2]
    for row in (groupdnet, mulnet):
        for key in (
            "fid_segmenter",
            "miou",
            "pixel_accuracy",
            "miou_standard_prior",
            "mcsd_l1",
            "mocd_l1",
            "mcsd_segmenter",
            "mocd_segmenter",
            "diversity_l1",
            "diversity_segmenter",
            "swap_region_transfer",
            "swap_leakage",
            "code_nats",
            "images_per_s",
        ):
            assert np.isfinite(row[key]), key
        assert 0 <= row["miou"] <= 1 and row["generator_gflops"] == 2.5
    assert len(groupdnet["code_nats_per_class"]) == C and groupdnet["code_nats"] > 0
    assert groupdnet["params_generator"] > 0 and groupdnet["params_encoder"] > 0
    # MulNet is exactly class-isolated: resampling class c moves no other pixel
    assert mulnet["mocd_l1"] < 1e-5 * mulnet["mcsd_l1"]
    assert mulnet["swap_leakage"] < 1e-4
    assert rows[0]["miou"] >= 0 and np.isfinite(rows[0]["fid_segmenter"])
    again = evaluate_presets(
        [presets / "tiny_groupdnet"], reference=False, timing_repeats=0, **kwargs
    )
    assert "images_per_s" not in again[0] and again[0]["diversity_images"] == 2
    timing = {"images_per_s", "generator_gflops"}
    assert {k: v for k, v in again[0].items() if k not in timing} == {
        k: v for k, v in groupdnet.items() if k not in timing
    }
    table = markdown_table(rows)
    lines = table.splitlines()
    assert lines[0].startswith("| preset | domain FID ↓ | mIoU ↑")
    assert len(lines) == 5 and "| tiny_mulnet |" in lines[4]
    assert "| real images |" in lines[2] and " - |" in lines[2]  # no diversity for real images


def test_diversity_images_limits_only_the_diversity_metrics(presets):
    kwargs = {
        "n_images": 3,
        "seed": 0,
        "segmenter": presets / "tiny_segmenter",
        "progress": False,
        "num_samples": 2,
        "reference": False,
        "timing_repeats": 0,
    }
    (full,) = evaluate_presets([presets / "tiny_groupdnet"], **kwargs)
    (few,) = evaluate_presets([presets / "tiny_groupdnet"], diversity_images=1, **kwargs)
    assert few["diversity_images"] == 1 and full["diversity_images"] == 3
    for key in ("fid_segmenter", "miou", "miou_standard_prior", "swap_region_transfer"):
        assert few[key] == full[key], key
    assert few["mcsd_l1"] != full["mcsd_l1"] and few["diversity_l1"] != full["diversity_l1"]
    # a preset without a fitted code prior draws its codes from N(0, 1) either way
    assert few["miou"] == few["miou_standard_prior"]
    with pytest.raises(ValueError, match=r"`diversity_images` must be at most `n_images` \(3\)"):
        evaluate_presets([presets / "tiny_groupdnet"], diversity_images=4, **kwargs)


def test_combine_seeds_means_spreads_and_table():
    def rows(seed, fid, miou, nats):
        return [
            {"preset": "real images", "fid_segmenter": fid / 4, "seed": seed},
            {
                "preset": "g",
                "class_name": "GroupDNet",
                "n_images": 256,
                "seed": seed,
                "fid_segmenter": fid,
                "miou": miou,
                "params_generator": 1000,
                "code_nats_per_class": nats,
            },
        ]

    combined = combine_seeds([rows(0, 6.0, 0.3, [1.0, None]), rows(1, 8.0, 0.5, [3.0, None])])
    real, g = combined
    assert g["seeds"] == [0, 1] and g["n_images"] == 256 and g["class_name"] == "GroupDNet"
    assert g["fid_segmenter"] == 7.0 and g["fid_segmenter_std"] == pytest.approx(2**0.5)
    assert g["miou"] == pytest.approx(0.4) and g["params_generator"] == 1000
    assert "params_generator_std" not in g and "n_images_std" not in g
    assert g["code_nats_per_class"] == [2.0, None]
    assert real["fid_segmenter"] == 1.75
    lines = markdown_table(combined).splitlines()
    assert lines[3] == "| g | 7.00 ± 1.41 | 0.400 ± 0.141 | 1,000 |"
    (single,) = combine_seeds([rows(3, 6.0, 0.3, [1.0])[1:]])
    assert "fid_segmenter_std" not in single and single["seeds"] == [3]
    with pytest.raises(ValueError, match="the same presets"):
        combine_seeds([rows(0, 6.0, 0.3, []), rows(1, 6.0, 0.3, [])[1:]])


def test_evaluate_presets_checks_the_segmenter(presets, tmp_path):
    save_preset(ShapesSegmenter(8, filters=(4, 4)), tmp_path / "seg8")
    with pytest.raises(ValueError, match="has 4 classes; the segmenter"):
        evaluate_presets(
            [presets / "tiny_groupdnet"], n_images=2, segmenter=tmp_path / "seg8", progress=False
        )
    with pytest.raises(ValueError, match="`n_images` must be >= 2"):
        evaluate_presets([presets / "tiny_groupdnet"], n_images=1, segmenter=tmp_path / "seg8")


def test_markdown_table_formats_and_custom_columns():
    rows = [{"preset": "a", "miou": 0.91234, "params_generator": 1234567, "extra": "x"}]
    assert markdown_table(rows).splitlines() == [
        "| preset | mIoU ↑ | G params |",
        "|---|---|---|",
        "| a | 0.912 | 1,234,567 |",
    ]
    assert markdown_table(rows, ["preset", "extra", "fid_segmenter"]).splitlines()[2] == (
        "| a | x | - |"
    )
