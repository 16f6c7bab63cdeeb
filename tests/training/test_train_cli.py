"""`smis train` end to end: a run killed with SIGKILL resumes and ends like an uninterrupted one."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from smis_layers.models import GroupDNet
from smis_layers.training.run import read_state
from tests.helpers import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "tensorflow", reason="the trainer needs TensorFlow")

ARGS = [
    "--model",
    "groupdnet_shapes64",
    "--steps",
    "6",
    "--checkpoint-every",
    "2",
    "--batch-size",
    "2",
    "--d-layers",
    "2",
    "--d-filters",
    "8",
    "--verbose",
    "0",
    "--code-prior-samples",
    "16",
]


def _command(out):
    return [sys.executable, "-m", "smis_layers.cli", "train", *ARGS, "--out", str(out)]


def _environment():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}


def test_sigkill_then_same_command_resumes_to_the_same_weights(tmp_path):
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        _command(killed), env=_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while time.time() < deadline:
        state = read_state(killed) if killed.exists() else None
        if state and state["completed_steps"] >= 2:
            break
        if process.poll() is not None:
            pytest.fail("the training process ended before it could be killed")
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert read_state(killed)["completed_steps"] < 6, "killed too late to test resuming"
    assert not (killed / "preset").exists()

    resumed = subprocess.run(
        _command(killed), env=_environment(), capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    straight = tmp_path / "straight"
    result = subprocess.run(
        _command(straight), env=_environment(), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr

    a = GroupDNet.from_preset(killed / "preset")
    b = GroupDNet.from_preset(straight / "preset")
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_allclose(x.numpy(), y.numpy(), atol=1e-6)
    metadata = json.loads((killed / "preset" / "metadata.json").read_text())
    assert metadata["training"]["command"].startswith("smis train --model groupdnet_shapes64")
    assert metadata["training"]["completed_steps"] == 6


def test_stop_at_past_the_steps_is_refused(tmp_path):
    result = subprocess.run(
        [*_command(tmp_path / "run"), "--stop-at", "7"],
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "`stop_at` must be an integer in [1, steps=6]; received 7" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()
