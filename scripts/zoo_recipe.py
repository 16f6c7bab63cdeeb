"""The zoo v2 training recipe, as data: the one place that `scripts/train_zoo.sh` (CPU) and
`scripts/train_zoo_gpu.py` (one GPU, JAX) read it from.

Every model trains with the same arguments, seeds and phases: phase 1 is
`smis train --steps 800`, each later phase `smis train --extend --steps N` (the learning rates
restart and decay to 0 again in each phase; that is how the flagship candidate was trained).
docs/zoo.md says why each setting was chosen:

- pixel L1 x 10 and a small KL weight (0.0002): at 0.005-0.02 the posterior collapsed;
- the prior GAN term (images decoded from random codes are fakes too);
- a slower discriminator (G 4e-4, D 1e-4): with the TTUR rates it won and the colours collapsed;
- bfloat16 compute (mixed_bfloat16), which trains like float32 here at half the time.

The models with class-owned codes get the region colour code (`colour=1`), written as small
specs (`smis_layers.models.architectures.small_architecture`) that equal their named
*_shapes64 architectures plus the colour code (the retrained presets' named architectures have
it since zoo v2, and the zoo v3 ones the texture code, `texture=2,latent=12`), except
GroupNet: its named architecture keeps 64 channels in its last blocks
(`width_multipliers=(16, 8, 4, 4, 4)`), which no small spec expresses, so it trains as
`groupnet_shapes64`, whose named architecture has the colour code (trained without it, GroupNet
used 2 of its 8 class codes). VSPADE has one code for the whole image and refuses the colour
code.

Command line (one shell word per line, for bash's `mapfile -t`):

    python scripts/zoo_recipe.py models              # the model names, in table order
    python scripts/zoo_recipe.py seeds | phases
    python scripts/zoo_recipe.py args MODEL --seed S # --model SPEC --seed S and the arguments
    python scripts/zoo_recipe.py next RUN_FOLDER     # the next phase's words (none when done)
    python scripts/zoo_recipe.py run-name MODEL --seed S

Add `--tiny` before the command for the tiny recipe of the tests (`TINY`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path


def _words(*flags: str) -> tuple[str, ...]:
    """`("--kl-weight 0.0002", ...)` -> `("--kl-weight", "0.0002", ...)`."""
    return tuple(word for flag in flags for word in flag.split())


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A zoo training recipe.

    Attributes:
        models: name -> `smis train --model` spec, in priority order.
        arguments: the training arguments of every run (`--seed` comes per run).
        options: `smis train` options that change no training (logging).
        phases: the step target of each phase; phase 1 trains from scratch, the later ones
            `--extend` the run.
        seeds: the seeds the recipe trains each model with.
        checkpoint_mib: the size of one run's checkpoint (weights, both optimizers' slots) in
            MiB, for planning before a run has written one (`train_zoo_gpu.py`).
    """

    models: dict[str, str]
    arguments: tuple[str, ...]
    options: tuple[str, ...]
    phases: tuple[int, ...]
    seeds: tuple[int, ...]
    checkpoint_mib: float


ZOO = Recipe(
    models={
        # Zoo v3's architectures (two texture waves); the shipped v3 presets are the v2 ones,
        # trained with colour=1 only, fine-tuned with them (their cards have the commands).
        "groupdnet_shapes64": "groupdnet:size=64,width=12,encoder=16,latent=12,colour=1,texture=2",
        "mulnet_shapes64": "mulnet:size=64,width=16,encoder=16,latent=12,colour=1,texture=2",
        # No small spec expresses its widths; its named architecture has the colour code.
        "groupnet_shapes64": "groupnet_shapes64",
        "groupenc_shapes64": "groupenc:size=64,width=6,encoder=16,latent=12,colour=1,texture=2",
        "vspade_shapes64": "vspade_shapes64",  # one code for the image: no colour code
    },
    arguments=_words(
        "--batch-size 16",
        "--dtype-policy mixed_bfloat16",
        "--reconstruction-weight 10",
        "--kl-weight 0.0002",
        "--prior-gan-weight 1",
        "--lr-g 4e-4",
        "--lr-d 1e-4",
        "--code-prior-samples 512",
    ),
    options=("--log-every", "0", "--verbose", "2"),
    phases=(800, 1600, 2400, 4800),
    seeds=(0, 1, 2),
    # groupdnet_shapes64's is 28.1 MiB (29,513,568 bytes): the discriminator and its Adam slots
    # are three quarters of it and the same for every model; the generators differ by < 1M.
    checkpoint_mib=30.0,
)

#: A recipe small enough for a CPU (the tests of train_zoo_gpu.py): 4 classes, a one-layer
#: discriminator, float32, a checkpoint every 2 steps.
TINY = Recipe(
    models={"tiny_groupdnet": "groupdnet:classes=4,size=64,width=2,encoder=4"},
    arguments=_words(
        "--batch-size 2",
        "--d-scales 1",
        "--d-layers 1",
        "--d-filters 4",
        "--checkpoint-every 2",
        "--prior-gan-weight 1",
        "--code-prior-samples 8",
    ),
    options=("--log-every", "0", "--verbose", "2"),
    phases=(12, 16),
    seeds=(0, 1),
    checkpoint_mib=2.5,
)


def run_name(model: str, seed: int) -> str:
    """The run folder's name of `model` trained with `seed`."""
    return f"{model}-seed{int(seed)}"


def train_arguments(recipe: Recipe, model: str, seed: int) -> list[str]:
    """`smis train`'s words for a run of `model` with `seed`, all but --out and the phase's
    --steps / --extend."""
    if model not in recipe.models:
        raise ValueError(f"unknown model {model!r}; the recipe's models: {list(recipe.models)}")
    spec = recipe.models[model]
    return ["--model", spec, "--seed", str(int(seed)), *recipe.arguments, *recipe.options]


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def completed_steps(run_folder: Path) -> int:
    """The steps of the run's last complete checkpoint (0 without one)."""
    state = _read_json(Path(run_folder) / "state.json")
    return int(state["completed_steps"]) if state else 0


def preset_steps(run_folder: Path) -> int | None:
    """The step the run's preset was exported at (its metadata, written last), or None."""
    metadata = _read_json(Path(run_folder) / "preset" / "metadata.json")
    try:
        return int(metadata["training"]["completed_steps"])
    except (TypeError, KeyError, ValueError):
        return None


def next_phase(run_folder: Path, phases: tuple[int, ...]) -> tuple[int, bool] | None:
    """The next `smis train` of a run folder as (steps, extend), or None when the recipe is
    done: a new run starts phase 1; a run interrupted mid-phase resumes that phase; a phase
    that ended without its preset (interrupted in the export) exports it again; else the
    next phase target after the run's current step."""
    run = _read_json(Path(run_folder) / "run.json")
    if run is None:
        return phases[0], False
    current = int(run["steps"])
    completed = completed_steps(run_folder)
    if completed < current or preset_steps(run_folder) != completed:
        return current, current != phases[0]
    later = [steps for steps in phases if steps > completed]
    return (later[0], True) if later else None


def phase_words(phase: tuple[int, bool] | None) -> list[str]:
    if phase is None:
        return []
    steps, extend = phase
    return [*(["--extend"] if extend else []), "--steps", str(steps)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny recipe of the tests")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("models", help="the model names, in table order")
    commands.add_parser("seeds", help="the recipe's seeds")
    commands.add_parser("phases", help="the phases' step targets")
    for name in ("args", "run-name"):
        command = commands.add_parser(name)
        command.add_argument("model")
        command.add_argument("--seed", type=int, default=0)
    command = commands.add_parser("next", help="the next phase's --extend / --steps words")
    command.add_argument("run_folder", type=Path)
    args = parser.parse_args(argv)
    recipe = TINY if args.tiny else ZOO
    if args.command == "models":
        words = list(recipe.models)
    elif args.command == "seeds":
        words = [str(seed) for seed in recipe.seeds]
    elif args.command == "phases":
        words = [str(steps) for steps in recipe.phases]
    elif args.command == "args":
        try:
            words = train_arguments(recipe, args.model, args.seed)
        except ValueError as error:
            parser.error(str(error))
    elif args.command == "run-name":
        words = [run_name(args.model, args.seed)]
    else:
        words = phase_words(next_phase(args.run_folder, recipe.phases))
    if words:
        print("\n".join(words))
    return 0


if __name__ == "__main__":
    sys.exit(main())
