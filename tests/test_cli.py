import os
import subprocess
import sys

import pytest

from smis_layers import __version__
from smis_layers.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"smis-layers {__version__}"


def test_info_reports_backend_and_lowering(capsys):
    import keras

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"backend      {keras.backend.backend()}" in out
    assert "lowering='auto' outside XLA on this machine: float32 " in out
    assert "bfloat16" in out and "float16" in out
    assert "cpu          " in out


def test_module_entry_point_without_command():
    result = subprocess.run(
        [sys.executable, "-m", "smis_layers.cli"], capture_output=True, text=True, check=True
    )
    assert "usage: smis" in result.stdout


TENSORFLOW_STARTUP_LINES = ("absl::InitializeLog", "oneDNN custom operations", "cudart_stub")


def test_commands_start_without_tensorflow_startup_lines():
    """`smis info` imports TensorFlow; its C++ start-up lines stay off the terminal."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["KERAS_BACKEND"] = "tensorflow"
    result = subprocess.run(
        [sys.executable, "-m", "smis_layers.cli", "info"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert "backend      tensorflow" in result.stdout
    output = result.stdout + result.stderr
    assert not [line for line in TENSORFLOW_STARTUP_LINES if line in output], result.stderr


def test_quiet_tensorflow_steps_aside_when_asked_to_be_verbose(monkeypatch):
    from smis_layers.utils import logs

    hooks = [f for f in sys.meta_path if isinstance(f, logs._QuietImport)]
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    monkeypatch.setattr(sys, "meta_path", [f for f in sys.meta_path if f not in hooks])
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    logs.quiet_tensorflow(verbose=True)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # the user asks for TensorFlow's logs
    logs.quiet_tensorflow()
    assert not any(isinstance(f, logs._QuietImport) for f in sys.meta_path)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    logs.quiet_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    assert isinstance(sys.meta_path[0], logs._QuietImport)


def test_convert_official_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["convert-official", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--generator", "--encoder", "--config", "--out", "--overwrite"):
        assert option in out
    assert "--model-config" not in out  # advanced option, kept out of the help
    with pytest.raises(SystemExit) as exit_info:  # the architecture is required
        main(["convert-official", "--generator", "g.pth", "--out", "preset"])
    assert exit_info.value.code == 2
    assert "one of the arguments --config" in capsys.readouterr().err
