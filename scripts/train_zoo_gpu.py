"""Trains the whole zoo at once on one GPU within a wall-clock budget (KERAS_BACKEND=torch).

The five presets train side by side, one `smis train` process each, with the same data, batch
and number of steps. The number of steps is chosen from a short probe: every model first
trains `--probe-steps` steps (all five at once, as in the real run), the slowest one's time per
step sets how many steps fit in the budget (a multiple of `--checkpoint-every`, at most
`--max-steps`). Each run ends with its preset (run folder/preset) and sample sheet; the script
then packs each preset into OUT/<model>.tar.gz (without checkpoints) and writes OUT/log.txt.

    KERAS_BACKEND=torch python scripts/train_zoo_gpu.py --runs runs_gpu --out OUT \\
        --budget-seconds 480

A run still going at the budget's end gets SIGTERM (it saves a checkpoint; `smis train` with
the same arguments resumes it elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

MODELS = (
    "groupdnet_shapes64",
    "mulnet_shapes64",
    "groupnet_shapes64",
    "groupenc_shapes64",
    "vspade_shapes64",
)


def train_command(model: str, out: Path, steps: int, args: argparse.Namespace) -> list[str]:
    return [
        sys.executable,
        "-m",
        "smis_layers.cli",
        "train",
        "--model",
        model,
        "--out",
        str(out),
        "--steps",
        str(steps),
        "--batch-size",
        str(args.batch_size),
        "--reconstruction-weight",
        str(args.reconstruction_weight),
        "--kl-weight",
        str(args.kl_weight),
        "--seed",
        "0",
        "--checkpoint-every",
        str(args.checkpoint_every),
        "--log-every",
        "0",
        "--verbose",
        "2",
    ]


def run_all(commands: dict[str, list[str]], logs: Path, deadline: float) -> dict[str, dict]:
    """Runs the commands side by side; SIGTERM to those still running at `deadline`."""
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 5) // len(commands)))}
    started, processes = time.time(), {}
    for model, command in commands.items():
        with open(logs / f"{model}.log", "w") as log:
            processes[model] = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env
            )
    results = {}
    while processes:
        for model, process in list(processes.items()):
            if process.poll() is not None:
                results[model] = {"rc": process.returncode, "seconds": time.time() - started}
                del processes[model]
        if time.time() > deadline:
            for process in processes.values():
                process.send_signal(signal.SIGTERM)
            for model, process in processes.items():
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
                results[model] = {"rc": "timed out", "seconds": time.time() - started}
            break
        time.sleep(1)
    return results


def seconds_per_step(run: Path, first: int, last: int) -> float:
    """Wall seconds per step between two checkpoints of a run (their state files)."""
    walls = [
        json.loads((run / f"checkpoint-{step}.state.json").read_text())["wall_time_s"]
        for step in (first, last)
    ]
    return (walls[1] - walls[0]) / (last - first)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True, help="folder for the run folders")
    parser.add_argument("--out", type=Path, required=True, help="folder for the packed presets")
    parser.add_argument("--budget-seconds", type=float, default=480.0)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--kl-weight", type=float, default=0.0001)
    parser.add_argument("--reconstruction-weight", type=float, default=10.0)
    parser.add_argument("--checkpoint-every", type=int, default=250)
    parser.add_argument("--probe-steps", type=int, default=40)
    parser.add_argument("--max-steps", type=int, default=30000)
    parser.add_argument("--min-steps", type=int, default=500)
    parser.add_argument(
        "--export-seconds",
        type=float,
        default=45.0,
        help="time kept after training for the presets and sample sheets",
    )
    args = parser.parse_args(argv)
    start = time.time()
    deadline = start + args.budget_seconds
    args.out.mkdir(parents=True, exist_ok=True)
    log_lines: list[str] = []

    def log(line: str) -> None:
        print(line, flush=True)
        log_lines.append(line)
        (args.out / "log.txt").write_text("\n".join(log_lines) + "\n")

    probe = args.probe_steps
    half = probe // 2
    probe_args = argparse.Namespace(**{**vars(args), "checkpoint_every": half})
    probes = {m: train_command(m, args.runs / "probe" / m, probe, probe_args) for m in args.models}
    results = run_all(probes, args.runs / "probe_logs", deadline)
    rates = {m: seconds_per_step(args.runs / "probe" / m, half, probe) for m in args.models}
    log(f"probe ({probe} steps, all at once): {results}")
    log("seconds per step: " + ", ".join(f"{m} {r:.3f}" for m, r in rates.items()))
    # 10% margin: the probe's second half still includes some warm-up-free noise.
    left = deadline - time.time() - args.export_seconds
    fit = int(left / (1.1 * max(rates.values())))
    steps = max(
        args.min_steps, min(args.max_steps, fit // args.checkpoint_every * args.checkpoint_every)
    )
    log(f"{left:.0f} s left for training: {steps} steps (fit {fit})")
    commands = {m: train_command(m, args.runs / m, steps, args) for m in args.models}
    log("command: " + " ".join(commands[args.models[0]][3:]))
    results = run_all(commands, args.runs / "logs", deadline)
    log(f"training: {results}")
    for model in args.models:
        run = args.runs / model
        with tarfile.open(args.out / f"{model}.tar.gz", "w:gz") as tar:
            for name in ("preset", "samples.png", "run.json", "state.json"):
                if (run / name).exists():
                    tar.add(run / name, arcname=f"{model}/{name}")
            tar.add(args.runs / "logs" / f"{model}.log", arcname=f"{model}/train.log")
    log(f"total {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
