"""A training run's folder: its settings, checkpoints and state, written so that a run can
always be resumed.

A run folder holds `run.json` (the run's arguments, fixed at creation), checkpoints
`checkpoint-<step>.weights.h5` (the trainer's weights: generator, discriminator, both
optimizers) each with its `checkpoint-<step>.state.json` (the step, the sampling seed state,
the checkpoint's sha256), and `state.json` naming the last complete checkpoint. Every file is
written to a temporary name and renamed, so a kill at any moment leaves the previous checkpoint
and state readable; rerunning the same command resumes from `state.json` with the data stream
positioned at the next unseen sample.

Safety:

- SIGINT (Ctrl+C) or SIGTERM during `fit` saves a checkpoint at the end of the current step
  and raises `TrainingInterrupted` (`smis train` exits with status 130 / 143 naming the
  checkpoint); rerunning resumes at exactly that step, also in the middle of a
  `checkpoint_every` period. A second signal aborts at once (the previous checkpoint stays).
- A NaN/Inf loss or weight stops training without saving (`NonFiniteLossError`), so the last
  checkpoint on disk is the last good one.
- A checkpoint that is missing, truncated or corrupted (sha256 or HDF5 check) raises
  `CheckpointError` naming it and the previous checkpoint, which `resume_from` (`smis train
  --resume-from`) resumes from.
- An `out` folder that exists and is not a run folder is refused unless `overwrite=True`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np

from smis_layers.training.config import EXTENDABLE, RunConfig, defaults
from smis_layers.utils.io import atomic_save_weights, atomic_write_bytes

STATE_FILE = "state.json"
RUN_FILE = "run.json"


class NonFiniteLossError(RuntimeError):
    """Raised when a training loss (or a weight) becomes NaN or infinite."""


class CheckpointError(ValueError):
    """A run's checkpoint is missing, truncated or corrupted; the message names it and the
    previous checkpoint to resume from."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped training after saving a checkpoint at the current step.

    Attributes:
        checkpoint: the checkpoint written (Path).
        step: the completed steps it holds.
        signal_number: the signal received (`signal.SIGINT` or `signal.SIGTERM`).
    """

    def __init__(self, checkpoint: Path, step: int, signal_number: int = signal.SIGINT):
        super().__init__(f"training interrupted; checkpoint {checkpoint} holds step {step}")
        self.checkpoint = Path(checkpoint)
        self.step = int(step)
        self.signal_number = int(signal_number)


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{int(step)}.weights.h5"


def checkpoint_state_name(step: int) -> str:
    return f"checkpoint-{int(step)}.state.json"


def _checkpoint_step(path: Path) -> int:
    return int(path.name.split("-")[1].split(".")[0])


def list_checkpoints(directory: Path) -> list[Path]:
    """The run's checkpoint weight files, oldest first."""
    return sorted(Path(directory).glob("checkpoint-*.weights.h5"), key=_checkpoint_step)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ResumableCheckpoint(keras.callbacks.Callback):
    """Saves the trainer atomically every `steps_per_epoch` steps (at each epoch end), at
    `final_step` (the run's last step, also when it is not a multiple of `steps_per_epoch`), at
    the current step when an interrupt is requested (`request_interrupt`, set by the SIGINT /
    SIGTERM handler of `train_run`), and stops on NaN/Inf losses or weights without saving, so the
    last checkpoint on disk is always a good one to resume from.

    Steps are counted from `initial_step` (the completed steps of a resumed run), so a run
    resumed in the middle of a period saves at the same steps as an uninterrupted one.
    """

    def __init__(
        self,
        directory: Path,
        steps_per_epoch: int,
        keep: int = 2,
        wall_time_before: float = 0.0,
        initial_step: int = 0,
        final_step: int | None = None,
    ):
        super().__init__()
        self.final_step = final_step
        self.directory = Path(directory)
        self.steps_per_epoch = steps_per_epoch
        self.keep = keep
        self.wall_time_before = wall_time_before
        self.started = time.time()
        self.step = int(initial_step)
        self.saved_step = None
        self.bad_loss = None
        self.interrupt_requested = False
        self.interrupt_signal = signal.SIGINT
        self.interrupted = None  # (checkpoint path, step) once an interrupt was honoured

    def request_interrupt(self, signal_number: int = signal.SIGINT) -> None:
        """Stop after the current step, saving a checkpoint (safe to call from a signal
        handler: it only sets flags)."""
        self.interrupt_requested = True
        self.interrupt_signal = int(signal_number)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        for name, value in (logs or {}).items():
            if not math.isfinite(float(value)):
                self.bad_loss = (name, float(value), self.step)
                self.model.stop_training = True
                return
        if self.interrupt_requested and self.interrupted is None:
            path = self.save(logs)
            self.model.stop_training = True
            if path is not None:
                self.interrupted = (path, self.step)

    def on_epoch_end(self, epoch, logs=None):
        if self.bad_loss is not None or self.interrupted is not None:
            return
        if self.step % self.steps_per_epoch == 0 or self.step == self.final_step:
            self.save(logs)

    def save(self, logs=None) -> Path | None:
        """Writes `checkpoint-<step>` (weights and its state) and `state.json`; returns the
        weights' path, or None (and stops training) when a weight is not finite."""
        step = self.step
        if self.saved_step == step:
            return self.directory / checkpoint_name(step)
        bad = _first_non_finite_variable(self.model)
        if bad is not None:
            self.bad_loss = (f"weight {bad}", math.nan, step)
            self.model.stop_training = True
            return None
        path = self.directory / checkpoint_name(step)
        atomic_save_weights(self.model, path)
        state = {
            "completed_steps": step,
            "checkpoint": path.name,
            "sha256": _sha256(path),
            # Keras does not save SeedGenerator states with the weights; the sampling stream
            # must continue where it was for a resumed run to equal an uninterrupted one.
            "seed_state": _seed_state(self.model),
            "wall_time_s": round(self.wall_time_before + time.time() - self.started, 1),
            "logs": {k: float(v) for k, v in (logs or {}).items()},
        }
        data = json.dumps(state, indent=2).encode()
        atomic_write_bytes(self.directory / checkpoint_state_name(step), data)
        atomic_write_bytes(self.directory / STATE_FILE, data)
        self.saved_step = step
        for old in list_checkpoints(self.directory)[: -self.keep]:
            old.unlink(missing_ok=True)
            (self.directory / checkpoint_state_name(_checkpoint_step(old))).unlink(missing_ok=True)
        return path


def fit_parts(completed: int, stop: int, every: int) -> list[tuple[int, int, int]]:
    """The `fit` calls that take a run from step `completed` to step `stop`, checkpointing
    every `every` steps and at `stop`: `(first step, epochs, steps per epoch)` for the rest of
    the current period, the whole periods, and the last, shorter period.

    Examples:
        >>> fit_parts(3, 14, 4)  # steps 3, then 4..11 in two periods, then 12..13
        [(3, 1, 1), (4, 2, 4), (12, 1, 2)]
    """
    parts = []
    if completed < stop and completed % every:
        count = min(every - completed % every, stop - completed)
        parts.append((completed, 1, count))
        completed += count
    periods = (stop - completed) // every
    if periods:
        parts.append((completed, periods, every))
        completed += periods * every
    if completed < stop:
        parts.append((completed, 1, stop - completed))
    return parts


def _first_non_finite_variable(trainer) -> str | None:
    """The path of the first trainable variable holding NaN/Inf, or None."""
    for variable in getattr(trainer, "trainable_variables", []):
        value = keras.ops.convert_to_numpy(variable)
        if not np.all(np.isfinite(value)):
            return variable.path
    return None


def _seed_state(trainer) -> list[int]:
    return [int(v) for v in keras.ops.convert_to_numpy(trainer.generator.seed_generator.state)]


def read_state(directory: Path) -> dict | None:
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def _extended_run(out: Path, previous: dict, run: dict, changed: dict, command) -> dict:
    """run.json's content for continuing `previous` with `run`'s settings (`extend=True`)."""
    fixed = {k: v for k, v in changed.items() if k not in EXTENDABLE}
    if fixed:
        raise ValueError(
            f"--extend cannot change {fixed} (previous, new) of the run in {out}: only "
            f"{', '.join(EXTENDABLE)} can change; use another --out folder for the others"
        )
    state = read_state(out)
    completed = int(state["completed_steps"]) if state else 0
    if run["steps"] < completed:
        raise ValueError(
            f"--extend: `steps` must be at least the {completed} steps the run in {out} has "
            f"completed; received steps={run['steps']}"
        )
    phases = list(previous.get("phases", []))
    started = phases[-1]["ended_at_step"] if phases else 0
    if completed > started:  # settings replaced before they trained a step leave no phase
        ended = {k: v for k, v in previous.items() if k != "phases"}
        phases.append({**ended, "ended_at_step": completed})
    return {**run, "command": command, "phases": phases}


def check_not_past(out: Path, stop: int) -> None:
    """Refuses a `stop_at` before the steps the run in `out` has already completed."""
    try:
        state = read_state(out) if out.is_dir() else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return  # reported with its remedy when the run is resumed
    if state and int(state["completed_steps"]) > stop:
        raise ValueError(
            f"`stop_at` ({stop}) is before step {state['completed_steps']}, which the run in "
            f"{out} has already completed"
        )


def _remove_run_files(out: Path) -> None:
    """Deletes what `train_run` wrote in a run folder (for --overwrite of another run)."""
    for path in [*out.glob("checkpoint-*"), out / STATE_FILE, out / "samples.png"]:
        path.unlink(missing_ok=True)
    for folder in (out / "preset", out / "logs"):
        if folder.is_dir():
            shutil.rmtree(folder)


@contextlib.contextmanager
def signals_save(checkpoint: ResumableCheckpoint, verbose: int) -> Iterator[None]:
    """While active, the first SIGINT or SIGTERM (what schedulers send before killing a job)
    asks `checkpoint` to save and stop after the current step; the handlers then step aside, so
    a second signal acts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.getsignal(number) for number in signals}
    if previous[signal.SIGINT] is None:  # installed from C: Python's default instead
        previous[signal.SIGINT] = signal.default_int_handler
    if previous[signal.SIGTERM] is None:
        previous[signal.SIGTERM] = signal.SIG_DFL

    def restore():
        for number, handler in previous.items():
            signal.signal(number, handler)

    def handler(signum, frame):
        checkpoint.request_interrupt(signum)
        restore()
        print(
            f"\nsmis train: {signal.Signals(signum).name} received; saving a checkpoint after "
            "the current step (send it again to stop at once without saving)",
            file=sys.stderr,
            flush=True,
        )

    for number in signals:
        signal.signal(number, handler)
    try:
        yield
    finally:
        restore()


def resume_state(out: Path, resume_from: str | None) -> dict | None:
    """The state to resume from: state.json, or the state of the checkpoint `resume_from`."""
    if resume_from is None:
        try:
            return read_state(out)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CheckpointError(
                f"{out / STATE_FILE} is not valid JSON ({error}); {_previous_hint(out, None)}"
            ) from None
    name = Path(resume_from).name
    if not name.endswith(".weights.h5") or not name.startswith("checkpoint-"):
        raise ValueError(
            f"--resume-from must name a checkpoint-<step>.weights.h5 file of {out}; received "
            f"{resume_from!r}"
        )
    state_path = out / checkpoint_state_name(_checkpoint_step(Path(name)))
    if not (out / name).is_file():
        raise CheckpointError(
            f"--resume-from {name}: no such checkpoint in {out}; available: "
            f"{[p.name for p in list_checkpoints(out)] or 'none'}"
        )
    if not state_path.is_file():
        raise CheckpointError(
            f"--resume-from {name}: its state file {state_path} is missing, so the step and the "
            "sampling state it holds are unknown"
        )
    try:
        return json.loads(state_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{state_path} is not valid JSON: {error}") from None


def _previous_hint(out: Path, bad: Path | None) -> str:
    others = [p for p in list_checkpoints(out) if bad is None or p.name != bad.name]
    usable = [p for p in others if (out / checkpoint_state_name(_checkpoint_step(p))).is_file()]
    if bad is not None:
        usable = [p for p in usable if _checkpoint_step(p) < _checkpoint_step(bad)] or usable
    if not usable:
        return (
            "no other checkpoint is left to resume from: start over in a new --out folder "
            "(or pass --overwrite with other arguments)"
        )
    previous = usable[-1]
    return (
        f"the previous checkpoint is {previous.name}: resume from it by rerunning the same "
        f"command with --resume-from {previous.name} (train_run(resume_from=...))"
    )


def load_checkpoint(trainer, out: Path, state: dict) -> None:
    """Loads the checkpoint `state` names, or raises CheckpointError naming it."""
    path = out / str(state.get("checkpoint", ""))
    if not path.is_file():
        raise CheckpointError(
            f"Checkpoint {path} (named in {out / STATE_FILE}) is missing; "
            f"{_previous_hint(out, path)}"
        )
    expected = state.get("sha256")
    if expected is not None:
        actual = _sha256(path)
        if actual != expected:
            raise CheckpointError(
                f"Checkpoint {path} is corrupted or truncated: its sha256 is {actual}, the state "
                f"recorded {expected}; {_previous_hint(out, path)}"
            )
    try:
        trainer.load_weights(path)
    except Exception as error:  # h5py OSError, Keras ValueError on a mismatched file
        raise CheckpointError(
            f"Checkpoint {path} cannot be read (truncated or corrupted?): "
            f"{type(error).__name__}: {error}; {_previous_hint(out, path)}"
        ) from None


def _changed_settings(previous: dict, run: dict) -> dict:
    """The settings that differ between two run.json contents, as `{name: (previous, new)}`.
    A setting absent from either (a run.json of a version before the setting existed, or one
    recorded only when not at its default) has its `RunConfig` default."""
    known = defaults(RunConfig)
    keys = [*run, *(k for k in previous if k in known and k not in run)]
    values = {k: (previous.get(k, known.get(k)), run.get(k, known.get(k))) for k in keys}
    return {k: (old, new) for k, (old, new) in values.items() if old != new}


def open_run_folder(
    out: Path, run: dict, extend: bool, overwrite: bool, command: str | None
) -> dict:
    """Prepares `out` for the run `run` (run.json's settings) and returns the run.json content
    it trains with: a new folder gets run.json; an existing run folder with the same settings
    is resumed; with other settings it is continued (`extend`, only `EXTENDABLE` settings may
    change; the previous ones become a phase) or restarted (`overwrite`), else refused.

    Raises:
        ValueError: a run folder with other settings, neither `extend` nor `overwrite`.
        FileExistsError: `out` exists, is not a run folder, and `overwrite` is False.
    """
    run_file = out / RUN_FILE
    if run_file.is_file():
        previous = json.loads(run_file.read_text())
        changed = _changed_settings(previous, run)
        if changed and extend and not overwrite:
            run = _extended_run(out, previous, run, changed, command)
            atomic_write_bytes(run_file, json.dumps(run, indent=2).encode())
            changed = {}
        if changed and not overwrite:
            raise ValueError(
                f"{out} holds a run with other arguments {changed} (previous, new); use another "
                "--out folder, the same arguments to resume, --extend to continue it with more "
                "steps or other training settings, or --overwrite to restart it"
            )
        if changed:
            print(f"smis train: --overwrite: restarting the run in {out} from scratch")
            _remove_run_files(out)
            atomic_write_bytes(run_file, json.dumps({**run, "command": command}, indent=2).encode())
    else:
        if out.is_dir() and any(out.iterdir()) and not overwrite:
            shown = ", ".join(sorted(p.name for p in out.iterdir())[:5])
            raise FileExistsError(
                f"--out {out} exists and is not a smis train run folder (no {RUN_FILE}; it holds "
                f"{shown}{', ...' if len(list(out.iterdir())) > 5 else ''}); choose a new or empty "
                "folder, or pass --overwrite to write the run into it"
            )
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(run_file, json.dumps({**run, "command": command}, indent=2).encode())
    return run


def restore(trainer, out: Path, resume_from: str | None, steps: int) -> tuple[dict | None, int]:
    """Loads the checkpoint to resume from (`resume_state`) into `trainer`, with its sampling
    seed state; returns the state (None for a new run) and its completed steps."""
    state = resume_state(out, resume_from)
    if state is None:
        return None, 0
    load_checkpoint(trainer, out, state)
    trainer.generator.seed_generator.state.assign(
        np.asarray(state["seed_state"], dtype=trainer.generator.seed_generator.state.dtype)
    )
    completed = int(state["completed_steps"])
    if completed > steps:
        raise CheckpointError(
            f"{out / state['checkpoint']} holds step {completed}, past --steps {steps}"
        )
    print(f"smis train: resuming {out} at step {completed}/{steps}")
    return state, completed


def raise_if_stopped(checkpoint: ResumableCheckpoint, out: Path) -> None:
    """Raises what stopped training early: `NonFiniteLossError` naming the last good
    checkpoint, or `TrainingInterrupted` naming the checkpoint the interrupt saved."""
    if checkpoint.bad_loss is not None:
        name, value, step = checkpoint.bad_loss
        last = read_state(out)
        good = (
            f"{out / last['checkpoint']} (step {last['completed_steps']})"
            if last
            else "none (no checkpoint was written before)"
        )
        raise NonFiniteLossError(
            f"{name} became {value} at step {step}; training stopped without saving that step. "
            f"The last good checkpoint is {good}."
        )
    if checkpoint.interrupted is not None:
        path, step = checkpoint.interrupted
        raise TrainingInterrupted(path, step, checkpoint.interrupt_signal)
