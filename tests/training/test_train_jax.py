"""`smis train` on the JAX backend (run with KERAS_BACKEND=jax): a stopped and continued, or a
SIGKILLed, run equals an uninterrupted one bit for bit. The model is the tiny run
architecture of tests/helpers.py; the compiled step is shared through JAX's persistent
compilation cache (tests/conftest.py)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from smis_layers.model_card import write_model_card
from smis_layers.models import GroupDNet
from smis_layers.training.run import read_state, train_run
from tests.helpers import BACKEND, TINY, TINY_ARGS, TINY_SETUP, to_numpy

pytestmark = pytest.mark.skipif(BACKEND != "jax", reason="the JAX training step")

ROOT = Path(__file__).resolve().parents[2]
# The prior GAN term draws random codes too, which a continued run must redraw exactly.
ARGS = {
    **TINY_ARGS,
    "steps": 4,
    "checkpoint_every": 2,
    "prior_gan_weight": 1.0,
    "check_memory": False,
}


def _weights(preset: Path) -> list[np.ndarray]:
    return [to_numpy(v) for v in GroupDNet.from_preset(preset).weights]


@pytest.mark.slow
@pytest.mark.usefixtures("tiny_runs")
def test_stopped_and_continued_run_equals_an_uninterrupted_one(tmp_path):
    full = train_run(
        out=tmp_path / "full",
        log_every=2,
        code_prior_samples=16,
        **{k: v for k, v in ARGS.items() if k not in ("log_every", "code_prior_samples")},
    )
    stopped = tmp_path / "stopped"
    assert train_run(out=stopped, stop_at=2, **ARGS) is None
    assert read_state(stopped)["completed_steps"] == 2 and not (stopped / "preset").exists()
    continued = train_run(out=stopped, **ARGS)
    for a, b in zip(_weights(full), _weights(continued), strict=True):
        np.testing.assert_array_equal(a, b)
    training = json.loads((full / "metadata.json").read_text())["training"]
    assert training["keras_backend"] == "jax" and training["completed_steps"] == 4
    assert "(KERAS_BACKEND=jax)" in write_model_card(full).read_text()
    assert GroupDNet.from_preset(full).code_prior is not None
    assert list((tmp_path / "full" / "logs").glob("events.out.tfevents.*"))


def _command(out: Path) -> list[str]:
    body = TINY_SETUP + textwrap.dedent(
        f"""
        import sys
        from smis_layers.cli import main
        sys.exit(main(["train", "--model", "{TINY}", "--steps", "6", "--checkpoint-every",
                       "2", "--batch-size", "2", "--d-scales", "1", "--d-layers", "1",
                       "--d-filters", "4", "--log-every", "0", "--verbose", "0",
                       "--prior-gan-weight", "1", "--code-prior-samples", "0",
                       "--out", r"{out}"]))
        """
    )
    return [sys.executable, "-c", body]


def _environment() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": path}


@pytest.mark.slow
def test_sigkill_then_same_command_resumes_to_the_same_weights(tmp_path):
    straight = tmp_path / "straight"
    result = subprocess.run(
        _command(straight), env=_environment(), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        _command(killed), env=_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 300
    while time.time() < deadline:
        state = read_state(killed) if (killed / "state.json").exists() else None
        if state and state["completed_steps"] >= 2:
            break
        if process.poll() is not None:
            pytest.fail(f"training ended before it could be killed: {process.communicate()}")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert read_state(killed)["completed_steps"] < 6, "killed too late to test resuming"
    resumed = subprocess.run(
        _command(killed), env=_environment(), capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout
    for a, b in zip(_weights(straight / "preset"), _weights(killed / "preset"), strict=True):
        np.testing.assert_array_equal(a, b)
