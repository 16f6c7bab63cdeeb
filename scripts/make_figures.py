"""Regenerates the figures of the documentation (`docs/figures/`) with the library itself.

    python scripts/make_figures.py                      # every figure, zoo groupdnet_shapes64
    python scripts/make_figures.py --only architecture  # one figure
    python scripts/make_figures.py --preset runs/g64/preset --out /tmp/figures

Figures (and the pages that show them):

- `per_class_control.png`: `applications.resample_class` on the preset, one labelled row per
  class (Home, README);
- `code_priors.png`: `applications.sample` with N(0, 1) codes, shared codes and the preset's
  fitted code prior (Model zoo);
- `app_sample.png`, `app_resample_class.png`, `app_mix.png`, `app_manipulate.png`,
  `app_morph.png`: the gallery command `smis demo --out DIR --preset P` (Applications);
- `synthetic_benchmark.png`: `data.SyntheticShapes` (Training);
- `class_mask_split.png`: `layers.ClassMaskSplit(mode="crop_resize")` (Concepts);
- `architecture.png`: drawn with PIL from `GroupDecreasingSchedule.official("deepfashion")`
  (Concepts).

Everything is deterministic (fixed seeds); the figures are PNGs under 300 KB each (checked
here). It takes about a minute on a CPU. `docs/figures/demo.png` (the demo page's screenshot,
`scripts/demo_screenshot.py`) and `scaling*.png` (benchmarks) are made elsewhere.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "figures"
DEFAULT_PRESET = "groupdnet_shapes64"
MAX_BYTES = 300_000
FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)
BOLD_FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
)


# ---------------------------------------------------------------------------- drawing helpers
def font(size: int, bold: bool = False) -> ImageFont.ImageFont:
    for path in BOLD_FONT_FILES if bold else FONT_FILES:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def class_names(num_classes: int) -> list[str]:
    from smis_layers.data.synthetic import SHAPE_FAMILIES

    return ["background", *SHAPE_FAMILIES[: num_classes - 1]]


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def labelled_sheet(
    rows: list[list[np.ndarray]],
    row_labels: list[str],
    column_labels: list[str] | None = None,
    scale: int = 2,
    gap: int = 4,
    label_width: int = 150,
) -> Image.Image:
    """A white sheet of uint8 tiles, one label left of every row and optional column titles."""
    tile = upscale(rows[0][0], scale).shape[0]
    columns = max(len(r) for r in rows)
    top = 26 if column_labels else gap
    width = label_width + columns * (tile + gap) + gap
    height = top + len(rows) * (tile + gap)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    small = font(13)
    for j, text in enumerate(column_labels or []):
        x = label_width + j * (tile + gap)
        draw.text((x + tile // 2, 6), text, fill="black", font=small, anchor="ma")
    for i, (row, label) in enumerate(zip(rows, row_labels, strict=True)):
        y = top + i * (tile + gap)
        for line_index, line in enumerate(label.split("\n")):
            draw.text(
                (label_width - 10, y + tile // 2 + (line_index - label.count("\n") / 2) * 16),
                line,
                fill="black",
                font=small,
                anchor="rm",
            )
        for j, image in enumerate(row):
            sheet.paste(Image.fromarray(upscale(image, scale)), (label_width + j * (tile + gap), y))
    return sheet


def highlight(mask_rgb: np.ndarray, mask: np.ndarray, class_index: int) -> np.ndarray:
    """The colourized mask with every class but `class_index` faded towards white."""
    faded = (0.25 * mask_rgb + 0.75 * 255).astype("uint8")
    return np.where((mask == class_index)[..., None], mask_rgb, faded)


def save(image: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise RuntimeError(f"{path} is {size:,} bytes, over the {MAX_BYTES:,}-byte budget")
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ({size:,} B)")
    return path


def scene_with_most_classes(model, count: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(image, mask) of the held-out scene with the most classes (ties: the first)."""
    from smis_layers.applications import example_data
    from smis_layers.data.synthetic import HELD_OUT_SEED

    data = example_data(model, count, seed=HELD_OUT_SEED)
    best = int(np.argmax([len(np.unique(m)) for m in data["masks"]]))
    return data["images"][best], data["masks"][best]


# ---------------------------------------------------------------------------- figures
def per_class_control(preset: str, out: Path) -> Path:
    """Rows: one class's code redrawn 5 times while every other class keeps its code; the last
    column is the per-pixel standard deviation over the draws (mean over RGB; white = the most
    change in the figure, black = none), on one scale for all rows."""
    from smis_layers.applications import resample_class
    from smis_layers.models import from_preset
    from smis_layers.utils.images import colourize, to_uint8

    model = from_preset(preset)
    _, mask = scene_with_most_classes(model)
    present = [int(c) for c in np.unique(mask)]
    base = np.asarray(model.sample_z(1, seed=7))[0]
    names = class_names(model.num_classes)
    draws = {c: np.asarray(resample_class(model, mask, c, n=5, seed=11, z=base)) for c in present}
    spreads = {c: images.std(axis=0).mean(axis=-1) for c, images in draws.items()}
    # The background, the shape class whose redrawn code changes its region the most, and the
    # largest other shape class (whatever its code does: the figure shows both cases).
    shapes = present[1:]
    most_used = max(shapes, key=lambda c: float(spreads[c][mask == c].mean()))
    largest = max((c for c in shapes if c != most_used), key=lambda c: int(np.sum(mask == c)))
    classes = [0, most_used, largest]
    draws = {c: draws[c] for c in classes}
    spreads = {c: spreads[c] for c in classes}
    scale = max(float(s.max()) for s in spreads.values())  # one scale for all rows
    rows, labels = [], []
    for c, images in draws.items():
        change = np.repeat((255 * spreads[c] / scale).astype("uint8")[..., None], 3, axis=-1)
        rows.append([highlight(colourize(mask), mask, c), *to_uint8(images), change])
        labels.append(f"class {c} ({names[c]})\nredrawn")
    columns = ["mask (class shown)", "draw 1", "draw 2", "draw 3", "draw 4", "draw 5"]
    sheet = labelled_sheet(rows, labels, column_labels=[*columns, "where it changes"])
    return save(sheet, out / "per_class_control.png")


def code_priors(preset: str, out: Path) -> Path:
    """Rows: one held-out mask; samples from each way of drawing random codes: N(0, 1)
    at every latent position (the paper's sampling), one N(0, 1) code per class shared over the
    latent grid, and the preset's fitted code prior (two samples each)."""
    from smis_layers.applications import example_labels, sample
    from smis_layers.data.synthetic import HELD_OUT_SEED
    from smis_layers.models import from_preset
    from smis_layers.utils.images import colourize, to_uint8

    model = from_preset(preset)
    kinds = {
        "N(0, 1)": {"prior": "standard"},
        "shared": {"shared_codes": True},
        "fitted": {"prior": "fitted"},
    }
    rows, labels = [], []
    for i, mask in enumerate(example_labels(model, 3, seed=HELD_OUT_SEED)):
        row = [colourize(mask)]
        for options in kinds.values():
            row += list(to_uint8(sample(model, mask, n=2, seed=i, **options)))
        rows.append(row)
        labels.append(f"scene {i + 1}")
    columns = ["mask", *(name for name in kinds for _ in range(2))]
    sheet = labelled_sheet(rows, labels, column_labels=columns, label_width=90)
    return save(sheet, out / "code_priors.png")


def applications(preset: str, out: Path) -> list[Path]:
    """The gallery of `smis demo --out DIR` (every application), copied as app_*.png."""
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        gallery = Path(tmp) / "gallery"
        smis = shutil.which("smis")  # the installed command; else the same entry point
        command = [smis] if smis else [sys.executable, "-m", "smis_layers.cli"]
        command += ["demo", "--preset", preset, "--out", str(gallery)]
        subprocess.run(command, check=True)
        for name in ("sample", "resample_class", "mix", "manipulate", "morph"):
            target = out / f"app_{name}.png"
            shutil.copyfile(gallery / f"{name}.png", target)
            written.append(save(Image.open(target).convert("RGB"), target))
    return written


def synthetic_benchmark(out: Path) -> Path:
    """Masks and images of the benchmark, and one layout drawn with 7 other appearances."""
    from smis_layers.data import SyntheticShapes
    from smis_layers.data.synthetic import TEXTURES
    from smis_layers.utils.images import colourize, to_uint8

    data = SyntheticShapes(image_size=64, num_classes=8, seed=0)
    batch = data.batch(np.arange(7))
    rng = np.random.default_rng(3)
    count, c = 7, data.num_classes
    masks = np.repeat(batch["masks"][:1], count, axis=0)
    palette = rng.integers(0, data.num_palettes, (count, c))
    texture = rng.integers(0, len(TEXTURES), (count, c))
    params = np.stack(
        [
            rng.uniform(4, 10, (count, c)),
            rng.uniform(0, np.pi, (count, c)),
            rng.uniform(0, 1, (count, c)),
        ],
        axis=-1,
    )
    redrawn = data.render(masks, palette, texture, params)
    rows = [
        list(colourize(batch["masks"])),
        list(to_uint8(batch["images"])),
        [colourize(batch["masks"][0]), *to_uint8(redrawn[:6])],
    ]
    labels = ["label maps", "images", "one layout,\n6 other appearances"]
    return save(labelled_sheet(rows, labels, label_width=170), out / "synthetic_benchmark.png")


def class_mask_split(preset: str, out: Path) -> Path:
    """An image, its mask and the C per-class crops ClassMaskSplit feeds the encoder."""
    from smis_layers.layers import ClassMaskSplit
    from smis_layers.models import from_preset
    from smis_layers.utils.images import colourize, to_uint8

    model = from_preset(preset)
    image, mask = scene_with_most_classes(model)
    c = model.num_classes
    onehot = np.eye(c, dtype="float32")[mask][None]
    split = np.asarray(ClassMaskSplit(c, mode="crop_resize")(image[None], onehot))[0]
    crops = [to_uint8(split[..., 3 * k : 3 * k + 3]) for k in range(c)]
    present = set(np.unique(mask).tolist())
    for k in range(c):
        if k not in present:  # absent classes are zero, i.e. mid-grey in [-1, 1]: show them dim
            crops[k] = np.full_like(crops[k], 235)
    names = class_names(c)
    sheet = labelled_sheet(
        [[to_uint8(image), colourize(mask)], crops[:4], crops[4:]],
        [
            "image, mask",
            f"classes 0-3\n{', '.join(names[:4])}",
            f"classes 4-7\n{', '.join(names[4:])}",
        ],
        label_width=250,
    )
    return save(sheet, out / "class_mask_split.png")


def architecture(out: Path) -> Path:
    """GroupDNet's data flow, with the official DeepFashion decoder's decreasing groups."""
    from smis_layers import GroupDecreasingSchedule
    from smis_layers.utils.images import MASK_COLOURS

    schedule = GroupDecreasingSchedule.official("deepfashion")
    c = schedule.num_classes
    colours = [tuple(int(v) for v in MASK_COLOURS[k]) for k in range(c)]
    colours[0] = (90, 90, 90)  # class 0's mask colour is black: use grey for its stream
    width, height = 1440, 560
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    title, body, small = font(20, bold=True), font(15), font(13)
    ink, grey = (30, 30, 30), (120, 120, 120)
    draw.text(
        (20, 14),
        "GroupDNet: one code per class, decoder groups decreasing from C to 1 "
        f"(official DeepFashion decoder, C = {c})",
        fill=ink,
        font=title,
    )
    lane_top, lane_height = 130, 280  # the band in which the class streams run

    def lanes(x0: int, x1: int, groups: int, y0: int = lane_top, h: int = lane_height) -> None:
        """A box of `groups` horizontal lanes; lane g blends the colours of its classes."""
        per = c // groups
        for g in range(groups):
            members = colours[g * per : (g + 1) * per]
            colour = tuple(int(np.mean([m[i] for m in members])) for i in range(3))
            ya, yb = y0 + g * h / groups, y0 + (g + 1) * h / groups
            draw.rectangle([x0, ya + 1, x1, yb - 1], fill=colour)
        draw.rectangle([x0, y0, x1, y0 + h], outline=ink, width=2)

    def arrow(x0: int, y: int, x1: int, colour=ink) -> None:
        draw.line([x0, y, x1 - 8, y], fill=colour, width=3)
        draw.polygon([(x1, y), (x1 - 10, y - 6), (x1 - 10, y + 6)], fill=colour)

    def caption(x: int, lines: list[str], y: int = lane_top + lane_height + 12) -> None:
        for i, line in enumerate(lines):
            draw.text((x, y + i * 17), line, fill=ink if i == 0 else grey, font=small, anchor="ma")

    mid = lane_top + lane_height // 2
    # Inputs: image and mask.
    draw.rectangle([20, lane_top, 110, lane_top + 125], outline=ink, width=2, fill=(235, 235, 235))
    draw.text((65, lane_top + 62), "image x", fill=ink, font=body, anchor="mm")
    for k in range(c):  # a striped "mask" tile
        draw.rectangle(
            [20, lane_top + 155 + k * 125 / c, 110, lane_top + 155 + (k + 1) * 125 / c],
            fill=colours[k],
        )
    draw.rectangle([20, lane_top + 155, 110, lane_top + 280], outline=ink, width=2)
    draw.text((65, lane_top + 295), "mask M", fill=ink, font=body, anchor="ma")
    draw.text((65, lane_top + 313), "(C classes)", fill=grey, font=small, anchor="ma")
    arrow(112, mid, 150)

    # ClassMaskSplit: C masked (cropped and resized) copies.
    lanes(150, 250, c)
    caption(200, ["ClassMaskSplit", "x * M_c per class", "-> 3C channels"])
    arrow(252, mid, 290)
    # GroupConvEncoder.
    lanes(290, 400, c)
    caption(345, ["GroupConvEncoder", "stride-2 3x3", "convs, groups C"])
    arrow(402, mid, 440)
    # Per-class codes.
    for k in range(c):
        y = lane_top + k * lane_height / c
        draw.rectangle([440, y + 4, 490, y + lane_height / c - 4], fill=colours[k], outline=ink)
        draw.text((498, y + lane_height / (2 * c)), f"z_{k}", fill=ink, font=small, anchor="lm")
    caption(470, ["codes z", "8 ch per class", "(B, 4, 4, 8C)"])
    arrow(530, mid, 565)
    # fc: grouped conv from z.
    lanes(565, 620, schedule.input_groups)
    caption(592, ["fc", f"groups {schedule.input_groups}"])
    x = 640
    block_width = 92
    for i, block in enumerate(schedule.blocks):
        arrow(x - 18, mid, x + 2)
        lanes(x + 2, x + 2 + block_width - 22, block.groups)
        draw.text(
            (x + 2 + (block_width - 22) // 2, lane_top - 12),
            f"G = {block.groups}",
            fill=ink,
            font=body,
            anchor="ms",
        )
        lines = [block.name, f"{block.filters} ch", "x2 up" if block.upsample else ""]
        caption(x + 2 + (block_width - 22) // 2, lines)
        # CGNorm conditioning: the mask enters every block from below.
        bx = x + 2 + (block_width - 22) // 2
        draw.line([bx, 500, bx, lane_top + lane_height + 64], fill=(70, 130, 200), width=2)
        x += block_width
        if i == 0:
            first_block_x = bx
    last_block_x = bx
    draw.line([first_block_x, 500, last_block_x, 500], fill=(70, 130, 200), width=2)
    draw.line([65, lane_top + 328, 65, 520, first_block_x - 30, 520], fill=(70, 130, 200), width=2)
    draw.line(
        [first_block_x - 30, 520, first_block_x - 30, 500, first_block_x, 500],
        fill=(70, 130, 200),
        width=2,
    )
    draw.text(
        ((first_block_x + last_block_x) // 2, 520),
        "mask M (resized) -> CGNorm in every CGBlock: out = norm(x) * (1 + gamma(M)) + beta(M), "
        "grouped convs",
        fill=(40, 90, 160),
        font=small,
        anchor="ma",
    )
    # Output.
    arrow(x - 18, mid, x + 2)
    draw.rectangle(
        [x + 2, lane_top + 80, x + 112, lane_top + 200], outline=ink, width=2, fill=(235, 235, 235)
    )
    draw.text((x + 57, lane_top + 140), "image", fill=ink, font=body, anchor="mm")
    caption(x + 57, ["conv_img", "LeakyReLU, 3x3 conv,", "tanh"])
    draw.text(
        (20, 60),
        "Changing z_c changes class c's stream only until the groups merge; "
        "training teaches the shared blocks to keep each class's appearance in its region.",
        fill=grey,
        font=body,
    )
    draw.text(
        (20, 82),
        "Colours: one per class stream; a lane of a block with fewer groups mixes the "
        "streams of its classes.",
        fill=grey,
        font=body,
    )
    return save(sheet, out / "architecture.png")


FIGURES = (
    "per_class_control",
    "code_priors",
    "applications",
    "synthetic_benchmark",
    "class_mask_split",
    "architecture",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default=DEFAULT_PRESET, help="zoo name or preset folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder of the figures")
    parser.add_argument("--only", nargs="+", choices=FIGURES, default=list(FIGURES))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    makers = {
        "per_class_control": lambda: per_class_control(args.preset, args.out),
        "code_priors": lambda: code_priors(args.preset, args.out),
        "applications": lambda: applications(args.preset, args.out),
        "synthetic_benchmark": lambda: synthetic_benchmark(args.out),
        "class_mask_split": lambda: class_mask_split(args.preset, args.out),
        "architecture": lambda: architecture(args.out),
    }
    for name in args.only:
        makers[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
