"""The benchmark suite: every part runs in its tiny mode and prints sane tables; the analytic
FLOP count matches hand counts. No test asserts a time."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import __main__ as suite
from benchmarks import common, demo

ROOT = Path(__file__).resolve().parents[1]


def parse_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """{title: rows as {column: cell}} of the Markdown tables `Table.print` wrote."""
    tables, title, columns = {}, None, None
    for line in text.splitlines():
        if line.startswith("### "):
            title, columns = line[4:], None
        elif line.startswith("|") and title is not None:
            cells = [c.strip() for c in line.strip("|").split("|")]
            if columns is None:
                columns = cells
                tables[title] = []
            elif not set(line) <= set("|-"):
                assert len(cells) == len(columns), line
                tables[title].append(dict(zip(columns, cells, strict=True)))
    return tables


def number(cell: str) -> float:
    return float(cell.replace(",", ""))


def only_table(text: str, starts_with: str) -> list[dict[str, str]]:
    tables = parse_tables(text)
    matching = [rows for title, rows in tables.items() if title.startswith(starts_with)]
    assert len(matching) == 1, list(tables)
    return matching[0]


# ------------------------------------------------------------------------------ FLOPs
def test_flops_part_prints_one_row_per_model(capsys):
    assert suite.main(["flops", "--tiny", "--layers", "groupdnet_tiny"]) == 0
    out = capsys.readouterr().out
    rows = only_table(out, "Analytic FLOPs")
    assert [r["model"] for r in rows] == list(common.TINY)
    for row in rows:
        assert number(row["train step GFLOP"]) > 0
        assert 0 < number(row["CGNorm share of decoder"]) <= 1
    layers = only_table(out, "Counted layers of groupdnet_tiny")
    assert math.isclose(sum(number(r["share"]) for r in layers), 1.0, abs_tol=0.01)


# ------------------------------------------------------------------------------ parts
def test_train_step_part_reports_mfu_in_range(capsys):
    # jit_compile=True is covered by the gpu.sh test (an XLA compilation of the step takes
    # minutes on a loaded CPU).
    argv = ["train-step", "--tiny", "--models", "groupdnet_tiny", "--jit", "false"]
    assert suite.main([*argv, "--policy", "float32", "mixed_bfloat16"]) == 0
    rows = only_table(capsys.readouterr().out, "Training step")
    assert [(r["jit"], r["policy"]) for r in rows] == [
        ("false", "float32"),
        ("false", "mixed_bfloat16"),
    ]
    for row in rows:
        assert number(row["GFLOP/step"]) > 0 and number(row["images/s"]) > 0
        assert 0 < number(row["MFU"]) <= 1
        assert 0 < number(row["MFU (CPU time)"]) <= 1


def test_mfu_part_defaults_to_groupdnet_without_xla(capsys):
    assert suite.main(["mfu", "--tiny"]) == 0
    rows = only_table(capsys.readouterr().out, "Training step")
    assert [(r["model"], r["jit"]) for r in rows] == [("groupdnet_tiny", "false")]


def test_train_step_isolated_configuration_reports_errors_as_notes():
    result = common.run_isolated(
        "benchmarks.train_step",
        {
            "name": "no_such_model",
            "batch_size": 1,
            "jit": False,
            "policy": "float32",
            "steps": 1,
            "warmup": 1,
        },
        timeout=300,
    )
    assert "error" in result and "no_such_model" in result["error"]


def test_inference_part_measures_memory_in_a_fresh_process(capsys):
    argv = ["inference", "--tiny", "--models", "groupdnet_tiny", "--isolate", "yes"]
    assert suite.main(argv) == 0
    rows = only_table(capsys.readouterr().out, "Inference")
    assert [int(r["batch"]) for r in rows] == [1, 2]
    for row in rows:
        assert number(row["latency ms"]) > 0 and number(row["images/s"]) > 0
        assert 0 < number(row["RSS built MB"]) <= number(row["peak RSS MB"])
        assert number(row["eager/tf.function"]) > 0


def test_demo_part_times_every_page_action(capsys):
    assert suite.main(["demo", "--tiny"]) == 0
    (row,) = only_table(capsys.readouterr().out, "Demo page")
    assert row["model"] == "mulnet_shapes64" and row["size"] == "64x64"
    times = [number(row[f"{action} ms"]) for action in demo.ACTIONS]
    assert min(times) > 0 and number(row["slowest ms"]) >= max(times)


def test_scaling_part_sweeps_classes_and_resolution(capsys, tmp_path):
    figure = tmp_path / "scaling.png"
    assert suite.main(["scaling", "--tiny", "--plot", str(figure)]) == 0
    rows = only_table(capsys.readouterr().out, "Scaling")
    classes = [(r["model"], int(r["C"])) for r in rows if r["sweep"] == "classes"]
    assert classes == [("GroupDNet", 2), ("GroupDNet", 4), ("MulNet", 2), ("MulNet", 4)]
    sizes = [r["size"] for r in rows if r["sweep"] == "resolution"]
    assert sizes == ["16x16", "32x32"] * 2
    for row in rows:
        assert number(row["params"]) > 0 and number(row["GFLOP/image (fwd+bwd)"]) > 0
    mulnet = [
        number(r["params"]) for r in rows if r["sweep"] == "classes" and r["model"] == "MulNet"
    ]
    assert mulnet[1] == 2 * mulnet[0]  # C copies of one per-class generator
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_scaling_models_are_valid_at_35_classes():
    from benchmarks import scaling

    model = scaling.scaling_model("GroupDNet", 35, 64)
    assert model.schedule.groups[0] == 35
    assert all(35 % b.norm_shared_groups == 0 for b in model.schedule.blocks)


def test_group_conv_part_runs_every_candidate(capsys):
    from benchmarks import group_conv

    assert suite.main(["group-conv", "--tiny", "--dtypes", "float32", "float16"]) == 0
    rows = only_table(capsys.readouterr().out, "Grouped convolution lowerings")
    assert {r["mode"] for r in rows} == set(group_conv.MODES[group_conv.BACKEND])
    assert {r["dtype"] for r in rows} == {"float32", "float16"}
    native = "GroupConv2D(lowering=native)"
    for row in rows:
        assert row["auto ->"] in ("native", "split")
        assert all(number(row[c]) > 0 for c in group_conv.CANDIDATES if c != native)
        # A native kernel that fails on this machine (nan) is never what "auto" picks.
        if not number(row[native]) > 0:
            assert row["auto ->"] == "split", row


def test_pipeline_part_compares_three_sources(capsys):
    assert suite.main(["pipeline", "--tiny"]) == 0
    rows = only_table(capsys.readouterr().out, "Input pipeline")
    assert [r["source"] for r in rows] == ["in-memory", "synthetic tf.data", "folder (JPEG/PNG)"]
    assert number(rows[0]["step / in-memory step"]) == 1.0
    for row in rows:
        assert number(row["pipeline ms/batch"]) > 0 and number(row["step s"]) > 0


def test_profile_part_breaks_the_step_down(capsys):
    assert suite.main(["profile", "--tiny"]) == 0
    out = capsys.readouterr().out
    rows = only_table(out, "Profile of the groupdnet_tiny")
    total = rows[-1]
    assert total["part"] == "total" and number(total["total ms"]) > 0
    assert math.isclose(sum(number(r["share"]) for r in rows[:-1]), 1.0, abs_tol=0.01)
    assert number(total["conv forward ms"]) > 0
    assert only_table(out, "Top ")


def test_gpu_script_runs_tiny_on_the_cpu():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--tiny"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    tables = parse_tables(done.stdout)
    assert len(tables) == 1
    rows = next(iter(tables.values()))
    train = [r for r in rows if r["row"] == "train"]
    assert {(r["jit"], r["policy"]) for r in train} == {
        ("false", "float32"),
        ("true", "float32"),
        ("false", "mixed_bfloat16"),
    }
    assert {r["row"] for r in rows} == {
        "train",
        "generate",
        "decode (tf.function)",
        "decode (XLA)",
    }
    for row in rows:
        assert number(row["images/s"]) > 0
        assert 0 < number(row["MFU"]) <= 1


def test_vs_official_part_compares_equal_networks_side_by_side(capsys):
    assert suite.main(["vs-official", "--tiny", "--torch-bf16"]) == 0
    out = capsys.readouterr().out
    rows = only_table(out, "Official DeepFashion GroupDNet")
    assert [(r["side"], r["dtype"]) for r in rows] == [
        ("ours", "float32"),
        ("official", "float32"),
        ("ours", "mixed_bfloat16"),
        ("official", "bfloat16"),
    ]
    assert len({r["params"] for r in rows}) == 1
    assert number(rows[1]["official f32 / this"]) == 1.0
    for row in rows:
        assert number(row["s/step"]) > 0 and number(row["GFLOP/step"]) > 0
        assert 0 < number(row["MFU"]) <= 1
    assert out.startswith("Machine: ")  # the CPU model, printed first


def test_vs_official_reads_official_code_through_an_adapter(tmp_path, monkeypatch):
    from benchmarks import vs_official

    (tmp_path / "my_adapter.py").write_text(
        "from tests.models.official_reference import EncoderRef, official_generator\n"
        "def build(ngf, encoder_ndf, hidden, size, num_classes):\n"
        "    generator = official_generator('deepfashion', ngf, deepfashion_hidden=hidden)\n"
        "    return EncoderRef(num_classes, encoder_ndf, 6), generator\n"
    )
    monkeypatch.setattr(sys, "path", list(sys.path))
    tiny, builder = vs_official.TINY, "my_adapter:build"
    adapted = vs_official.official("float32", tiny, 1, 0, str(tmp_path), builder)
    assert adapted["params"] == vs_official.official("float32", tiny, 1, 0)["params"]
    assert len(adapted["times"]) == 1 and adapted["times"][0] > 0


def test_vs_official_fails_loudly_on_unequal_parameter_counts():
    from benchmarks import vs_official

    vs_official.check_parameter_counts({("ours", "float32"): 5, ("official", "float32"): 5})
    with pytest.raises(RuntimeError, match="Parameter counts differ"):
        vs_official.check_parameter_counts({("ours", "float32"): 5, ("official", "float32"): 6})


def test_cgnorm_fusion_ab_times_both_forms_of_the_same_function(capsys):
    from benchmarks import cgnorm_fusion_ab

    table = cgnorm_fusion_ab.main(["--tiny", "--repeats", "1"])
    (row,) = table.rows
    assert row["current CPU ms"] >= 0 and row["one-pass CPU ms"] >= 0
    assert row["max abs dy"] < 1e-4 and row["max rel d grad x"] < 1e-4
    assert row["max rel d var"] < 1e-4  # the moving average reads the same batch variance
    assert "CGNorm: batch norm + modulation" in capsys.readouterr().out


def test_all_part_knows_every_part():
    for part in suite.ALL:
        args = suite._part_arguments(part, tiny=True)
        assert args.part == part and args.tiny


def test_class_isolation_benchmark_reports_mulnet_as_exactly_isolated():
    from benchmarks import class_isolation

    rows = class_isolation.main(["--samples", "1"])
    assert rows["mulnet_shapes64"][1] == 0.0
    assert all(inside > 0 for inside, _ in rows.values())


def test_table_formatting():
    table = common.Table("t", ["a", "b"])
    table.add(a=1234567, b=0.000123)
    table.add(a=None, b=12.345)
    assert table.markdown().splitlines()[4:] == ["| 1,234,567 | 0.000123 |", "| - | 12.3 |"]
    with pytest.raises(KeyError):
        table.add(c=1)
    assert np.isfinite(common.memory_mb()["peak"])
    assert sys.platform != "linux" or common.memory_mb()["current"] > 0


def test_batch_norm_ab_times_both_layers_and_restores_the_library_class(capsys):
    from benchmarks import batch_norm_ab
    from smis_layers.layers import normalization

    fused = normalization.BatchNormalization
    argv = ["--models", "groupdnet_tiny", "--batch-size", "2", "--repeats", "1"]
    assert batch_norm_ab.main(argv) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1].split("|")
    assert row[1].strip() == "groupdnet_tiny" and float(row[5]) > 0
    assert normalization.BatchNormalization is fused


def test_build_models_takes_a_small_architecture_spec():
    """A spec builds like the *_shapes64 models (their discriminator); an unknown name says
    which are known."""
    generator, discriminator = common.build_models("groupdnet:classes=4,size=64,width=1,texture=1")
    assert generator.region_texture_code and generator.num_classes == 4
    assert discriminator.base_filters == 32
    with pytest.raises(ValueError, match="Unknown benchmark configuration 'nothing'"):
        common.build_models("nothing")
