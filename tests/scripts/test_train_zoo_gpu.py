"""scripts/zoo_recipe.py (the zoo recipe as data), scripts/train_zoo.sh (which reads it) and
scripts/train_zoo_gpu.py (the GPU's prepared command): its refusal, packing and reassembly
here; its whole tiny run, interrupted and resumed from the returned parts, with JAX in
subprocesses (slow)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import SCRIPTS, load_script

ROOT = SCRIPTS.parent


zoo_recipe = load_script("zoo_recipe")
train_zoo_gpu = load_script("train_zoo_gpu")


def _fake_run(folder: Path, steps: int, completed: int | None, preset: int | None) -> None:
    """A run folder's JSON files: run.json's phase target, state.json's step, the preset's."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps({"steps": steps}))
    if completed is not None:
        name = f"checkpoint-{completed}.weights.h5"
        state = {"completed_steps": completed, "checkpoint": name}
        (folder / "state.json").write_text(json.dumps(state))
        (folder / f"checkpoint-{completed}.state.json").write_text(json.dumps(state))
    if preset is not None:
        (folder / "preset").mkdir(exist_ok=True)
        metadata = {"training": {"completed_steps": preset}}
        (folder / "preset" / "metadata.json").write_text(json.dumps(metadata))


# ---- the recipe -----------------------------------------------------------------------------


def test_recipe_models_equal_the_named_architectures_plus_the_colour_code():
    from smis_layers.models.architectures import (
        ARCHITECTURES,
        SHAPES64_CLASSES,
        complete_architecture_name,
        small_architecture,
    )

    assert sorted(zoo_recipe.ZOO.models) == sorted(ARCHITECTURES)
    for name, spec in zoo_recipe.ZOO.models.items():
        model_class, config = ARCHITECTURES[name]
        if ":" not in spec:  # the named architecture itself
            assert spec == name
            continue
        assert ",colour=1" in spec, spec
        small_class, small = small_architecture(complete_architecture_name(spec, SHAPES64_CLASSES))
        assert small_class is model_class
        assert small.pop("region_colour_code") is True
        # A preset retrained for zoo v2 has the colour code in its named architecture too (and
        # the flagship v3 the texture code, in both).
        config = {k: v for k, v in config.items() if k != "region_colour_code"}
        assert small == config, name
    # GroupNet's widths have no small spec, so its named architecture carries the colour code;
    # VSPADE has no per-class codes.
    assert zoo_recipe.ZOO.models["groupnet_shapes64"] == "groupnet_shapes64"
    groupnet = dict(ARCHITECTURES["groupnet_shapes64"][1])
    assert groupnet.pop("region_colour_code") is True
    assert "region_colour_code" not in ARCHITECTURES["vspade_shapes64"][1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # widths that mix classes
        for width in range(1, 65):
            spec = f"groupnet:classes=8,size=64,width={width},encoder=16"
            assert small_architecture(spec)[1] != groupnet
    assert zoo_recipe.ZOO.models["vspade_shapes64"] == "vspade_shapes64"
    assert zoo_recipe.ZOO.models["groupdnet_shapes64"] == (
        "groupdnet:size=64,width=12,encoder=16,latent=12,colour=1,texture=2"
    )


def test_recipe_command_line_prints_the_shell_words():
    def words(*argv):
        result = subprocess.run(
            [sys.executable, str(SCRIPTS / "zoo_recipe.py"), *argv],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.splitlines()

    assert words("phases") == ["800", "1600", "2400", "4800"]
    assert words("seeds") == ["0", "1", "2"]
    args = words("args", "mulnet_shapes64", "--seed", "2")
    spec = "mulnet:size=64,width=16,encoder=16,latent=12,colour=1,texture=2"
    assert args[:4] == ["--model", spec, "--seed", "2"]
    assert "--kl-weight 0.0002 --prior-gan-weight 1 --lr-g 4e-4 --lr-d 1e-4" in " ".join(args)
    assert words("next", "/nonexistent/run") == ["--steps", "800"]


def test_next_phase_resumes_exports_again_or_extends(tmp_path):
    phases = (800, 1600, 2400, 4800)
    assert zoo_recipe.next_phase(tmp_path / "new", phases) == (800, False)
    _fake_run(tmp_path / "a", 800, None, None)  # killed before its first checkpoint
    assert zoo_recipe.next_phase(tmp_path / "a", phases) == (800, False)
    _fake_run(tmp_path / "b", 1600, 1234, 800)  # interrupted mid-phase 2
    assert zoo_recipe.next_phase(tmp_path / "b", phases) == (1600, True)
    _fake_run(tmp_path / "c", 1600, 1600, 800)  # interrupted in phase 2's export
    assert zoo_recipe.next_phase(tmp_path / "c", phases) == (1600, True)
    _fake_run(tmp_path / "d", 1600, 1600, 1600)
    assert zoo_recipe.next_phase(tmp_path / "d", phases) == (2400, True)
    _fake_run(tmp_path / "e", 4800, 4800, 4800)
    assert zoo_recipe.next_phase(tmp_path / "e", phases) is None


FAKE_SMIS = """\
import json, sys
from pathlib import Path
args = sys.argv[2:]
out, steps = Path(args[args.index("--out") + 1]), int(args[args.index("--steps") + 1])
out.mkdir(parents=True, exist_ok=True)
with open(out.parent / "calls.txt", "a") as calls:
    calls.write(" ".join(args) + "\\n")
(out / "run.json").write_text(json.dumps({"steps": steps}))
(out / "state.json").write_text(json.dumps({"completed_steps": steps}))
(out / "preset").mkdir(exist_ok=True)
(out / "preset" / "metadata.json").write_text(json.dumps({"training": {"completed_steps": steps}}))
"""


def test_train_zoo_sh_trains_the_recipes_phases_and_resumes(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "fake_smis.py").write_text(FAKE_SMIS)
    smis = bin_dir / "smis"
    smis.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{bin_dir / "fake_smis.py"}" "$@"\n')
    smis.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    command = ["bash", str(SCRIPTS / "train_zoo.sh"), "--seed", "1", str(tmp_path / "runs")]
    subprocess.run([*command, "mulnet_shapes64"], env=env, check=True)
    calls = (tmp_path / "runs" / "calls.txt").read_text().splitlines()
    assert [re.findall(r"(--extend )?--steps (\d+)", c)[0] for c in calls] == [
        ("", "800"),
        ("--extend ", "1600"),
        ("--extend ", "2400"),
        ("--extend ", "4800"),
    ]
    words = zoo_recipe.train_arguments(zoo_recipe.ZOO, "mulnet_shapes64", 1)
    assert all(call.endswith(" ".join(words)) for call in calls)
    assert f"--out {tmp_path / 'runs' / 'mulnet_shapes64-seed1'} " in calls[0]
    subprocess.run([*command, "mulnet_shapes64"], env=env, check=True)  # done: nothing to run
    assert len((tmp_path / "runs" / "calls.txt").read_text().splitlines()) == 4
    refused = subprocess.run([*command, "nonet"], env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "unknown model 'nonet'" in refused.stderr


# ---- train_zoo_gpu.py without training ------------------------------------------------------


def test_gpu_script_refuses_a_selection_whose_checkpoints_cannot_fit(tmp_path, capsys):
    argv = ["--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs"), "--seeds", "0"]
    models = ["--models", "groupdnet_shapes64", "mulnet_shapes64", "vspade_shapes64"]
    assert train_zoo_gpu.main([*argv, *models]) == 2
    error = capsys.readouterr().err
    assert "the checkpoints of the selected runs need 90.0 MiB" in error
    assert "groupdnet_shapes64-seed0 30.0 MiB" in error and "at most 63.8 MiB" in error
    assert "refused" in (tmp_path / "out" / "log.txt").read_text()
    assert not (tmp_path / "runs").exists()  # nothing started
    # Smaller parts hold less: 7 parts of 4 MiB cannot hold one checkpoint.
    assert train_zoo_gpu.main([*argv, "--part-mib", "4", "--models", "vspade_shapes64"]) == 2
    assert "at most 27.8 MiB of parts (7 parts of 4 MiB" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_zoo_gpu.parse_arguments([*argv, "--part-mib", "17"])


def test_gpu_script_packs_parts_drops_what_does_not_fit_and_reassembles(tmp_path):
    """Incompressible fake checkpoints and presets in parts of 0.5 MiB: OUT holds 3.25 MiB
    beside log.txt, so the second run's checkpoint is dropped; the rest comes back whole."""
    runs, out = tmp_path / "runs", tmp_path / "out"
    argv = ["--tiny", "--runs", str(runs), "--out", str(out), "--seeds", "0", "1"]
    args = train_zoo_gpu.parse_arguments([*argv, "--part-mib", "0.5"])
    out.mkdir()
    rng = np.random.default_rng(0)
    contents = {}
    for seed, (completed, preset) in enumerate([(5, None), (12, 12)]):
        folder = runs / zoo_recipe.run_name("tiny_groupdnet", seed)
        _fake_run(folder, 12, completed, preset)
        big = {f"checkpoint-{completed}.weights.h5": 1_500_000}
        if preset:
            big["preset/model.weights.h5"] = 600_000
        for name, size in big.items():
            (folder / name).write_bytes(rng.bytes(size))
        contents[folder.name] = {
            str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()
        }
    log = train_zoo_gpu.Log(out / "log.txt")
    selected = [train_zoo_gpu.Run(args.recipe, "tiny_groupdnet", s, runs) for s in (0, 1)]
    parts = train_zoo_gpu.pack(selected, args, log)
    assert all(p.stat().st_size <= 0.5 * 2**20 for p in parts)
    assert len(list(out.iterdir())) <= 8 and len(parts) >= 4  # split, log.txt beside
    text = (out / "log.txt").read_text()
    assert "DROPPED the checkpoint of tiny_groupdnet-seed1" in text
    assert "DROPPED the checkpoint of tiny_groupdnet-seed0" not in text

    back = tmp_path / "back"
    train_zoo_gpu.unpack(out, back, log)
    got = {
        f"{p.relative_to(back).parts[0]}/{Path(*p.relative_to(back).parts[1:])}": p.read_bytes()
        for p in back.rglob("*")
        if p.is_file()
    }
    expected = {
        f"{run}/{name}": data for run, files in contents.items() for name, data in files.items()
    }
    kept = {
        k: v
        for k, v in expected.items()
        if not k.startswith("tiny_groupdnet-seed1/") or "preset/" in k
    }
    assert {k: v for k, v in got.items() if not k.startswith("logs/")} == kept
    (out / "checkpoints.tar.gz.001").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks parts \[1\]"):
        train_zoo_gpu.unpack(out, tmp_path / "again", log)


# ---- the whole tiny run with JAX ------------------------------------------------------------


def _gpu_call(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    """scripts/train_zoo_gpu.sh with KERAS_BACKEND=jax and TensorFlow hidden, as on the GPU
    machine (whatever the backend of this test process)."""
    blocker = tmp_path / "no_tensorflow" / "tensorflow"
    blocker.mkdir(parents=True, exist_ok=True)
    (blocker / "__init__.py").write_text("raise ImportError('no TensorFlow on the GPU machine')\n")
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    env.update(KERAS_BACKEND="jax", PYTHONPATH=str(blocker.parent))
    return subprocess.run(
        ["bash", str(SCRIPTS / "train_zoo_gpu.sh"), "--tiny", "--seeds", "0", "1", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _check_returned(out: Path) -> None:
    files = list(out.iterdir())
    assert len(files) <= 8 and all(f.is_file() for f in files)
    assert all(f.stat().st_size <= 2**20 for f in files), [
        (f.name, f.stat().st_size) for f in files
    ]


@pytest.mark.slow
def test_tiny_zoo_is_interrupted_packed_and_resumed_from_the_returned_parts(tmp_path):
    out1, out2 = tmp_path / "out1", tmp_path / "out2"
    first = _gpu_call(
        tmp_path, "--runs", str(tmp_path / "runs1"), "--out", str(out1), "--interrupt-at-step", "2"
    )
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    _check_returned(out1)
    assert len(list(out1.glob("checkpoints.tar.gz.*"))) >= 2  # split
    log1 = (out1 / "log.txt").read_text()
    stopped = {}
    for seed in (0, 1):
        name = zoo_recipe.run_name("tiny_groupdnet", seed)
        step = zoo_recipe.completed_steps(tmp_path / "runs1" / name)
        assert 2 <= step < 12, log1  # SIGTERM mid-phase 1 saved a checkpoint there
        assert f"{name}: interrupted, checkpoint at step {step}" in log1
        stopped[name] = step

    second = _gpu_call(
        tmp_path, "--runs", str(tmp_path / "runs2"), "--out", str(out2), "--resume", str(out1)
    )
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    _check_returned(out2)
    log2 = (out2 / "log.txt").read_text()
    for name, step in stopped.items():
        folder = tmp_path / "runs2" / name
        train_log = (tmp_path / "runs2" / "logs" / f"{name}.log").read_text()
        assert "SIGTERM received" in train_log  # call 1's output, carried in the parts
        assert f"resuming {folder} at step {step}/12" in train_log  # not from 0
        assert zoo_recipe.completed_steps(folder) == 16 and zoo_recipe.preset_steps(folder) == 16
        assert f"{name}: steps {step} -> 16" in log2
    back = tmp_path / "back"
    train_zoo_gpu.unpack(out2, back, train_zoo_gpu.Log(tmp_path / "log.txt"))
    preset = back / zoo_recipe.run_name("tiny_groupdnet", 0) / "preset"
    assert zoo_recipe.preset_steps(preset.parent) == 16
    assert (preset / "model.weights.h5").is_file()
