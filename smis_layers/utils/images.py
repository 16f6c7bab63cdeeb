"""Image grids for sample sheets and model cards."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# A fixed, distinguishable colour per class (class 0 black); cycles after 20 classes.
MASK_COLOURS = np.array(
    [
        [0, 0, 0],
        [230, 25, 75],
        [60, 180, 75],
        [255, 225, 25],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [210, 245, 60],
        [250, 190, 212],
        [0, 128, 128],
        [220, 190, 255],
        [170, 110, 40],
        [255, 250, 200],
        [128, 0, 0],
        [170, 255, 195],
        [128, 128, 0],
        [255, 215, 180],
        [0, 0, 128],
    ],
    dtype="uint8",
)


def to_uint8(images) -> np.ndarray:
    """[-1, 1] float images -> uint8."""
    return np.round((np.asarray(images, "float32") + 1.0) * 127.5).clip(0, 255).astype("uint8")


def colourize(labels) -> np.ndarray:
    """(..., H, W) integer label maps -> (..., H, W, 3) uint8 colours."""
    return MASK_COLOURS[np.asarray(labels) % len(MASK_COLOURS)]


def image_grid(rows: list[np.ndarray], padding: int = 2) -> np.ndarray:
    """Stacks rows of uint8 images (each row (N, H, W, 3)) into one padded sheet."""
    height, width = rows[0].shape[1:3]
    columns = max(len(r) for r in rows)
    sheet = np.full(
        (len(rows) * (height + padding) + padding, columns * (width + padding) + padding, 3),
        255,
        dtype="uint8",
    )
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            top, left = padding + i * (height + padding), padding + j * (width + padding)
            sheet[top : top + height, left : left + width] = image
    return sheet


def save_png(array: np.ndarray, path, scale: int = 1) -> Path:
    from PIL import Image

    image = Image.fromarray(array)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    import io

    from smis_layers.utils.io import atomic_write_bytes

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return path
