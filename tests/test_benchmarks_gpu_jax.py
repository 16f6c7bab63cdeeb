"""The prepared GPU command (benchmarks/gpu_jax.sh) runs end to end on the CPU with --tiny."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "jax", reason="runs from the JAX suite")

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_jax_command_runs_tiny_rows_and_writes_its_tables(tmp_path):
    result = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_jax.sh"), "--tiny", "--out", str(tmp_path)],
        env={**os.environ, "KERAS_BACKEND": "jax"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "gpu_jax.json").read_text())
    rows = {row["row"]: row for row in results["rows"]}
    assert set(rows) == {"matmul", "jax train", "torch train", "generate"}
    assert results["skipped"] == []
    for name in ("jax train", "torch train", "generate"):
        assert rows[name]["images/s"] > 0, rows[name]
    assert 0 < rows["jax train"]["MFU"] < 1
    table = (tmp_path / "gpu_jax.md").read_text()
    assert "| jax train | tiny | 2 | float32 |" in table


def test_gpu_jax_budget_skips_and_lists_the_rows_left(tmp_path):
    from benchmarks import gpu_jax

    results = gpu_jax.run(tmp_path, budget_seconds=0.0, tiny=True, steps=1)
    assert results["rows"] == [] and results["skipped"] == gpu_jax.plan(tiny=True)
    assert "Skipped (budget)" in (tmp_path / "gpu_jax.md").read_text()
