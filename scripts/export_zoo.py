"""Exports the runs of scripts/train_zoo.sh into the zoo: one preset folder per model with its
discriminator, the code prior fitted to its codes of 2,048 training scenes, sample grid and
model card.

Usage: python scripts/export_zoo.py [--cards-only] RUNS_DIR [MODEL ...]

The observations written into each card are what a person saw in the run's sample grid
(`RUNS_DIR/MODEL/samples.png`, rewritten here from the final checkpoint); edit OBSERVATIONS
after looking at them.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import keras

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
        "take its background's colour family (red or green; purple and striped backgrounds "
        "come out red, checkered ones red with dark blotches) and give the large shapes solid "
        "colours (a cyan disk, a purple square, a dark cross), often not the real shape's "
        "colour: the encoder's codes carry about 4 nats per image, nearly all in the "
        "background's code, and the shapes' codes sit on the prior "
        "(`smis_layers.metrics.code_information`; docs/zoo.md). Background textures (stripes, "
        "checker, radial) are not reproduced. Random codes give blotchy red-and-green "
        "backgrounds: every one of the 4x4 latent positions draws its own code. One code per "
        "class shared over the grid (`smis sample --shared-codes`) gives flat backgrounds "
        "(docs/zoo.md). Resampling one class's code changes mostly that class "
        "(tests/test_applications.py measures the ratio on held-out scenes); small classes "
        "leak more. After 5,000 CPU steps the images are recognizably the benchmark's "
        "layouts, far from its quality."
    ),
    "mulnet_shapes64": (
        "Shapes get stripe and checker textures in plausible colours (pink disks with "
        "horizontal stripes, checkered squares): each class has its own generator, so no "
        "class's region is blurred by its neighbours. The background generator collapsed "
        "early to blotch patterns (green-and-purple, or red-and-green) whatever the real "
        "image's background, and later phases did not bring it back: the discriminator wins "
        "(d_loss about 0.06). Random codes change the shapes' textures and colours and "
        "switch the background between its two patterns."
    ),
    "vspade_shapes64": (
        "Reconstructions take the real image's background colour family (red or green) and "
        "follow the shapes, mostly filled with yellow and green. Random codes give a "
        "red-and-green grid of blotches with the same yellow-green shapes, and two random "
        "codes give nearly the same image: the decoder makes little use of its image-level "
        "code. The whole image changes with the code: VSPADE has no per-class control by "
        "construction."
    ),
    "groupnet_shapes64": (
        "Reconstructions follow the masks with the background's colour family (red or green) "
        "and blurry yellow disks and green or striped shapes; shape edges are soft and the "
        "background textures are missing. Random codes give dark red-and-green blotch "
        "backgrounds in which the shapes are faint, sometimes barely visible; the weakest "
        "layout fidelity of the grouped models."
    ),
    "groupenc_shapes64": (
        "The weakest of the five: its decoder ignores the codes. Reconstructions and random "
        "samples are the same image for a mask: a flat green ground whatever the real "
        "background, the shapes outlined in dark and filled with red, yellow and cyan "
        "speckles. Its posterior collapsed to the prior in the first phases, and 500 steps "
        "at KL weight 0.001 did not revive it (the decoder had already learnt to do without "
        "the codes). Its dense decoder is narrower than GroupDNet's to fit the same parameter "
        "budget (docs/models.md); this recipe did not train it to the others' level."
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
    keras.backend.clear_session()  # fresh layer names: the same files whatever the order
    generator, discriminator, run, state = runs.load_run_models(out)
    if state["completed_steps"] < run["steps"]:
        raise SystemExit(f"{out}: the run has not finished")
    wall = state.get("wall_time_s") or epoch_seconds(runs_dir, model)
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
