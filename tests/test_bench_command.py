"""`smis bench` runs the benchmark suite of a source checkout also when the package is
installed from a wheel (which does not ship `benchmarks/`), and says what to do without one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from smis_layers.cli import main
from smis_layers.cli_applications import CommandError, benchmark_suite

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def wheel_install(monkeypatch):
    """`benchmarks` is not importable, as from an installed wheel (sys.path is restored)."""
    for name in [m for m in sys.modules if m.startswith("benchmarks.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "benchmarks", None)  # import benchmarks -> ImportError
    monkeypatch.setattr(sys, "path", list(sys.path))


def test_the_suite_is_found_from_inside_a_checkout(wheel_install, monkeypatch):
    monkeypatch.chdir(ROOT / "docs")  # any folder of the checkout
    suite = benchmark_suite()
    assert suite.__module__ == "benchmarks.__main__"
    assert Path(sys.modules["benchmarks.__main__"].__file__).is_relative_to(ROOT)


def test_the_suite_is_found_in_source(wheel_install, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert benchmark_suite(ROOT).__module__ == "benchmarks.__main__"


def test_without_a_checkout_the_error_says_what_to_do(wheel_install, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "flops", "--tiny"]) == 1
    err = capsys.readouterr().err
    assert "source checkout" in err and "--source CHECKOUT" in err and str(tmp_path) in err
    with pytest.raises(CommandError, match=r"none found in --source .*nowhere"):
        benchmark_suite(tmp_path / "nowhere")
