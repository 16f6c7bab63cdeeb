"""Exports the runs of scripts/train_zoo.sh into the zoo: one preset folder per model with its
discriminator, the code prior fitted to its codes of 2,048 training scenes, sample grid and
model card.

Usage: python scripts/export_zoo.py [--cards-only] [--seed S] RUNS_DIR [MODEL ...]

With `--seed S` the runs are `RUNS_DIR/MODEL-seedS` (`scripts/train_zoo.sh --seed S`), else
`RUNS_DIR/MODEL`.

The observations written into each card are what a person saw in the run's sample grid
(`RUNS_DIR/MODEL/samples.png`, rewritten here from the final checkpoint); edit OBSERVATIONS
after looking at them.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

import keras

from smis_layers.model_card import write_model_card
from smis_layers.presets import (
    SAMPLES_FILE,
    save_preset,
    update_preset_metadata,
    zoo_directory,
)
from smis_layers.training import run as runs

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo_recipe

DESCRIPTIONS = {
    "groupdnet_shapes64": "GroupDNet (group convolutions with decreasing groups), synthetic 64x64",
    "mulnet_shapes64": "MulNet baseline: one small generator per class, composed by the masks",
    "groupnet_shapes64": "GroupNet baseline: 8 groups in every decoder block",
    "groupenc_shapes64": "GroupEnc baseline: grouped encoder, dense SPADE-like decoder",
    "vspade_shapes64": "VSPADE baseline: one image-level code, dense decoder",
}
OBSERVATIONS = {
    "groupdnet_shapes64": (
        "Zoo v3: the zoo v2 flagship (4,800 steps of the recipe, `region_colour_code=True`, "
        "weights sha256 82f00def...) fine-tuned 3,600 steps with two texture waves per class "
        "(`region_texture_code=2`, 12 latent channels per class; the command below, 73 "
        "minutes on 2 cores of an Intel Xeon with AVX-512, float32); its code prior draws a "
        "class's colour and waves from the training regions. Reconstructions from a real "
        "image's codes keep the region colours and draw the textures: diagonal stripes, dot "
        "lattices and checkers at the real angle and frequency, in the background and in the "
        "shapes, softer than the real ones. Random samples (the fitted code prior): flat, "
        "striped, dotted or checkered backgrounds in the benchmark's colours (red, purple, "
        "green), shapes flat or textured; some shapes are blurred (a yellow disk with dark "
        "blotches) or lose part of their texture. Redrawing one class's code changes that "
        "class's region and little else, for every class (docs/zoo.md measures it per class)."
    ),
    "mulnet_shapes64": (
        "Zoo v3: the zoo v2 MulNet (4,800 steps of the recipe, `region_colour_code=True`) "
        "fine-tuned 3,600 steps with two texture waves per class (`region_texture_code=2`, 12 "
        "latent channels per class), with the flagship v3's fine-tune (the command below, 65 "
        "minutes on 2 cores of an Intel Xeon with AVX-512, float32); its code prior draws a "
        "class's colour and waves from the training regions. Reconstructions draw the "
        "textures: diagonal stripes and dot lattices in the backgrounds and in the shapes "
        "(striped cyan disks, a yellow-striped bar, checkered disks) at the real angles; flat "
        "purple backgrounds come out greyer under a faint frame, and the red gradient "
        "background as a magenta field inside a green-edged frame. Random samples (the fitted "
        "code prior): purple backgrounds, flat under a frame, dotted or striped; shapes flat "
        "(cyan disks, an orange cross) or textured, some as blurred multicoloured patches. "
        "Per-class control is exact by construction: each class has its own generator."
    ),
    "groupnet_shapes64": (
        "Zoo v2 (4,800 steps, `region_colour_code=True`; trained without it, GroupNet used 2 of "
        "its 8 class codes, docs/zoo.md). Reconstructions give red, green and purple backgrounds "
        "a flat field of their colour (the checkered one red with a faint grid, the striped one "
        "purple) and most shapes their own colour: a cyan square, a dark blue cross, a magenta "
        "bar, a gold disk, a green triangle; textures are lost. Random samples (the fitted code "
        "prior): red, green or purple backgrounds under dark blotches (a crude dotted or "
        "checkered background), a faint frame along the image border in some; shapes in flat "
        "colours (cyan disks, yellow squares, blue bars), a few as grainy multicoloured patches. "
        "Its last two blocks keep 8 channels per class, as in the first zoo's GroupNet: no "
        "speckle (the first GroupNet preset, with 2 channels per class there, drew coloured "
        "speckle over every image; docs/zoo.md)."
    ),
    "groupenc_shapes64": (
        "Zoo v3: the zoo v2 GroupEnc (4,800 steps of the recipe, `region_colour_code=True`) "
        "fine-tuned 3,600 steps with two texture waves per class (`region_texture_code=2`, 12 "
        "latent channels per class), with the flagship v3's fine-tune (the command below, 43 "
        "minutes on 2 cores of an Intel Xeon with AVX-512, float32); its code prior draws a "
        "class's colour and waves from the training regions. Reconstructions keep the "
        "backgrounds' colours and textures (red, purple, diagonal stripes, dot lattices) and "
        "draw striped and checkered disks; some shapes blur into their neighbours (a magenta "
        "ring, a multicoloured cross). Random samples (the fitted code prior): red, purple or "
        "green backgrounds, flat, dotted, striped or checkered; shapes flat (cyan or magenta "
        "disks, a green cross) or textured, some as multicoloured blotches. The dense decoder "
        "mixes the classes: redrawing one class's code also changes the rest of the image "
        "(docs/zoo.md measures how much)."
    ),
    "vspade_shapes64": (
        "Zoo v2 (4,800 steps with the recipe; VSPADE's one image-level code has no class "
        "regions, so no colour code). Reconstructions give every background a flat field of "
        "its real colour (red, green, purple; the checkered one red, the striped one purple); "
        "shapes come out as dark outlines filled with muddy blue, cyan, magenta or orange, "
        "rarely their real colour; textures are lost. Random samples (the fitted code prior): "
        "mostly flat green backgrounds, some purple, red or dark with red blotches; shapes as "
        "in the reconstructions. The whole image changes with the code: VSPADE has no "
        "per-class control by construction."
    ),
}


def epoch_seconds(runs_dir: Path, model: str) -> float | None:
    """The sum of Keras's per-epoch times for `model` in the training logs (`*.log`) of the
    runs folder (for runs whose state.json predates the wall-time record)."""
    for log in sorted(runs_dir.glob("*.log")):
        for section in log.read_text(errors="replace").split("Epoch 1/"):
            if model in section:
                seconds = [int(s) for s in re.findall(r"100/100 - (\d+)s - ", section)]
                if seconds:
                    return float(sum(seconds))
    return None


def export(runs_dir: Path, model: str, seed: int | None = None) -> Path:
    out = runs_dir / (model if seed is None else zoo_recipe.run_name(model, seed))
    keras.backend.clear_session()  # fresh layer names: the same files whatever the order
    generator, discriminator, run, state = runs.load_run_models(out)
    if state["completed_steps"] < run["steps"]:
        raise SystemExit(f"{out}: the run has not finished")
    wall = state.get("wall_time_s") or epoch_seconds(runs_dir, model)
    recorded = {}  # where and how the run trained, as its own export recorded it
    if (out / "preset" / "metadata.json").is_file():
        recorded = json.loads((out / "preset" / "metadata.json").read_text()).get("training", {})
    generator.code_prior = runs.fit_code_prior(generator, run)
    preset = zoo_directory() / model
    if preset.exists():
        shutil.rmtree(preset)
    save_preset(
        generator,
        preset,
        discriminator=discriminator,
        metadata={
            "description": DESCRIPTIONS[model],
            "card_description": _card_description(model),
            "card_notes": OBSERVATIONS.get(model, ""),
            "training": {
                **{k: v for k, v in run.items() if k != "command"},
                "command": run.get("command")
                or f"scripts/train_zoo.sh RUNS_DIR {model}  (smis train, see the script)",
                "completed_steps": state["completed_steps"],
                "wall_time_s": wall,
                **{k: recorded[k] for k in ("device", "keras_backend", "phases") if k in recorded},
                "final_losses": state.get("logs", {}),
            },
        },
    )
    runs.write_sample_sheet(generator, run, preset / SAMPLES_FILE)
    shutil.copyfile(preset / SAMPLES_FILE, out / "samples.png")
    return preset


def _card_description(model: str) -> str:
    return (
        DESCRIPTIONS[model] + ". Trained on the library's synthetic benchmark "
        "(`SyntheticShapes(image_size=64, num_classes=8, seed=0)`) with "
        "`scripts/train_zoo.sh`; the wall time below is from the development machine's 2 cores, "
        "which some runs shared with other jobs. All presets compared: docs/zoo.md."
    )


def write_card(model: str) -> Path:
    """Refreshes the card text in the metadata, then rewrites the card."""
    update_preset_metadata(
        model,
        {"card_description": _card_description(model), "card_notes": OBSERVATIONS.get(model, "")},
    )
    return write_model_card(model)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/export_zoo.py",
        description="Exports finished runs of scripts/train_zoo.sh into zoo/ and writes the cards.",
    )
    parser.add_argument("runs_dir", type=Path, help="the RUNS_DIR given to scripts/train_zoo.sh")
    parser.add_argument(
        "models", nargs="*", metavar="MODEL", help=f"of {', '.join(DESCRIPTIONS)} (default: all)"
    )
    parser.add_argument(
        "--seed", type=int, help="the runs are RUNS_DIR/MODEL-seedS (train_zoo.sh --seed S)"
    )
    parser.add_argument(
        "--cards-only", action="store_true", help="rewrite the model cards only, export nothing"
    )
    args = parser.parse_args(argv)
    unknown = [m for m in args.models if m not in DESCRIPTIONS]
    if unknown:
        known = ", ".join(DESCRIPTIONS)
        parser.error(f"unknown MODEL {', '.join(unknown)}; expected one of {known}")
    if not args.cards_only and not args.runs_dir.is_dir():
        parser.error(f"runs_dir {args.runs_dir} is not a folder")
    for model in args.models or list(DESCRIPTIONS):
        if not args.cards_only:
            export(args.runs_dir, model, args.seed)
        print(write_card(model))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
