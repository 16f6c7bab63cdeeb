"""The `smis` commands of the applications, the zoo, evaluation and benchmarks: sample,
resample-class, mix, manipulate, morph, encode, decode, demo (the gallery), zoo list,
evaluate and bench.

Each command loads a preset (zoo name or folder), reads label maps as PNG or .npy, writes
PNG grids (and a GIF for morph), never overwrites an existing file without `--overwrite`, and
answers bad input with a one-line error and exit status 1.
"""

from __future__ import annotations

import argparse
import html
import sys
from pathlib import Path

import numpy as np

from smis_layers.presets import DEFAULT_PRESET

INPUT_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, KeyError)


class CommandError(ValueError):
    """A user error of a command line (printed without a traceback)."""


# ---------------------------------------------------------------------------- helpers
def _load_model(preset: str):
    from smis_layers.models import from_preset

    return from_preset(preset)


def _require_trained_encoder(preset: str) -> None:
    """Refuses to encode with a preset converted without the official encoder checkpoint: its
    encoder has random weights, so its codes would be meaningless."""
    from smis_layers.presets import encoder_is_random, preset_metadata

    if encoder_is_random(preset_metadata(preset)):
        raise CommandError(
            f"preset {preset} was converted without the official encoder (no latest_net_E.pth): "
            "its encoder has random weights, so encoded codes would be meaningless. Convert it "
            "again with smis convert-official --encoder latest_net_E.pth, or draw codes from "
            "seeds (smis sample, resample-class, mix CLASS=seed:N)"
        )


def _writable(path: str | Path, overwrite: bool) -> Path:
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _save_grid(rows: list[np.ndarray], out: str | Path, overwrite: bool) -> Path:
    from smis_layers.utils.images import image_grid, save_png

    path = _writable(out, overwrite)
    return save_png(image_grid(rows), path, scale=2)


def _grid_row(labels, images) -> np.ndarray:
    """One grid row: the colourized labels, then the images."""
    from smis_layers.utils.images import colourize, to_uint8

    return np.concatenate([colourize(labels)[None], to_uint8(images)])


def _parse_donor(text: str, model) -> tuple[int, object, np.ndarray | None]:
    """'CLASS=seed:N' or 'CLASS=IMAGE:LABELS' -> (class, donor, donor image or None)."""
    from smis_layers.applications import load_image, load_labels

    if "=" not in text:
        raise CommandError(f"--from {text!r}: expected CLASS=seed:N or CLASS=IMAGE:LABELS")
    key, value = text.split("=", 1)
    try:
        class_index = int(key)
    except ValueError:
        raise CommandError(f"--from {text!r}: the class must be an integer; got {key!r}") from None
    if value.startswith("seed:"):
        try:
            return class_index, int(value.removeprefix("seed:")), None
        except ValueError:
            raise CommandError(f"--from {text!r}: seed:N needs an integer N") from None
    if ":" not in value:
        raise CommandError(f"--from {text!r}: a reference needs its label map, IMAGE:LABELS")
    image_path, labels_path = value.rsplit(":", 1)
    image, labels = load_image(image_path, model), load_labels(labels_path, model)
    return class_index, (image, labels), image


def _apply_edit(labels: np.ndarray, edit: str, model) -> np.ndarray:
    from smis_layers.applications import check_class, load_labels, paste_labels, replace_class

    kind, _, argument = edit.partition(":")
    if kind == "replace":
        try:
            old, new = (int(v) for v in argument.split("="))
        except ValueError:
            raise CommandError(f"--edit {edit!r}: expected replace:OLD=NEW with integers") from None
        check_class(model, old, "--edit replace OLD")
        check_class(model, new, "--edit replace NEW")
        return replace_class(labels, old, new)
    if kind == "paste":
        return paste_labels(labels, load_labels(argument, model))
    raise CommandError(f"--edit {edit!r}: expected replace:OLD=NEW or paste:LABELS_FILE")


def _codes_from(spec: str, default_labels: np.ndarray, model) -> np.ndarray:
    """The codes of 'IMAGE' (encoded with the default label map) or 'IMAGE:LABELS'."""
    from smis_layers.applications import encode, load_image, load_labels

    image_path, _, labels_path = spec.partition(":")
    labels = load_labels(labels_path, model) if labels_path else default_labels
    return encode(model, load_image(image_path, model), labels)


# ---------------------------------------------------------------------------- commands
def sample_command(args: argparse.Namespace) -> Path:
    """`smis sample`: `--n` images for one label map; writes the grid."""
    from smis_layers.applications import load_labels, sample

    model = _load_model(args.preset)
    labels = load_labels(args.labels, model)
    images = sample(
        model, labels, n=args.n, seed=args.seed, shared_codes=args.shared_codes, prior=args.prior
    )
    return _save_grid([_grid_row(labels, images)], args.out, args.overwrite)


def resample_class_command(args: argparse.Namespace) -> Path:
    """`smis resample-class`: only `--class`'s code changes across the images."""
    from smis_layers.applications import load_labels, resample_class

    model = _load_model(args.preset)
    labels = load_labels(args.labels, model)
    if args.class_index not in np.unique(labels):
        print(f"note: class {args.class_index} does not occur in {args.labels}", file=sys.stderr)
    images = resample_class(
        model,
        labels,
        args.class_index,
        n=args.n,
        seed=args.seed,
        shared_codes=args.shared_codes,
        prior=args.prior,
    )
    return _save_grid([_grid_row(labels, images)], args.out, args.overwrite)


def mix_command(args: argparse.Namespace) -> Path:
    """`smis mix`: each `--from` class takes its code from a reference or a seed."""
    from smis_layers.applications import load_labels, mix_appearance
    from smis_layers.utils.images import to_uint8

    if any("=seed:" not in text for text in args.sources):
        _require_trained_encoder(args.preset)
    model = _load_model(args.preset)
    labels = load_labels(args.labels, model)
    donors, references = {}, []
    for text in args.sources:
        class_index, donor, reference = _parse_donor(text, model)
        donors[class_index] = donor
        if reference is not None:
            references.append(reference)
    image, _ = mix_appearance(model, labels, donors, seed=args.seed)
    rows = [_grid_row(labels, image[None])]
    if references:
        rows.append(to_uint8(np.stack(references)))
    return _save_grid(rows, args.out, args.overwrite)


def manipulate_command(args: argparse.Namespace) -> Path:
    """`smis manipulate`: applies the `--edit`s to the label map and keeps every class's code."""
    from smis_layers.applications import load_image, load_labels, manipulate

    _require_trained_encoder(args.preset)
    model = _load_model(args.preset)
    labels, image = load_labels(args.labels, model), load_image(args.image, model)
    edited = labels
    for edit in args.edits:
        edited = _apply_edit(edited, edit, model)
    reconstruction, result = manipulate(model, image, labels, edited, seed=args.seed)
    rows = _manipulation_rows(labels, image, reconstruction, edited, result)
    return _save_grid(rows, args.out, args.overwrite)


def _manipulation_rows(labels, image, reconstruction, edited, result) -> list[np.ndarray]:
    """label map | image | reconstruction, then edited label map | edited image."""
    return [_grid_row(labels, np.stack([image, reconstruction])), _grid_row(edited, result[None])]


def morph_command(args: argparse.Namespace) -> Path:
    """`smis morph`: a PNG strip and a GIF between the codes of `--a` and `--b`."""
    from PIL import Image

    from smis_layers.applications import load_labels, morph
    from smis_layers.utils.images import to_uint8

    _require_trained_encoder(args.preset)
    model = _load_model(args.preset)
    labels = load_labels(args.labels, model)
    z_a, z_b = _codes_from(args.a, labels, model), _codes_from(args.b, labels, model)
    images = to_uint8(
        morph(model, labels, z_a, z_b, steps=args.steps, extrapolate=args.extrapolate)
    )
    out = _writable(args.out, args.overwrite)
    gif = _writable(out.with_suffix(".gif"), args.overwrite)
    path = _save_grid([images], out, overwrite=True)
    frames = [Image.fromarray(f).resize((f.shape[1] * 2, f.shape[0] * 2)) for f in images]
    frames += frames[-2:0:-1]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=120, loop=0)
    return path


#: The version of `smis encode`'s .npz layout; files without it predate the model identity.
CODES_FORMAT = 2


def encode_command(args: argparse.Namespace) -> Path:
    """`smis encode`: writes the image's codes and its label map (in the model's labels) to a .npz,
    with the identity of the model that encoded them: the preset (zoo name or absolute folder),
    its weights' sha256, its class count and its code shape (see `decode_command`)."""
    from smis_layers.applications import encode, load_image, load_labels
    from smis_layers.presets import preset_identity

    _require_trained_encoder(args.preset)
    model = _load_model(args.preset)
    labels, image = load_labels(args.labels, model), load_image(args.image, model)
    z = encode(model, image, labels)
    identity = preset_identity(args.preset)
    out = _writable(args.out, args.overwrite)
    with open(out, "wb") as handle:
        np.savez(
            handle,
            z=z,
            labels=labels,
            preset=np.array(identity["preset"]),
            weights_sha256=np.array(identity["weights_sha256"]),
            num_classes=np.array(model.num_classes),
            latent_shape=np.array(tuple(model.latent_shape)),
            format=np.array(CODES_FORMAT),
        )
    return out


def read_codes(path: str | Path) -> dict[str, object]:
    """The fields of a `smis encode` file: "z", "labels" (or None; files of 0.1.0 call it "mask")
    and, when recorded, "preset",
    "weights_sha256", "num_classes" and "latent_shape"."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"codes file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            stored = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError) as error:
        raise CommandError(f"codes file {path} is not a readable .npz: {error}") from None
    if "z" not in stored:
        raise CommandError(f"codes file {path} holds no codes `z`; write it with smis encode")
    labels = stored.get("labels", stored.get("mask"))  # "mask": a file written by 0.1.0
    fields: dict[str, object] = {"z": stored["z"], "labels": labels}
    for name in ("preset", "weights_sha256"):
        if name in stored:
            fields[name] = str(stored[name])
    if "num_classes" in stored:
        fields["num_classes"] = int(stored["num_classes"])
    if "latent_shape" in stored:
        fields["latent_shape"] = tuple(int(v) for v in stored["latent_shape"])
    return fields


def check_codes_model(codes: dict, model, preset: str, path: str | Path) -> None:
    """Refuses a model whose class count or code shape differs from the one that wrote the codes
    file at `path`, and warns when the preset's weights are not those recorded in it."""
    from smis_layers.presets import preset_identity

    expected_shape = tuple(codes.get("latent_shape") or np.shape(codes["z"]))
    recorded = codes.get("preset", "an unrecorded preset")
    classes = codes.get("num_classes")
    if classes is not None and classes != model.num_classes:
        raise CommandError(
            f"codes file {path} was encoded by a {classes}-class model ({recorded}); preset "
            f"{preset} has {model.num_classes} classes. Pass --preset {recorded} or re-encode"
        )
    if expected_shape != tuple(model.latent_shape):
        raise CommandError(
            f"codes file {path} holds codes of shape {expected_shape} ({recorded}); preset "
            f"{preset} takes codes of shape {tuple(model.latent_shape)}. Pass --preset "
            f"{recorded} or re-encode"
        )
    recorded_hash = codes.get("weights_sha256")
    actual_hash = preset_identity(preset)["weights_sha256"]
    if recorded_hash is None:
        print(
            f"warning: codes file {path} records no weights hash (written by an older smis "
            f"encode); cannot check that {preset} is the model that encoded it",
            file=sys.stderr,
        )
    elif recorded_hash != actual_hash:
        print(
            f"warning: preset {preset}'s weights (sha256 {actual_hash[:12]}...) are not the "
            f"ones that encoded {path} (sha256 {recorded_hash[:12]}...); the codes may draw "
            "other appearances",
            file=sys.stderr,
        )


def decode_command(args: argparse.Namespace) -> Path:
    """`smis decode`: draws a label map (default: the encoded one) with codes from `smis encode`,
    with the model recorded in the codes file unless `--preset` names another one (which must
    have the same class count and code shape)."""
    from smis_layers.applications import decode, load_labels

    codes = read_codes(args.codes)
    preset = args.preset or codes.get("preset")
    if preset is None:
        raise CommandError(f"codes file {args.codes} records no preset; pass --preset")
    model = _load_model(preset)
    check_codes_model(codes, model, preset, args.codes)
    if args.labels is not None:
        labels = load_labels(args.labels, model)
    elif codes["labels"] is not None:
        labels = codes["labels"]
    else:
        raise CommandError(f"{args.codes} holds no label map; pass --labels")
    image = decode(model, labels, codes["z"])
    return _save_grid([_grid_row(labels, image[None])], args.out, args.overwrite)


def zoo_list_command(args: argparse.Namespace) -> None:
    """`smis zoo list`: prints `zoo_table()`."""
    for line in zoo_table():
        print(line)


def zoo_table() -> list[str]:
    """The zoo as Markdown table lines: name, class, description, size, parameters, metrics."""
    from smis_layers.presets import available_presets, preset_metadata

    lines = [
        "| preset | class | description | size | parameters | domain FID | mIoU | mCSD L1 | "
        "mOCD L1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in available_presets():
        meta = preset_metadata(name)
        metrics = meta.get("metrics", {})

        def value(key, metrics=metrics):
            number = metrics.get(key)
            return f"{number:.3g}" if isinstance(number, int | float) else "-"

        size = sum(meta.get("file_bytes", {}).values()) / 1e6
        lines.append(
            f"| {name} | {meta.get('class_name')} | {meta.get('description', '')} | "
            f"{size:.1f} MB | {meta.get('parameters', 0):,} | {value('fid_segmenter')} | "
            f"{value('miou')} | {value('mcsd_l1')} | {value('mocd_l1')} |"
        )
    return lines


# ---------------------------------------------------------------------------- gallery
def gallery(preset: str, out: str | Path, seed: int = 0, overwrite: bool = False) -> Path:
    """Runs every application on `preset` with built-in example scenes and writes PNGs plus an
    index.html to `out`; returns the index's path."""
    from smis_layers.applications import (
        encode,
        example_data,
        manipulate,
        mix_appearance,
        morph,
        paste_labels,
        resample_class,
        sample,
    )
    from smis_layers.data.synthetic import HELD_OUT_SEED
    from smis_layers.utils.images import image_grid, save_png, to_uint8

    out = Path(out)
    index = _writable(out / "index.html", overwrite)
    model = _load_model(preset)
    data = example_data(model, 4, seed=HELD_OUT_SEED + seed)
    label_maps, images = data["masks"], data["images"]
    labels = label_maps[0]
    shapes = sorted(
        (int(c) for c in np.unique(labels) if c != 0), key=lambda c: -np.sum(labels == c)
    )
    # The mix's second donor gives the largest shape that it also has (a visible region to read).
    target = next((c for c in shapes if np.any(label_maps[2] == c)), shapes[0] if shapes else 0)
    entries = []

    def write(name: str, rows: list[np.ndarray], title: str, text: str) -> None:
        save_png(image_grid(rows), out / f"{name}.png", scale=2)
        entries.append((name, title, text))

    write(
        "sample",
        [
            _grid_row(labels, sample(model, labels, 6, seed)),
            _grid_row(labels, sample(model, labels, 6, seed, prior="standard")),
        ],
        "Multi-modal sampling",
        "One label map, six random code sets: every class changes appearance. Top: codes drawn "
        "from the preset's code prior (fitted to its codes of training images when it ships "
        "one, `smis sample`); bottom: codes drawn from N(0, 1), the paper's sampling "
        "(`smis sample --prior standard`), which a model trained as briefly as the zoo's "
        "renders as noise (docs/zoo.md).",
    )
    largest = shapes[:2]
    write(
        "resample_class",
        [_grid_row(labels, resample_class(model, labels, c, 6, seed)) for c in [0, *largest]],
        "Per-class resampling",
        f"Each row redraws only one class's code (rows: classes {[0, *largest]}, the "
        "background and the two largest shapes); the other classes keep theirs.",
    )
    donors = {0: (images[1], label_maps[1]), target: (images[2], label_maps[2])}
    mixed, _ = mix_appearance(model, labels, donors, seed)
    write(
        "mix",
        [_grid_row(labels, mixed[None]), to_uint8(images[1:3])],
        "Appearance mixture",
        f"The background takes the first reference's appearance, class {target} the second's.",
    )
    edited = paste_labels(labels, label_maps[3])
    reconstruction, result = manipulate(model, images[0], labels, edited, seed)
    write(
        "manipulate",
        _manipulation_rows(labels, images[0], reconstruction, edited, result),
        "Semantic manipulation",
        "Top: label map, real image, its reconstruction. Bottom: the label map with another "
        "scene's objects pasted in, drawn with the real image's codes.",
    )
    z_a, z_b = encode(model, images[0], labels), encode(model, images[1], labels)
    write(
        "morph",
        [to_uint8(morph(model, labels, z_a, z_b, steps=8))],
        "Style morphing",
        "From the first real image's codes to the second's (encoded with the same label map).",
    )
    _write_index(index, preset, entries)
    return index


def evaluate_command(args: argparse.Namespace) -> Path | None:
    """Evaluates presets and prints the table. It writes only where told: `--out` (the command
    and the table as Markdown), `--record` (each evaluated preset's metadata.json and model
    card: the maintainers' step) and `--zoo-page` (the zoo page's table, whose other presets'
    rows are kept). Every output is checked before the evaluation starts."""
    from smis_layers.metrics import evaluate
    from smis_layers.metrics.evaluate import markdown_table
    from smis_layers.presets import resolve_preset
    from smis_layers.utils.io import atomic_write_bytes

    if len(set(args.seed)) != len(args.seed):
        raise CommandError(f"--seed must not repeat a seed; received {args.seed}")
    out = _writable(args.out, args.overwrite) if args.out else None
    page = Path(args.zoo_page) if args.zoo_page else None
    if page is not None:
        _check_page_settings(page, args)
    if args.record:
        for preset in args.presets:
            resolve_preset(preset)  # an unknown name fails before the evaluation
    runs = [
        evaluate.evaluate_presets(
            args.presets,
            n_images=args.n_images,
            seed=seed,
            segmenter=args.segmenter,
            diversity_images=args.diversity_images,
        )
        for seed in args.seed
    ]
    results = runs[0] if len(runs) == 1 else evaluate.combine_seeds(runs)
    table = markdown_table(results)
    print(table)
    command = _evaluate_command_line(args.presets, args)
    if out is not None:
        atomic_write_bytes(out, f"Measured with\n\n```bash\n{command}\n```\n\n{table}\n".encode())
    if args.record:
        _record_metrics(args.presets, results, command)
    if page is not None:
        _update_zoo_page(page, results, args)
        print(f"smis evaluate: updated {page}")
    return out


def _evaluate_command_line(presets, args: argparse.Namespace) -> str:
    segmenter = "" if args.segmenter == DEFAULT_SEGMENTER else f" --segmenter {args.segmenter}"
    diversity = (
        "" if args.diversity_images is None else f" --diversity-images {args.diversity_images}"
    )
    return (
        f"smis evaluate --presets {' '.join(map(str, presets))} --n-images {args.n_images} "
        f"--seed {' '.join(map(str, args.seed))}{diversity}{segmenter}"
    )


def _record_metrics(presets, results: list[dict], command: str) -> None:
    """Writes each preset's row into its metadata.json and rewrites its model card."""
    from smis_layers.model_card import write_model_card
    from smis_layers.presets import update_preset_metadata

    by_name = {str(row.get("preset")): row for row in results}
    for preset in presets:
        row = by_name.get(str(preset)) or by_name.get(Path(preset).name)
        if row is None:
            continue
        metrics = {k: v for k, v in row.items() if isinstance(v, int | float)}
        update_preset_metadata(preset, {"metrics": metrics, "metrics_command": command})
        write_model_card(preset)
        print(f"smis evaluate: recorded the metrics of {preset}")


def _page_settings(text: str) -> dict[str, object] | None:
    """The --n-images, --seed and --segmenter of the command a zoo page records, or None."""
    import re
    import shlex

    found = re.search(r"```bash\n(smis evaluate [^\n]*)\n```", text)
    if not found:
        return None
    words = shlex.split(found.group(1))
    settings: dict[str, object] = {
        "n_images": 64,
        "seed": [0],
        "diversity_images": None,
        "segmenter": DEFAULT_SEGMENTER,
    }
    key = None
    for word in words[2:]:
        if word.startswith("--"):
            key = word[2:].replace("-", "_")
            if key == "seed":
                settings["seed"] = []
        elif key == "seed":
            settings["seed"].append(int(word))
        elif key in ("n_images", "diversity_images"):
            settings[key] = int(word)
        elif key == "segmenter":
            settings[key] = word
    return settings


def _replaces_every_row(page: Path, args: argparse.Namespace) -> bool:
    """Whether this evaluation covers every preset row of the page (which it then rewrites
    whole, whatever settings and columns the page had)."""
    text = page.read_text() if page.is_file() else ""
    table = text.split(FINDINGS_MARKER)[0]
    evaluated = {Path(p).name if Path(p).is_dir() else str(p) for p in args.presets}
    rows = {_row_name(row) for row in _table_rows(table)[1]} - {REAL_IMAGES_ROW}
    return rows <= evaluated


def _row_name(row: str) -> str:
    return row.strip("|").split("|")[0].strip()


def _check_page_settings(page: Path, args: argparse.Namespace) -> None:
    """Rows measured with other settings cannot share a table: refuse before any work (an
    evaluation of every preset of the page replaces the whole table)."""
    if not page.is_file() or _replaces_every_row(page, args):
        return
    settings = _page_settings(page.read_text())
    if settings is None:
        raise CommandError(f"--zoo-page {page} records no `smis evaluate` command to merge with")
    ours = {
        "n_images": args.n_images,
        "seed": list(args.seed),
        "diversity_images": args.diversity_images,
        "segmenter": args.segmenter,
    }
    different = {k: (settings[k], v) for k, v in ours.items() if settings[k] != v}

    def shown_value(value) -> str:
        return " ".join(map(str, value)) if isinstance(value, list) else str(value)

    if different:
        shown = ", ".join(
            f"{k} {shown_value(page_value)} (page) vs {shown_value(v)}"
            for k, (page_value, v) in different.items()
        )
        raise CommandError(
            f"--zoo-page {page} was measured with other settings ({shown}); evaluate with the "
            "page's settings, or evaluate every preset of the page to replace its table"
        )


def _table_rows(text: str) -> tuple[str | None, list[str]]:
    """The header line and the row lines of the first Markdown table in `text`."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    if len(lines) < 2:
        return None, []
    return lines[0], lines[2:]


def _update_zoo_page(page: Path, results: list[dict], args: argparse.Namespace) -> None:
    """Replaces the rows of the evaluated presets (and the "real images" row) in the zoo page's
    table, keeps the other presets' rows and the page's hand-written findings."""
    from smis_layers.metrics.evaluate import markdown_table
    from smis_layers.utils.io import atomic_write_bytes

    previous = page.read_text() if page.is_file() else ""
    findings = previous[previous.index(FINDINGS_MARKER) :] if FINDINGS_MARKER in previous else ""
    table_text = previous[: previous.index(FINDINGS_MARKER)] if findings else previous
    old_header, old_rows = _table_rows(table_text)
    new_header, new_rows = _table_rows(markdown_table(results))
    if _replaces_every_row(page, args):
        old_rows = []
    if old_rows and old_header != new_header:
        raise CommandError(
            f"--zoo-page {page}'s table has other columns than this evaluation's; evaluate "
            "every preset of the page to replace its table"
        )
    fresh = {_row_name(row): row for row in new_rows}
    rows = [fresh.pop(_row_name(row), row) for row in old_rows] + list(fresh.values())
    presets = [_row_name(row) for row in rows if _row_name(row) != REAL_IMAGES_ROW]
    command = _evaluate_command_line(presets, args)
    separator = markdown_table(results).splitlines()[1]
    table = "\n".join([new_header, separator, *rows])
    page.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(page, _zoo_page(table, command, findings).encode())


DEFAULT_SEGMENTER = "segmenter_shapes64"
REAL_IMAGES_ROW = "real images"
ZOO_PAGE_HEADER = """# Model zoo

The presets shipped in `zoo/` (installed as `smis_layers.zoo`), trained on the library's
synthetic benchmark with one shared recipe (`scripts/train_zoo.sh`, exported by
`scripts/export_zoo.py`); each folder's README.md is its model card with a sample grid.
`smis zoo list` prints them. The metric definitions are in [evaluation.md](evaluation.md).

"""


#: The page's hand-written reading of the table starts at this marker; `smis evaluate` keeps
#: it when it rewrites the table.
FINDINGS_MARKER = "<!-- findings -->"


def _zoo_page(table: str, command: str, findings: str = "") -> str:
    return (
        f"{ZOO_PAGE_HEADER}## Comparison\n\nMeasured with\n\n```bash\n{command}\n```\n\n"
        f"{table}\n\n{findings}"
    )


def benchmark_suite(source: str | Path | None = None):
    """The `main` function of the benchmark suite (`python -m benchmarks`), which lives in a
    source checkout's `benchmarks/` folder and is not part of the wheel.

    The suite is looked up where Python finds it (a checkout on `sys.path`), then in `source`,
    else in the current folder and its parents: the first folder holding both
    `benchmarks/__main__.py` and `smis_layers/` is put first on `sys.path`.

    Raises:
        CommandError: no checkout was found; the message says where it looked and what to do.
    """
    import importlib

    if source is None:
        try:
            return importlib.import_module("benchmarks.__main__").main
        except ImportError:
            pass
        folders = [Path.cwd(), *Path.cwd().parents]
    else:
        folders = [Path(source).expanduser().resolve()]
    for folder in folders:
        if (folder / "benchmarks" / "__main__.py").is_file() and (folder / "smis_layers").is_dir():
            sys.path.insert(0, str(folder))
            for name in [
                m for m in sys.modules if m == "benchmarks" or m.startswith("benchmarks.")
            ]:
                del sys.modules[name]  # another `benchmarks` package found before
            return importlib.import_module("benchmarks.__main__").main
    where = f"--source {source}" if source is not None else f"{Path.cwd()} or its parents"
    raise CommandError(
        "smis bench runs the benchmark suite of a source checkout of smis-layers (its "
        f"benchmarks/ folder, which the installed package does not ship); none found in {where}. "
        "Clone the repository and run `smis bench` inside it, or pass --source CHECKOUT"
    )


def bench_command(args: argparse.Namespace) -> None:
    """Runs the benchmark suite of a source checkout (`python -m benchmarks`)."""
    status = benchmark_suite(args.source)(args.bench_args)
    if status:
        raise CommandError(f"the benchmark suite ended with status {status}")


def _write_index(path: Path, preset: str, entries: list[tuple[str, str, str]]) -> None:
    from smis_layers.utils.io import atomic_write_bytes

    sections = "\n".join(
        f"<h2>{html.escape(title)}</h2><p>{html.escape(text)}</p>"
        f'<img src="{name}.png" alt="{html.escape(title)}">'
        for name, title, text in entries
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>smis-layers gallery: {html.escape(preset)}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
        "img{image-rendering:pixelated;max-width:100%}</style></head><body>"
        f"<h1>smis-layers gallery: {html.escape(preset)}</h1>{sections}</body></html>\n"
    )
    atomic_write_bytes(path, page.encode())


def gallery_command(args: argparse.Namespace) -> Path:
    """`smis demo`: the gallery of every application (see `gallery`)."""
    return gallery(args.preset, args.out, seed=args.seed, overwrite=args.overwrite)


# ---------------------------------------------------------------------------- parsers
COMMANDS = {
    "sample": (sample_command, "several samples for one label map"),
    "resample-class": (resample_class_command, "resample only one class's code"),
    "mix": (mix_command, "appearance mixture: each class's code from a reference or a seed"),
    "manipulate": (manipulate_command, "edit the label map, keep every class's code"),
    "morph": (morph_command, "style morphing between two encoded images (PNG strip + GIF)"),
    "encode": (encode_command, "encode a real image into per-class codes (.npz)"),
    "decode": (decode_command, "draw a label map with codes from `smis encode`"),
    "demo": (gallery_command, "run every application on a zoo preset: PNGs and an index.html"),
}


LABELS_HELP = "label map: PNG or .npy (--mask is its 0.1.0 spelling)"


class _LabelsOption(argparse.Action):
    """`--labels`, also read under its 0.1.0 spelling `--mask` (deprecated: a note on stderr)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string == "--mask":
            print(
                "note: --mask is deprecated and will be removed in the next release; use --labels",
                file=sys.stderr,
            )
        setattr(namespace, self.dest, values)


def add_parsers(commands) -> None:
    """Adds the application and zoo commands to the `smis` sub-parsers."""
    parsers = {}
    for name, (handler, help_text) in COMMANDS.items():
        parser = commands.add_parser(name, help=help_text)
        recorded = name == "decode"  # its default is the preset recorded in the codes file
        parser.add_argument(
            "--preset",
            default=None if recorded else DEFAULT_PRESET,
            help="zoo name or preset folder"
            + (" (default: the one in --codes)" if recorded else ""),
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
        parser.set_defaults(handler=_runner(name, handler))
        parsers[name] = parser
    for name in ("sample", "resample-class", "mix", "manipulate", "morph", "decode"):
        parsers[name].add_argument("--out", default=f"{name}.png", help="the PNG to write")
    for name in ("sample", "resample-class", "mix", "manipulate", "morph", "encode"):
        parsers[name].add_argument(
            "--labels", "--mask", required=True, action=_LabelsOption, help=LABELS_HELP
        )
    for name in ("sample", "resample-class"):
        parsers[name].add_argument("--n", type=int, default=8, help="images to generate")
        parsers[name].add_argument(
            "--shared-codes",
            action="store_true",
            help="one N(0, 1) code per class over the whole latent grid instead of one per "
            "position (cleaner images from briefly trained models; docs/zoo.md)",
        )
        # models.code_prior.CODE_PRIORS, spelled out: building the parser imports no Keras.
        parsers[name].add_argument(
            "--prior",
            choices=("auto", "standard", "fitted"),
            default="auto",
            help="where random codes come from: the preset's fitted code prior (the zoo's "
            "presets ship one), N(0, 1) as in the paper, or auto (fitted if the preset has "
            "one; docs/zoo.md)",
        )
    parsers["resample-class"].add_argument(
        "--class", dest="class_index", type=int, required=True, help="the class to resample"
    )
    parsers["mix"].add_argument(
        "--from",
        dest="sources",
        action="append",
        required=True,
        metavar="CLASS=SOURCE",
        help="a class's code source: seed:N, or IMAGE:LABELS (encoded); repeatable",
    )
    parsers["manipulate"].add_argument("--image", required=True, help="the real image")
    parsers["manipulate"].add_argument(
        "--edit",
        dest="edits",
        action="append",
        required=True,
        help="replace:OLD=NEW (relabel a class) or paste:LABELS_FILE (paste its non-background "
        "pixels); repeatable, applied in order",
    )
    morph_parser = parsers["morph"]
    morph_parser.add_argument("--a", required=True, help="first image (IMAGE or IMAGE:LABELS)")
    morph_parser.add_argument("--b", required=True, help="second image (IMAGE or IMAGE:LABELS)")
    morph_parser.add_argument("--steps", type=int, default=8)
    morph_parser.add_argument("--extrapolate", type=float, default=0.0)
    parsers["encode"].add_argument("--image", required=True, help="the real image")
    parsers["encode"].add_argument("--out", default="codes.npz", help="the .npz to write")
    parsers["decode"].add_argument("--codes", required=True, help=".npz from smis encode")
    parsers["decode"].add_argument(
        "--labels",
        "--mask",
        default=None,
        action=_LabelsOption,
        help="label map: PNG or .npy (default: the encoded one; --mask is its 0.1.0 spelling)",
    )
    parsers["demo"].add_argument("--out", default="gallery", help="the folder to write")

    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate presets on the synthetic benchmark; prints the table and writes only "
        "where told (--out, --record, --zoo-page)",
    )
    evaluate.add_argument("--presets", nargs="+", required=True, help="zoo names or folders")
    evaluate.add_argument("--n-images", type=int, default=64)
    evaluate.add_argument(
        "--seed",
        type=int,
        nargs="+",
        default=[0],
        help="seeds of the held-out data and codes; with several, each number is the mean over "
        "them, shown with its spread (mean ± sample std)",
    )
    evaluate.add_argument(
        "--diversity-images",
        type=int,
        default=None,
        metavar="N",
        help="label maps (the first N) behind mCSD / mOCD and the overall diversity (default: "
        "all --n-images); they cost 6 images per class and label map",
    )
    evaluate.add_argument("--segmenter", default=DEFAULT_SEGMENTER)
    evaluate.add_argument("--out", default=None, help="also write the table to this Markdown file")
    evaluate.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    evaluate.add_argument(
        "--record",
        action="store_true",
        help="maintainers: write the metrics into each evaluated preset's metadata.json and "
        "model card",
    )
    evaluate.add_argument(
        "--zoo-page",
        default=None,
        metavar="PATH",
        help="maintainers: replace the evaluated presets' rows in this zoo page (e.g. "
        "docs/zoo.md), keeping the other presets' rows and the findings",
    )
    # Recording was the default before; the flag that turned it off is now a no-op.
    evaluate.add_argument("--no-record", action="store_true", help=argparse.SUPPRESS)
    evaluate.set_defaults(handler=_runner("evaluate", evaluate_command))
    bench = commands.add_parser(
        "bench", help="the benchmark suite of a source checkout (python -m benchmarks)"
    )
    bench.add_argument(
        "--source",
        default=None,
        metavar="CHECKOUT",
        help="the smis-layers checkout whose benchmarks/ to run (default: the one Python finds, "
        "else the current folder or a parent)",
    )
    bench.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments of the suite")
    bench.set_defaults(handler=_runner("bench", bench_command))

    zoo = commands.add_parser("zoo", help="the model zoo")
    zoo_commands = zoo.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND", required=True)
    zoo_list = zoo_commands.add_parser("list", help="the presets with sizes and metrics")
    zoo_list.set_defaults(handler=_runner("zoo list", zoo_list_command))


def _runner(name: str, handler):
    def run(args: argparse.Namespace) -> int:
        try:
            result = handler(args)
        except INPUT_ERRORS as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else error
            print(f"smis {name}: error: {message}", file=sys.stderr)
            return 1
        if result is not None:
            print(f"smis {name}: wrote {result}")
        return 0

    return run
