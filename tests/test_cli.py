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
