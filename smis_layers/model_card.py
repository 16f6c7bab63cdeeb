"""The README.md model card of a preset folder, written from its metadata.json alone."""

from __future__ import annotations

import os
from pathlib import Path

from smis_layers.presets import (
    CARD_FILE,
    CODE_PRIOR_FILE,
    SAMPLES_FILE,
    preset_metadata,
    resolve_preset,
)
from smis_layers.utils.io import atomic_write_bytes


def _training_machine(training: dict) -> str:
    """Where a run trained, as recorded (runs before the record: the development machine)."""
    device = training.get("device")
    if device is None:
        return "the 2-core development machine"
    return f"{device} (KERAS_BACKEND={training.get('keras_backend')})"


def training_length(training: dict) -> str:
    """How long a run trained, as a model card and the demo say it: "N steps", and the preset
    it was fine-tuned from (`init_from`), whose own steps the N do not count.

    Examples:
        >>> training_length({"completed_steps": 3600, "init_from": "groupdnet_shapes64"})
        '3600 steps (fine-tuned from the preset `groupdnet_shapes64`)'
    """
    steps = f"{training.get('completed_steps')} steps"
    source = training.get("init_from")
    return f"{steps} (fine-tuned from the preset `{source}`)" if source else steps


def write_model_card(name_or_path: str | os.PathLike) -> Path:
    """Writes a preset's README.md model card from its metadata.json alone: `description`,
    `card_notes` (what a person saw in the samples), parameters, training, metrics, and the
    sample grid (`samples.png`, if present). Rewritten whenever the metadata changes (e.g. by
    `smis evaluate`). Returns the card's path."""
    directory = resolve_preset(name_or_path)
    meta = preset_metadata(directory)
    counts = meta.get("parameter_counts", {})
    notes = meta.get("card_notes", "")
    fitted_prior = CODE_PRIOR_FILE in meta.get("sha256", {})
    lines = [f"# {directory.name}", "", meta.get("card_description", ""), ""]
    if (directory / SAMPLES_FILE).is_file():
        lines += [
            f"![samples]({SAMPLES_FILE})",
            "",
            "Rows: label map, real image, reconstruction from the real image's codes, two samples "
            "with random codes" + (" (from the fitted code prior)." if fitted_prior else "."),
            "",
        ]
    if notes:
        lines += ["## What the samples show", "", notes.strip(), ""]
    lines += ["## Model", "", "| | |", "|---|---|", f"| class | `{meta.get('class_name')}` |"]
    for part, count in counts.items():
        lines.append(f"| {part} parameters | {count:,} |")
    if "discriminator_parameters" in meta:
        lines.append(f"| discriminator parameters | {meta['discriminator_parameters']:,} |")
    if fitted_prior:
        from smis_layers.models.code_prior import FittedCodePrior

        prior = FittedCodePrior.load(directory / CODE_PRIOR_FILE)
        gaussian = (
            "a Gaussian per class" if prior.num_groups > 1 else "one Gaussian over the whole code"
        )
        regions = (
            "; the measured colour and texture channels drawn from the training regions' values"
            if prior.measured is not None
            else ""
        )
        lines.append(
            f"| random codes | `code_prior.npz`: {gaussian} fitted to the encoder's "
            f"codes of training images{regions} (`FittedCodePrior`; `--prior standard` for "
            "N(0, 1)) |"
        )
    size = sum(meta.get("file_bytes", {}).values())
    lines += [f"| files | {size / 1e6:.1f} MB |", f"| library | {meta.get('library_version')} |"]
    training = meta.get("training")
    if training:
        lines += ["", "## Training", ""]
        phases = training.get("phases") or []
        ends = [phase.get("ended_at_step") for phase in phases]
        bounds = [0, *ends, training.get("completed_steps")]  # phase i: bounds[i]..bounds[i+1]
        commands = []
        for i, command in enumerate([*(p.get("command") for p in phases), training.get("command")]):
            if command:
                label = [f"# steps {bounds[i]}-{bounds[i + 1]}"] if phases else []
                commands += [*label, command]
        if phases:
            lines += [
                f"Trained in {len(phases) + 1} phases (the run was extended with `--extend` at "
                f"step {', '.join(map(str, ends))}; the learning-rate schedule restarts with each "
                "phase's `--steps`):",
                "",
            ]
        if commands:
            lines += ["```bash", *commands, "```", ""]
        lines += [
            f"{training_length(training)} at batch {training.get('batch_size')} on "
            f"{training.get('data')} data, {training.get('wall_time_s', 0) / 60:.0f} min of "
            f"wall time on {_training_machine(training)}.",
            "",
        ]
        losses = training.get("final_losses")
        if losses:
            shown = ", ".join(f"{k} {v:.3g}" for k, v in sorted(losses.items()))
            lines += [f"Losses (mean over the last 100 steps): {shown}.", ""]
    metrics = meta.get("metrics")
    if metrics:
        lines += ["## Metrics", "", "| metric | value |", "|---|---|"]
        for key, value in metrics.items():
            if not isinstance(value, int | float) or (
                key.endswith("_std") and key[: -len("_std")] in metrics
            ):
                continue
            spread = metrics.get(f"{key}_std")
            shown = f"{value:.4g}" if spread is None else f"{value:.4g} ± {spread:.2g}"
            lines.append(f"| {key} | {shown} |")
        lines += ["", "Definitions: docs/evaluation.md; all presets compared: docs/zoo.md."]
        if meta.get("metrics_command"):
            lines += ["", f"Measured by `{meta['metrics_command']}`."]
        lines.append("")
    lines += [
        "## Loading",
        "",
        "```python",
        "from smis_layers.models import from_preset",
        "",
        f'model = from_preset("{directory.name}")',
        "```",
        "",
    ]
    path = directory / CARD_FILE
    atomic_write_bytes(path, "\n".join(lines).encode())
    return path
