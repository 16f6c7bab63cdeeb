"""How much of a region's colour can reach its class's code? For an encoder (untrained, or a
preset's), encode a flat square of class `--class-index` in `--colours` random colours on a flat
grey background, and fit a ridge regression from the class's code (its mean over the latent
grid, `latent_channels` numbers) to the square's RGB colour, with half the colours for fitting
and half for the held-out R^2 (1: the code determines the colour linearly; 0: it carries none).
Also printed: how far apart the codes of pure red and pure green are (max abs difference).

An untrained encoder shows what the architecture can carry before any learning. The instance
norm after each encoder convolution removes each channel's scale over the crop: a flat region on
the zero background of its crop keeps only the sign pattern of each channel, so the colour
information left grows with the first layer's channels per class, and vanishes without a
nonlinearity to break the symmetry (see docs/zoo.md).

    python scripts/encoder_colour_probe.py                      # the architecture grid
    python scripts/encoder_colour_probe.py --presets groupdnet_shapes64 mulnet_shapes64
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

SIZE = 64


def flat_squares(colours: np.ndarray, class_index: int) -> tuple[np.ndarray, np.ndarray]:
    """(images, masks): one 24x24 square of each colour on a flat grey class-0 background."""
    n = len(colours)
    masks = np.zeros((n, SIZE, SIZE), "int32")
    masks[:, 20:44, 20:44] = class_index
    images = np.zeros((n, SIZE, SIZE, 3), "float32")
    images[:] = -0.2
    images[:, 20:44, 20:44] = colours[:, None, None, :]
    return images, masks


def r_squared(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Coefficient of determination of `predicted` for `actual` (rows: samples); 0 for the mean."""
    total = ((actual - actual.mean(axis=0)) ** 2).sum()
    return float(1 - ((actual - predicted) ** 2).sum() / total)


def colourr_squared(model, colours: np.ndarray, class_index: int) -> tuple[float, float]:
    """Held-out R^2 of colour predicted from the class's code (fit on the first half, codes
    standardized): (ridge regression, 5-nearest-neighbour regression). The second also sees
    colour information that reaches the code nonlinearly."""
    images, masks = flat_squares(colours, class_index)
    mu, _ = model.encode(images, masks)
    codes = model.class_code(mu, class_index).reshape(len(colours), -1).astype("float64")
    codes = (codes - codes.mean(axis=0)) / (codes.std(axis=0) + 1e-12)
    half = len(colours) // 2
    x = np.concatenate([codes, np.ones((len(codes), 1))], axis=1)
    a, b = x[:half], colours[:half]
    weights = np.linalg.solve(a.T @ a + 1e-2 * np.eye(a.shape[1]), a.T @ b)
    linear = r_squared(x[half:] @ weights, colours[half:])
    distances = ((codes[half:, None] - codes[None, :half]) ** 2).sum(axis=-1)
    nearest = np.argsort(distances, axis=1)[:, :5]
    neighbours = r_squared(colours[:half][nearest].mean(axis=1), colours[half:])
    return linear, neighbours


def red_green_distance(model, class_index: int) -> float:
    colours = np.array([[1, -1, -1], [-1, 1, -1]], "float32")
    images, masks = flat_squares(colours, class_index)
    mu, _ = model.encode(images, masks)
    codes = model.class_code(mu, class_index)
    return float(np.abs(codes[0] - codes[1]).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="*", default=[], help="zoo names or preset folders")
    parser.add_argument("--architecture", default="groupdnet_shapes64")
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--norms", nargs="+", default=["instance", "none"])
    parser.add_argument("--seeds", type=int, default=3, help="untrained encoders per row")
    parser.add_argument("--colours", type=int, default=256)
    parser.add_argument("--class-index", type=int, nargs="+", default=[2])
    args = parser.parse_args()

    import keras

    from smis_layers.models import build_architecture, from_preset

    colours = np.random.default_rng(0).uniform(-1, 1, (args.colours, 3)).astype("float32")
    print("| encoder | class | R^2 linear | R^2 5-NN | red-green code distance |")
    print("|---|---|---|---|---|")
    for preset in args.presets:
        model = from_preset(preset)
        for c in args.class_index:
            linear, neighbours = colourr_squared(model, colours, c)
            distance = red_green_distance(model, c)
            print(f"| {preset} | {c} | {linear:.2f} | {neighbours:.2f} | {distance:.2f} |")
    for norm in args.norms:
        for width in args.widths:
            rows = []
            for seed in range(args.seeds):
                keras.utils.set_random_seed(seed)
                model = build_architecture(
                    args.architecture, encoder_channels=width, encoder_norm=norm
                )
                c = args.class_index[0]
                rows.append((*colourr_squared(model, colours, c), red_green_distance(model, c)))
            linear, neighbours, distance = np.mean(rows, axis=0)
            name = f"{args.architecture} untrained, {width} channels, norm {norm}"
            print(f"| {name} | {c} | {linear:.2f} | {neighbours:.2f} | {distance:.2f} |")


if __name__ == "__main__":
    main()
