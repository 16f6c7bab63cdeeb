"""SMISTrainer under tf.distribute: MirroredStrategy equals one device; multi-worker stays in sync.

Both checks run in subprocesses (tests/training/distributed_helper.py): the 2 logical CPU
devices and the multi-worker cluster must be configured before TensorFlow initializes, which
the pytest process has already done. Every subprocess is bounded by a timeout.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute needs TensorFlow")

HELPER = Path(__file__).with_name("distributed_helper.py")
ROOT = HELPER.parents[2]
TIMEOUT_S = 180
# One step of the same global batch (4 samples, 2 per replica) reduces float32 sums in another
# order (per replica, then across replicas). Measured on 2 CPU cores (TF 2.21, oneDNN): losses
# within 3.0e-7 relative, updates within 2.0e-6 (generator) and 9.5e-7 (discriminator) of the
# network's largest update. A wrong loss scale moves them by far more: mean terms not divided by
# the replicas (the trainer before this test) 0.41 / 0.24, the KL sum divided 0.5 / 0.035.
LOSS_RTOL = 1e-5
UPDATE_RTOL = 2e-5


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    path = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return {
        **env,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "KERAS_BACKEND": "tensorflow",
        "PYTHONPATH": path,
        **extra,
    }


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_mirrored_step_equals_single_device_step(tmp_path):
    """One MirroredStrategy step over 2 logical CPUs == one step without a strategy.

    The generator uses norm="sync_batch" (the official synchronized batch norm; per-replica
    batch norm would normalize each half-batch with its own statistics). The replicas cannot
    draw the 1-device step's noise (each draws its sub-batch's eps from the same seed, i.e. the
    first rows of the 1-device draw), so the logvar conv's bias is set to -60: z = mu up to
    ~1e-13. Everything else is compared: the losses (all of them, the KL sum included) and
    the updated weights of both networks after an SGD step (lr 1: the update is the gradient,
    so a wrong scale cannot hide as it would under Adam's first step).
    """
    out = tmp_path / "mirrored.json"
    process = subprocess.run(
        [sys.executable, str(HELPER), "mirrored", str(out)],
        cwd=ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["num_replicas"] == 2
    assert result["weights_copied_exactly"]
    assert result["replica_copies_equal"], "the replicas' copies of a variable differ"
    single, distributed = result["losses_single"], result["losses_distributed"]
    assert set(single) == set(distributed)
    for name, value in single.items():
        assert distributed[name] == pytest.approx(value, rel=LOSS_RTOL, abs=1e-7), name
    assert single["g_kl"] > 1.0  # non-trivial, so a halved KL (a wrong replica share) shows
    for name in ("generator", "discriminator"):
        assert result[f"{name}_changed_fraction"] == 1.0, name
        assert result[f"{name}_updates"]["global"] < UPDATE_RTOL, (name, result[f"{name}_updates"])


def _run_workers(commands: list[list[str]], envs: list[dict], logs: list[Path]) -> list[int]:
    """Runs the workers together; the first failure or the timeout kills the others (SIGKILL:
    TensorFlow's multi-worker preemption handler catches SIGTERM)."""
    processes = []
    try:
        for command, env, log in zip(commands, envs, logs, strict=True):
            with open(log, "wb") as out:
                processes.append(
                    subprocess.Popen(
                        command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
                    )
                )
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            codes = [p.poll() for p in processes]
            if all(c is not None for c in codes) or any(c not in (None, 0) for c in codes):
                break
            time.sleep(0.2)
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
            p.wait()
    return [p.returncode for p in processes]


def test_multi_worker_mirrored_workers_stay_in_sync(tmp_path):
    """Two MultiWorkerMirroredStrategy workers on 127.0.0.1 train 3 steps in lockstep.

    One CPU replica per worker (num_replicas_in_sync 2), a global batch of 4 synthetic samples
    (tf.data auto-sharding gives worker 0 samples 0-1 and worker 1 samples 2-3 of every batch).
    Both must end with finite losses, bitwise identical weights and identical logs.
    """
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    outs = [tmp_path / f"worker{i}.npz" for i in range(2)]
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    envs = [
        _environment(
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        )
        for i in range(2)
    ]
    commands = [[sys.executable, str(HELPER), "worker", str(out), "3"] for out in outs]
    codes = _run_workers(commands, envs, logs)
    for i, code in enumerate(codes):
        tail = logs[i].read_text(errors="replace")[-3000:]
        assert code == 0, f"worker {i} exited with {code} (timeout {TIMEOUT_S} s):\n{tail}"
    results = [np.load(out) for out in outs]
    for r in results:
        assert int(r["num_replicas"]) == 2
        losses = json.loads(str(r["losses"]))
        assert all(np.isfinite(v) for v in losses.values()), losses
        assert float(r["changed_fraction"]) > 0.9  # it trained: nearly every variable moved
    names = [n for n in results[0].files if n.startswith(("generator_", "discriminator_"))]
    assert names and sorted(names) == sorted(
        n for n in results[1].files if n.startswith(("generator_", "discriminator_"))
    )
    for name in names:
        np.testing.assert_array_equal(results[0][name], results[1][name], err_msg=name)
    assert json.loads(str(results[0]["losses"])) == json.loads(str(results[1]["losses"]))
