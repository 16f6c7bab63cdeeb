"""Exports the runs of scripts/train_zoo.sh into the zoo: one preset folder per model with its
discriminator, sample grid and model card.

Usage: python scripts/export_zoo.py [--cards-only] RUNS_DIR [MODEL ...]

The observations written into each card are what a person saw in the run's sample grid
(`RUNS_DIR/MODEL/samples.png`, rewritten here from the final checkpoint); edit OBSERVATIONS
after looking at them.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import warnings
from pathlib import Path

from smis_layers.presets import (
    SAMPLES_FILE,
    save_preset,
    update_preset_metadata,
    write_model_card,
    zoo_directory,
)
from smis_layers.training import run as runs

DESCRIPTIONS = {
    "groupdnet_shapes64": "GroupDNet (group convolutions with decreasing groups), synthetic 64x64",
    "mulnet_shapes64": "MulNet baseline: one small generator per class, composed by the masks",
    "groupnet_shapes64": "GroupNet baseline: 8 groups in every decoder block",
    "groupenc_shapes64": "GroupEnc baseline: grouped encoder, dense SPADE-like decoder",
    "vspade_shapes64": "VSPADE baseline: one image-level code, dense decoder",
}
OBSERVATIONS = {
    "groupdnet_shapes64": (
        "Generated images follow the masks' shapes. Reconstructions from a real image's codes "
        "take its background's colour family (red or green) but not the purple palettes or the "
        "stripe, checker and radial textures; the shapes come out in mixed saturated colours "
        "rather than their palettes. Random codes give blotchy, dotted backgrounds. Resampling "
        "one class's code changes mostly that class (median inside/outside change ratio 2.9 on "
        "held-out scenes, tests/test_applications.py); small classes leak more. A 1,500-step "
        "CPU run: the images are recognizably the benchmark's layouts, far from its quality."
    ),
    "mulnet_shapes64": (
        "Shapes come out crisp and in plausible palette colours (blue, cyan, orange), with "
        "some stripe and checker texture inside them: each class has its own generator, so no "
        "class's region is blurred by its neighbours. The background generator has collapsed "
        "to one green-and-magenta blotch pattern whatever the real image's background (red, "
        "green, purple, striped, checkered), so reconstructions and samples share that "
        "background; the discriminator won (d_loss 0.009 at the end). Random codes change the "
        "shapes' colours and textures."
    ),
    "vspade_shapes64": (
        "Reconstructions take the real image's background colour family (red or green) and "
        "follow the shapes, with noisy, high-contrast textures inside them. Random codes give "
        "dull grey-green images with faint shapes: with one image-level code and the small KL "
        "weight, prior samples fall outside what the decoder learnt. The whole image changes "
        "with the code: VSPADE has no per-class control by construction."
    ),
    "groupnet_shapes64": (
        "Reconstructions are smooth and follow the masks: the background's colour family "
        "(red, green; purple comes out red) and flat yellow or magenta shapes, no textures. "
        "Random codes give noisy images in which the shapes are barely visible: the prior "
        "samples fall outside what the decoder learnt. Of the five, the cleanest "
        "reconstructions and the worst random samples."
    ),
    "groupenc_shapes64": (
        "The weakest of the five: reconstructions are grey-green with the shapes only outlined "
        "and red-yellow speckles, and they do not take the real image's background colour; "
        "random codes give the same grey ground with more speckles. Its dense decoder is "
        "narrower than GroupDNet's to fit the same parameter budget (docs/models.md); this "
        "recipe and step count did not train it to the others' level."
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


def export(runs_dir: Path, model: str) -> Path:
    out = runs_dir / model
    run = json.loads((out / runs.RUN_FILE).read_text())
    state = runs.read_state(out)
    if state is None or state["completed_steps"] < run["steps"]:
        raise SystemExit(f"{out}: the run has not finished")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = runs._build_trainer(run)
    trainer.load_weights(out / state["checkpoint"])
    wall = state.get("wall_time_s") or epoch_seconds(runs_dir, model)
    preset = zoo_directory() / model
    if preset.exists():
        shutil.rmtree(preset)
    save_preset(
        trainer.generator,
        preset,
        discriminator=trainer.discriminator,
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
                "final_losses": state.get("logs", {}),
            },
        },
    )
    runs.write_sample_sheet(trainer.generator, run, preset / SAMPLES_FILE)
    shutil.copyfile(preset / SAMPLES_FILE, out / "samples.png")
    return preset


def _card_description(model: str) -> str:
    return (
        DESCRIPTIONS[model] + ". Trained on the library's synthetic benchmark "
        "(`SyntheticShapes(image_size=64, num_classes=8, seed=0)`) with "
        "`scripts/train_zoo.sh`; the wall time below was measured while other jobs shared the "
        "machine's 2 cores. All presets compared: docs/zoo.md."
    )


def write_card(model: str) -> Path:
    """Refreshes the card text in the metadata, then rewrites the card."""
    update_preset_metadata(
        model,
        {"card_description": _card_description(model), "card_notes": OBSERVATIONS.get(model, "")},
    )
    return write_model_card(model)


def main(argv: list[str]) -> int:
    cards_only = "--cards-only" in argv
    argv = [a for a in argv if a != "--cards-only"]
    runs_dir = Path(argv[0])
    models = argv[1:] or list(DESCRIPTIONS)
    for model in models:
        if not cards_only:
            export(runs_dir, model)
        print(write_card(model))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
