"""SMISTrainer under `keras.distribution.DataParallel` on JAX: 2 devices equal 1 device.

The check runs in a subprocess (tests/training/jax_distributed_helper.py) because the number of
host devices (`XLA_FLAGS=--xla_force_host_platform_device_count=2`) is fixed when JAX starts.
XLA partitions the one jit-compiled step over the batch axis (SPMD): every batch mean, the KL
sum and the batch-norm statistics of CGNorm are reductions over the global batch, so batch norm
is synchronized across devices (what the official code calls sync batch norm) with no option to
set, and the step equals one device's at the same global batch.

openxla/xla#47945: for a batch-sharded grouped convolution (`feature_group_count > 1`, the
"native" lowering of GroupConv2D) the SPMD partitioner all-gathers the whole batch of
activations and computes the convolution on every device. Measured on this step: 92 all-gathers
of (4, H, W, C) activations with the native lowering, none with "split" (ordinary convolutions,
what "auto" picks on CPUs). The test checks that the compiled step of the default lowering has
no all-gather.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution on JAX")

HELPER = Path(__file__).with_name("jax_distributed_helper.py")
ROOT = HELPER.parents[2]


def _run(tmp_path: Path, lowering: str) -> tuple[dict, str]:
    dump = tmp_path / "hlo"
    flags = (
        "--xla_force_host_platform_device_count=2 --xla_dump_hlo_as_text "
        f"--xla_dump_to={dump} --xla_dump_hlo_module_re=.*train_step.*"
    )
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": flags, "PYTHONPATH": path}
    out = tmp_path / "steps.npz"
    result = subprocess.run(
        [sys.executable, str(HELPER), str(out), lowering],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    programs = sorted(dump.glob("*train_step*after_optimizations.txt"))
    # The distributed step is the program with collectives (the single-device one has none).
    distributed = [p.read_text() for p in programs if "all-reduce(" in p.read_text()]
    assert len(distributed) == 1, [p.name for p in programs]
    with np.load(out) as arrays:
        return dict(arrays), distributed[0]


@pytest.mark.slow
def test_two_devices_equal_one_device_with_global_batch_norm(tmp_path):
    arrays, hlo = _run(tmp_path, "auto")
    assert int(arrays["devices"]) == 2
    one = {k[4:]: v for k, v in arrays.items() if k.startswith("one/")}
    two = {k[4:]: v for k, v in arrays.items() if k.startswith("two/")}
    assert sorted(one) == sorted(two)
    for name in one:
        if name.endswith("seed_generator_state"):
            continue
        if name.startswith("loss/"):
            np.testing.assert_allclose(two[name], one[name], rtol=1e-5, err_msg=name)
        else:
            np.testing.assert_allclose(two[name], one[name], rtol=1e-5, atol=5e-6, err_msg=name)
    # The moving variance of a per-device batch norm would average the half-batches' variances,
    # not the global batch's: equal moving statistics mean synchronized batch norm.
    statistics = [n for n in one if n.endswith(("moving_mean", "moving_variance"))]
    assert len(statistics) >= 8 and all(np.any(one[n] != 0) for n in statistics)
    # Gradients and statistics are all-reduced; no activation is all-gathered (xla#47945).
    assert len(re.findall(r"all-reduce\(", hlo)) > 10
    assert re.findall(r"all-gather\(", hlo) == []
