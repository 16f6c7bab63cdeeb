"""Trains the zoo on one GPU through the JAX trainer, within one call's wall-clock budget, and
packs what a later call needs to go on into files the device tool returns.

The recipe (models, arguments, seeds, phases) is `scripts/zoo_recipe.py`'s. The selected runs
(`--models` x `--seeds`, priority in table order, then seed order) train side by side, one
`smis train` process each (KERAS_BACKEND=jax, `XLA_PYTHON_CLIENT_PREALLOCATE=false`,
`XLA_PYTHON_CLIENT_MEM_FRACTION` = 0.9 / the number of processes), each through the recipe's
phases: phase 1 `--steps 800`, then `--extend --steps 1600`, ... A run interrupted mid-phase
resumes that phase; a phase interrupted during its export exports again.

At `--budget-seconds` minus `--export-seconds` the processes still running get SIGTERM:
`smis train` saves a checkpoint after its current step and exits with 143. The time kept
(`--export-seconds`) covers those checkpoints and the packing.

What comes back (`--out`, the device tool's $OUT; at most 8 files, 64 MiB in all):

- `log.txt`: what happened, run by run, and what was packed or dropped;
- `presets.tar.gz.NNN`: per run its newest preset (`<run>/preset/`, when a phase ended) and
  its `smis train` output of this call and the earlier ones (`logs/<run>.log`);
- `checkpoints.tar.gz.NNN`: per run the newest checkpoint with its state and run.json, which is
  what `--resume` needs.

Each stream is split into parts of at most `--part-mib` MiB (default 15). When the streams do
not fit, the checkpoints of finished runs go first, then those of the lowest-priority runs,
then presets from the lowest priority, each named in log.txt. A selection whose checkpoints
alone cannot fit is refused before anything trains (`--allow-dropped-checkpoints` trains it
anyway, bringing back the checkpoints of the first runs that fit).

    bash scripts/train_zoo_gpu.sh --models groupdnet_shapes64 --seeds 0 1     # on the GPU
    bash scripts/train_zoo_gpu.sh --resume runs/zoo_back --models ...         # a later call
    python scripts/train_zoo_gpu.py --tiny --runs /tmp/r --out /tmp/o         # CPU (tests)

`--resume DIR` reassembles the run folders from a previous call's parts in DIR (the files it
returned, both streams or the checkpoints alone) into `--runs`, then continues each run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import zoo_recipe

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20
#: What the device tool returns: files, bytes in all, bytes per file.
MAX_FILES = 8
MAX_TOTAL_MIB = 64
MAX_PART_MIB = 16
#: Room kept for log.txt within the total.
LOG_RESERVE = MIB // 4
STREAMS = ("presets", "checkpoints")
PART = re.compile(r"^(presets|checkpoints)\.tar\.gz\.(\d{3})$")
EXIT_INTERRUPTED = 128 + signal.SIGTERM


class Log:
    """Lines printed and kept in OUT/log.txt (rewritten at each line, so it survives a kill)."""

    def __init__(self, path: Path):
        self.path, self.lines, self.start = path, [], time.time()

    def __call__(self, line: str) -> None:
        line = f"[{time.time() - self.start:6.1f} s] {line}"
        print(line, flush=True)
        self.lines.append(line)
        self.path.write_text("\n".join(self.lines) + "\n")


class Run:
    """One (model, seed) run of the selection and its process in this call."""

    def __init__(self, recipe: zoo_recipe.Recipe, model: str, seed: int, runs: Path):
        self.model, self.seed = model, seed
        self.name = zoo_recipe.run_name(model, seed)
        self.folder = runs / self.name
        # Beside the run folder (which smis train creates): the logs of every call, appended.
        self.log = runs / "logs" / f"{self.name}.log"
        self.arguments = zoo_recipe.train_arguments(recipe, model, seed)
        self.phases = recipe.phases
        self.start_step = zoo_recipe.completed_steps(self.folder)
        self.process: subprocess.Popen | None = None
        self.phase: tuple[int, bool] | None = None
        self.stopped = False  # no further phase in this call (interrupted, failed)
        self.outcome = "not started"
        self.signalled = False

    def next_phase(self) -> tuple[int, bool] | None:
        return zoo_recipe.next_phase(self.folder, self.phases)

    @property
    def finished(self) -> bool:
        return self.next_phase() is None

    def checkpoint_files(self) -> list[Path]:
        """run.json, state.json and the checkpoint (weights, state) it names; [] without one."""
        try:
            state = json.loads((self.folder / "state.json").read_text())
        except (OSError, ValueError):
            return []
        weights = self.folder / state["checkpoint"]
        step_state = self.folder / f"checkpoint-{state['completed_steps']}.state.json"
        files = [self.folder / "run.json", self.folder / "state.json", weights, step_state]
        return [f for f in files if f.is_file()]

    def preset_files(self) -> list[Path]:
        preset = self.folder / "preset"
        if zoo_recipe.preset_steps(self.folder) is None:
            return []
        return sorted(p for p in preset.iterdir() if p.is_file())

    def checkpoint_mib(self, estimate: float) -> float:
        files = self.checkpoint_files()
        return sum(f.stat().st_size for f in files) / MIB if files else estimate


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the files to return ($OUT)")
    parser.add_argument("--runs", type=Path, default=Path("runs/zoo_gpu"), help="run folders")
    parser.add_argument("--resume", type=Path, help="a previous call's returned parts")
    parser.add_argument("--models", nargs="+", help="default: all of the recipe's")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--budget-seconds", type=float, default=480.0)
    parser.add_argument(
        "--export-seconds",
        type=float,
        default=60.0,
        help="kept at the end of the budget for the interrupted runs' checkpoints and packing",
    )
    parser.add_argument("--part-mib", type=float, help="part size (default 15; --tiny 1)")
    parser.add_argument(
        "--allow-dropped-checkpoints",
        action="store_true",
        help="train a selection whose checkpoints cannot all come back",
    )
    parser.add_argument("--tiny", action="store_true", help="the tiny recipe, on the CPU")
    parser.add_argument(
        "--interrupt-at-step",
        type=int,
        help="(tests) SIGTERM each run once its checkpoint reaches this step, as the budget does",
    )
    args = parser.parse_args(argv)
    args.recipe = zoo_recipe.TINY if args.tiny else zoo_recipe.ZOO
    args.models = args.models or list(args.recipe.models)
    unknown = [m for m in args.models if m not in args.recipe.models]
    if unknown:
        parser.error(f"unknown models {unknown}; the recipe's: {list(args.recipe.models)}")
    if args.part_mib is None:
        args.part_mib = 1.0 if args.tiny else 15.0
    if not 0 < args.part_mib <= MAX_PART_MIB:
        parser.error(f"--part-mib must be in (0, {MAX_PART_MIB}]; received {args.part_mib}")
    return args


def capacity_bytes(part_mib: float) -> int:
    """Bytes of parts that OUT can return beside log.txt."""
    return min(MAX_TOTAL_MIB * MIB, (MAX_FILES - 1) * int(part_mib * MIB)) - LOG_RESERVE


def refusal(runs: list[Run], args: argparse.Namespace) -> str | None:
    """Why the selection cannot train (its unfinished runs' checkpoints cannot come back), or
    None."""
    estimate = args.recipe.checkpoint_mib
    needed = [(run.name, run.checkpoint_mib(estimate)) for run in runs if not run.finished]
    total, capacity = sum(mib for _, mib in needed), capacity_bytes(args.part_mib) / MIB
    if total <= capacity or args.allow_dropped_checkpoints:
        return None
    each = ", ".join(f"{name} {mib:.1f} MiB" for name, mib in needed)
    return (
        f"the checkpoints of the selected runs need {total:.1f} MiB ({each}), but "
        f"OUT returns at most {capacity:.1f} MiB of parts ({MAX_FILES - 1} parts of "
        f"{args.part_mib:g} MiB beside log.txt, {MAX_TOTAL_MIB} MiB in all): select fewer runs "
        "(--models, --seeds), or pass --allow-dropped-checkpoints to train them anyway"
    )


# ---- reassembling a previous call's parts -------------------------------------------------


class _Chain(io.RawIOBase):
    """The concatenation of files, read in order."""

    def __init__(self, paths: list[Path]):
        self.paths, self.handle = list(paths), None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while True:
            if self.handle is None:
                if not self.paths:
                    return 0
                self.handle = open(self.paths.pop(0), "rb")  # noqa: SIM115 (closed below)
            count = self.handle.readinto(buffer)
            if count:
                return count
            self.handle.close()
            self.handle = None


def find_parts(folder: Path) -> dict[str, list[Path]]:
    """The parts of each stream in `folder`, in order; a gap in the numbering is an error."""
    streams: dict[str, dict[int, Path]] = {}
    for path in Path(folder).iterdir():
        match = PART.match(path.name)
        if match:
            streams.setdefault(match[1], {})[int(match[2])] = path
    parts = {}
    for stream, numbered in streams.items():
        missing = sorted(set(range(max(numbered) + 1)) - set(numbered))
        if missing:
            raise FileNotFoundError(
                f"{folder}: {stream}.tar.gz lacks parts {missing} (has {sorted(numbered)})"
            )
        parts[stream] = [numbered[i] for i in sorted(numbered)]
    return parts


def unpack(folder: Path, runs: Path, log: Log) -> None:
    """Extracts the streams of `folder`'s parts into `runs` (presets first, so that a
    checkpoint's files are the newest)."""
    parts = find_parts(folder)
    if "checkpoints" not in parts:
        log(f"--resume {folder}: no checkpoint parts there; the runs start from what is in {runs}")
    runs.mkdir(parents=True, exist_ok=True)
    for stream in STREAMS:
        if stream not in parts:
            continue
        chained = io.BufferedReader(_Chain(parts[stream]), MIB)
        with chained, tarfile.open(fileobj=chained, mode="r|gz") as tar:
            names = []
            for member in tar:
                tar.extract(member, runs, filter="data")
                names.append(member.name)
        folders = sorted({name.split("/")[0] for name in names} - {"logs"})
        log(f"--resume: {stream} ({len(parts[stream])} parts) -> {runs}: {', '.join(folders)}")


# ---- training -------------------------------------------------------------------------------


def environment(processes: int, tiny: bool) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "PYTHONPATH": path,
        "PYTHONUNBUFFERED": "1",
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{0.9 / max(1, processes):.3f}",
    }
    if tiny:
        env["JAX_PLATFORMS"] = "cpu"
    return env


def start(run: Run, env: dict[str, str], log: Log) -> None:
    run.phase = run.next_phase()
    steps, extend = run.phase
    command = [
        sys.executable,
        "-m",
        "smis_layers.cli",
        "train",
        "--out",
        str(run.folder),
        *zoo_recipe.phase_words(run.phase),
        *run.arguments,
    ]
    run.log.parent.mkdir(parents=True, exist_ok=True)
    run.signalled = False
    with open(run.log, "a") as output:
        output.write(f"$ {' '.join(command[1:])}\n")
        output.flush()
        run.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    what = "phase to" if not extend else "--extend to"
    log(f"{run.name}: step {zoo_recipe.completed_steps(run.folder)}, {what} {steps} steps")


def interrupt(run: Run, log: Log, why: str) -> None:
    if run.process is not None and run.process.poll() is None and not run.signalled:
        run.process.send_signal(signal.SIGTERM)
        run.signalled = True
        log(f"{run.name}: SIGTERM ({why}) at step {zoo_recipe.completed_steps(run.folder)}")


def finish(run: Run, log: Log) -> None:
    """Books the exit of the run's process."""
    rc, run.process = run.process.returncode, None
    step = zoo_recipe.completed_steps(run.folder)
    if rc == 0 and run.next_phase() == run.phase:
        rc = "no progress"
    if rc == 0:
        run.outcome = f"phase to {run.phase[0]} done"
    elif rc == EXIT_INTERRUPTED:
        run.outcome, run.stopped = f"interrupted, checkpoint at step {step}", True
    elif rc == -signal.SIGTERM and run.signalled:  # before training began, or in the export
        run.outcome = f"SIGTERM outside training: its last checkpoint (step {step}) stands"
        run.stopped = True
    else:
        run.outcome, run.stopped = f"failed (exit {rc}) at step {step}", True
        tail = run.log.read_text(errors="replace")[-1500:]
        log(f"{run.name}: the end of its log:\n{tail}")
    log(f"{run.name}: {run.outcome}")


def train(runs: list[Run], args: argparse.Namespace, log: Log, deadline: float) -> None:
    """Runs every run through its phases side by side until the recipe ends or `deadline`."""
    todo = [run for run in runs if not run.finished]
    env = environment(len(todo), args.tiny)
    fraction = env["XLA_PYTHON_CLIENT_MEM_FRACTION"]
    log(f"{len(todo)} processes side by side, XLA_PYTHON_CLIENT_MEM_FRACTION={fraction}")
    while True:
        for run in todo:
            if run.process is not None and run.process.poll() is not None:
                finish(run, log)
            if run.process is None and not run.stopped and time.time() < deadline:
                if run.finished:
                    run.stopped, run.outcome = True, "recipe done"
                else:
                    start(run, env, log)
            hook = args.interrupt_at_step
            reached = hook is not None and zoo_recipe.completed_steps(run.folder) >= hook
            if run.process is not None and reached:
                interrupt(run, log, f"--interrupt-at-step {hook}")
            if run.process is not None and time.time() >= deadline:
                interrupt(run, log, "budget")
        if all(run.process is None for run in todo) and (
            time.time() >= deadline or all(run.stopped for run in todo)
        ):
            return
        if time.time() >= deadline + args.export_seconds / 2:
            for run in todo:
                if run.process is not None:
                    grace = args.export_seconds / 2
                    log(f"{run.name}: still running {grace:.0f} s after SIGTERM: SIGKILL")
                    run.process.kill()
                    run.process.wait()
                    finish(run, log)
            return
        time.sleep(0.2)


# ---- packing --------------------------------------------------------------------------------


def _write_stream(path: Path, members: list[tuple[Path, str]]) -> int:
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for source, name in members:
            tar.add(source, arcname=name)
    return path.stat().st_size


def pack(runs: list[Run], args: argparse.Namespace, log: Log) -> list[Path]:
    """Writes the streams' parts into `--out`, dropping what does not fit (see the module
    docstring); returns the parts."""
    presets, checkpoints = {}, {}
    for run in runs:
        base = f"{run.name}/"
        files = [(f, base + "preset/" + f.name) for f in run.preset_files()]
        if run.log.is_file():
            files.append((run.log, f"logs/{run.log.name}"))
        if files:
            presets[run.name] = files
        files = [(f, base + f.name) for f in run.checkpoint_files()]
        if files:
            checkpoints[run.name] = files
    # Dropped first to last: the checkpoints of finished runs, then the other checkpoints from
    # the lowest priority, then the presets from the lowest priority.
    order = list(reversed(runs))
    drops = [("checkpoints", r.name) for r in order if r.finished and r.name in checkpoints]
    drops += [("checkpoints", r.name) for r in order if not r.finished and r.name in checkpoints]
    drops += [("presets", r.name) for r in order if r.name in presets]
    streams = {"presets": presets, "checkpoints": checkpoints}
    part = int(args.part_mib * MIB)
    work = args.runs / "packing"
    work.mkdir(parents=True, exist_ok=True)
    for count in range(len(drops) + 1):
        dropped = set(drops[:count])
        raw = sum(
            f.stat().st_size
            for stream, items in streams.items()
            for name, files in items.items()
            if (stream, name) not in dropped
            for f, _ in files
        )
        if raw // 2 > capacity_bytes(args.part_mib):  # gzip keeps at least half of weights
            continue
        sizes = {}
        for stream, items in streams.items():
            members = [
                m for name, files in items.items() if (stream, name) not in dropped for m in files
            ]
            if members:
                sizes[stream] = _write_stream(work / f"{stream}.tar.gz", members)
        files = sum(-(-size // part) for size in sizes.values())
        if files + 1 <= MAX_FILES and sum(sizes.values()) <= capacity_bytes(args.part_mib):
            break
    else:
        raise RuntimeError("nothing fits")  # unreachable: with every item dropped, nothing is
    for stream, name in drops[:count]:
        log(f"packing: DROPPED the {stream[:-1]} of {name} (does not fit in OUT)")
    written = []
    for stream, size in sizes.items():
        with open(work / f"{stream}.tar.gz", "rb") as source:
            for index in range(-(-size // part)):
                path = args.out / f"{stream}.tar.gz.{index:03d}"
                path.write_bytes(source.read(part))
                written.append(path)
        (work / f"{stream}.tar.gz").unlink()
        kept = [n for n in streams[stream] if (stream, n) not in set(drops[:count])]
        log(f"packing: {stream} {size / MIB:.1f} MiB of {', '.join(kept)}")
    shutil.rmtree(work)
    for path in written:
        log(f"packing: {path.name} {path.stat().st_size / MIB:.2f} MiB")
    return written


def main(argv=None) -> int:
    args = parse_arguments(argv)
    begun = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    log = Log(args.out / "log.txt")
    log(f"train_zoo_gpu: {' '.join(sys.argv[1:] if argv is None else argv)}")
    if args.resume is not None:
        unpack(args.resume, args.runs, log)
    runs = [
        Run(args.recipe, model, seed, args.runs)
        for model in args.recipe.models
        if model in args.models
        for seed in args.seeds
    ]
    why = refusal(runs, args)
    if why:
        log(f"refused: {why}")
        print(f"train_zoo_gpu: error: {why}", file=sys.stderr)
        return 2
    for run in runs:
        log(f"{run.name}: at step {run.start_step}, next {run.next_phase()}; {run.arguments}")
    train(runs, args, log, begun + args.budget_seconds - args.export_seconds)
    for run in runs:
        step = zoo_recipe.completed_steps(run.folder)
        preset = zoo_recipe.preset_steps(run.folder)
        log(
            f"{run.name}: steps {run.start_step} -> {step} ({run.outcome}); preset of step "
            f"{preset}; next {run.next_phase() or 'nothing, recipe done'}"
        )
    pack(runs, args, log)
    log(f"done in {time.time() - begun:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
