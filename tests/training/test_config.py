"""Each default of a training run is written once, in `smis_layers.training.config`: the
`smis train` options, `train_run`'s and `SMISTrainer.compile`'s defaults read it, and run.json
files of earlier versions are read with it."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
from pathlib import Path

import pytest

from smis_layers.cli import build_parser
from smis_layers.training.config import (
    DEFAULT_OMITTED,
    EXTENDABLE,
    RunConfig,
    RunOptions,
    defaults,
    run_arguments,
)

PACKAGE = Path(__file__).resolve().parents[2] / "smis_layers"
CONFIG = PACKAGE / "training" / "config.py"
SETTINGS = {f.name for cls in (RunConfig, RunOptions) for f in dataclasses.fields(cls)}
#: The settings whose names belong to a training run only (seed, steps, batch_size, verbose,
#: overwrite, jit_compile ... name other functions' own arguments too).
RUN_ONLY = {
    "lr_g",
    "lr_d",
    "kl_weight",
    "reconstruction_weight",
    "prior_gan_weight",
    "latent_weight",
    "region_colour_weight",
    "region_spectrum_weight",
    "init_from",
    "d_scales",
    "d_layers",
    "d_filters",
    "checkpoint_every",
    "code_prior_samples",
    "log_every",
    "dtype_policy",
}


def _parse(*extra: str):
    return build_parser().parse_args(
        ["train", "--model", "m", "--steps", "4", "--out", "o", *extra]
    )


def test_the_cli_options_are_the_fields_with_their_defaults():
    args = _parse()
    for cls in (RunConfig, RunOptions):
        for name, default in defaults(cls).items():
            if name != "verify_data":  # --no-verify
                assert getattr(args, name) == default, name
    kwargs = run_arguments(_parse("--jit-compile", "false", "--no-verify", "--kl-weight", "0.5"))
    assert kwargs["jit_compile"] is False and kwargs["verify_data"] is False
    assert kwargs["kl_weight"] == 0.5
    assert set(kwargs) == SETTINGS - {"model", "steps"}


def test_train_run_takes_every_setting_with_its_default():
    from smis_layers.training.run import train_run

    parameters = inspect.signature(train_run).parameters
    assert set(parameters) >= SETTINGS
    for name, default in {**defaults(RunConfig), **defaults(RunOptions)}.items():
        assert parameters[name].default == default, name


def test_the_trainer_defaults_are_the_run_defaults():
    from smis_layers.training.trainer import SMISTrainer

    parameters = inspect.signature(SMISTrainer.compile).parameters
    run = defaults(RunConfig)
    weights = ("kl_weight", "reconstruction_weight", "prior_gan_weight", "latent_weight")
    for name in (*weights, "region_colour_weight", "region_spectrum_weight"):
        assert parameters[name].default == run[name], name


def _literal_settings(tree: ast.AST) -> list[tuple[int, str]]:
    """Where a setting's name is given a literal number or string: a parameter default, a
    call's keyword, `mapping.get("name", literal)` or `add_argument("--name", default=...)`."""
    found = []

    def literal(node) -> bool:
        return isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str))

    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            positional = [*args.posonlyargs, *args.args]
            with_defaults = positional[len(positional) - len(args.defaults) :]
            pairs = list(zip(with_defaults, args.defaults, strict=True))
            pairs += zip(args.kwonlyargs, args.kw_defaults, strict=True)
            found += [(d.lineno, a.arg) for a, d in pairs if a.arg in RUN_ONLY and literal(d)]
        elif isinstance(node, ast.Call):
            found += [
                (k.lineno, k.arg) for k in node.keywords if k.arg in RUN_ONLY and literal(k.value)
            ]
            name = getattr(node.func, "attr", None)
            first = node.args[0] if node.args else None
            get = name == "get" and len(node.args) == 2 and literal(first)
            if get and literal(node.args[1]) and first.value in RUN_ONLY:
                found.append((node.lineno, first.value))
            if name == "add_argument" and literal(first) and str(first.value).startswith("--"):
                setting = first.value[2:].replace("-", "_")
                if setting in RUN_ONLY and any(k.arg == "default" for k in node.keywords):
                    found.append((node.lineno, setting))
    return found


def test_no_setting_default_is_written_outside_the_config():
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line} {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != CONFIG
        for line, name in _literal_settings(ast.parse(path.read_text()))
    ]
    assert not found, f"setting defaults written outside smis_layers/training/config.py: {found}"


def test_the_literal_scan_finds_what_it_looks_for():
    source = (
        "def f(kl_weight=0.05): pass\n"
        "g(lr_g=1e-4)\n"
        "run.get('kl_weight', 0.05)\n"
        "parser.add_argument('--kl-weight', type=float, default=0.05)\n"
    )
    assert [name for _, name in _literal_settings(ast.parse(source))] == [
        "kl_weight",
        "lr_g",
        "kl_weight",
        "kl_weight",
    ]


def test_run_json_of_an_earlier_version_is_read_with_the_defaults(tmp_path):
    """A run.json from before kl_weight, reconstruction_weight, dtype_policy and
    prior_gan_weight existed resumes with their defaults (nothing counts as changed)."""
    from smis_layers.training.run_folder import RUN_FILE, open_run_folder

    config = RunConfig(model="groupdnet_shapes64", steps=4, checkpoint_every=2)
    run = config.to_run_json(image_size=64, num_classes=8)
    assert all(name not in run for name in DEFAULT_OMITTED)  # at their defaults
    old = {k: v for k, v in run.items() if k not in ("kl_weight", "reconstruction_weight")}
    (tmp_path / RUN_FILE).write_text(json.dumps({**old, "command": "smis train old"}))
    assert RunConfig.from_run_json(old) == config
    assert open_run_folder(tmp_path, run, extend=False, overwrite=False, command=None) == run
    with pytest.raises(ValueError, match=r"other arguments \{'kl_weight': \(0.05, 0.5\)\}"):
        changed = RunConfig(model="groupdnet_shapes64", steps=4, checkpoint_every=2, kl_weight=0.5)
        open_run_folder(tmp_path, changed.to_run_json(64, 8), False, False, None)


def test_run_json_keeps_its_format():
    config = RunConfig(
        model="m",
        steps=4,
        dtype_policy="mixed_bfloat16",
        prior_gan_weight=1.0,
        latent_weight=1.0,
        region_colour_weight=1.0,
        region_spectrum_weight=1.0,
    )
    run = config.to_run_json(image_size=64, num_classes=8)
    assert list(run) == [
        "model", "steps", "batch_size", "data", "data_dir", "checkpoint_every", "seed", "lr_g",
        "lr_d", "d_scales", "d_layers", "d_filters", "reconstruction_weight", "kl_weight",
        "jit_compile", "vgg_weights", "image_size", "num_classes", "dtype_policy",
        "prior_gan_weight", "latent_weight", "region_colour_weight", "region_spectrum_weight",
    ]  # fmt: skip
    assert EXTENDABLE == (
        "steps", "lr_g", "lr_d", "reconstruction_weight", "kl_weight", "jit_compile",
        "vgg_weights", "prior_gan_weight", "latent_weight", "region_colour_weight",
        "region_spectrum_weight",
    )  # fmt: skip
