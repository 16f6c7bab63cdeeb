"""Which part of a morph's middle frame leaves the data: the colour channels, the texture waves
or the encoder's channels? For a preset with the region colour and texture codes, the morph FID
ratio of `scripts/texture_and_morph.py` (the middle frame's domain FID over the end frames')
when each group of every class's channels follows its own path from image A's codes to B's:

- `lin`: the straight line (what `applications.morph` does with every channel);
- `near`: A's values up to the middle frame, B's after it (a switch, no in-between value);
- `polar`: texture waves only: each wave paired with the other image's wave of the nearest
  direction, turned along the shorter arc with its frequency, amplitude and phase changing
  linearly, so that every frame draws single waves of the benchmark's frequencies;
- `fade`: texture waves only: A's waves fade to nothing at the middle frame, then B's fade in.

    python scripts/morph_path_probe.py groupdnet_shapes64 --n-images 128 \\
        --paths c=lin,w=lin,e=lin c=near,w=lin,e=lin c=lin,w=near,e=lin c=lin,w=polar,e=lin

A path is `c=...,w=...,e=...` for the colour, the texture waves and the encoder's channels
(a group left out moves linearly).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from smis_layers import applications
from smis_layers.data.synthetic import HELD_OUT_SEED, SyntheticShapes
from smis_layers.metrics import donor_appearance, morph_fid_ratio
from smis_layers.models.region_codes import REGION_TEXTURE_CHANNELS
from smis_layers.models.segmenter import ShapesSegmenter
from smis_layers.presets import load_preset

GROUPS = ("c", "w", "e")
PATHS = {"c": ("lin", "near"), "w": ("lin", "near", "polar", "fade"), "e": ("lin", "near")}


def _wrap(angle: np.ndarray, period: float) -> np.ndarray:
    return (angle + 0.5 * period) % period - 0.5 * period


def polar_waves(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Waves (..., 4 waves) a fraction t from `a` to `b`, each still a single wave (the
    `polar` path of the docstring), in `region_texture_waves`'s half-plane and order; `a`
    and `b` themselves at t = 0 and 1."""
    if t in (0.0, 1.0):
        return np.array(a if t == 0.0 else b)
    shape = a.shape
    a = a.reshape(*shape[:-1], -1, REGION_TEXTURE_CHANNELS).astype("float64")
    b = b.reshape(a.shape).astype("float64")
    on_a, on_b = np.any(a != 0, axis=-1), np.any(b != 0, axis=-1)
    dir_a, dir_b = np.arctan2(a[..., 1], a[..., 0]), np.arctan2(b[..., 1], b[..., 0])
    if a.shape[-2] == 2:  # pair so that the most waves turn rather than fade, then the least turn

        def cost(order):
            both, fades = on_a & on_b[..., order], on_a != on_b[..., order]
            turn = np.abs(_wrap(dir_a - dir_b[..., order], np.pi))
            return np.sum(np.where(both, turn, np.where(fades, np.pi, 0.0)), axis=-1)

        swap = (cost([1, 0]) < cost([0, 1]))[..., None]
        b = np.where(swap[..., None], b[..., ::-1, :], b)
        on_b, dir_b = np.where(swap, on_b[..., ::-1], on_b), np.where(swap, dir_b[..., ::-1], dir_b)
    radius_a, radius_b = np.hypot(a[..., 0], a[..., 1]), np.hypot(b[..., 0], b[..., 1])
    amp_a, amp_b = np.hypot(a[..., 2], a[..., 3]), np.hypot(b[..., 2], b[..., 3])
    phase_a, phase_b = np.arctan2(a[..., 3], a[..., 2]), np.arctan2(b[..., 3], b[..., 2])
    mirror = np.abs(_wrap(dir_b - dir_a, 2 * np.pi)) > 0.5 * np.pi  # -f, conjugate: same wave
    dir_b, phase_b = np.where(mirror, dir_b + np.pi, dir_b), np.where(mirror, -phase_b, phase_b)
    # An absent wave takes its partner's frequency and phase with amplitude 0.
    radius_a, radius_b = np.where(on_a, radius_a, radius_b), np.where(on_b, radius_b, radius_a)
    dir_a, phase_a = np.where(on_a, dir_a, dir_b), np.where(on_a, phase_a, phase_b)
    dir_b, phase_b = np.where(on_b, dir_b, dir_a), np.where(on_b, phase_b, phase_a)
    radius = (1 - t) * radius_a + t * radius_b
    amplitude = (1 - t) * amp_a + t * amp_b
    direction = dir_a + t * _wrap(dir_b - dir_a, 2 * np.pi)
    phase = phase_a + t * _wrap(phase_b - phase_a, 2 * np.pi)
    fx, fy = radius * np.cos(direction), radius * np.sin(direction)
    flip = (fy < 0) | ((fy == 0) & (fx < 0))
    fx, fy, phase = np.where(flip, -fx, fx), np.where(flip, -fy, fy), np.where(flip, -phase, phase)
    out = np.stack([fx, fy, amplitude * np.cos(phase), amplitude * np.sin(phase)], axis=-1)
    out = np.where((on_a | on_b)[..., None], out, 0.0)
    if out.shape[-2] == 2:
        out = np.where(
            (amplitude[..., 0] < amplitude[..., 1])[..., None, None], out[..., ::-1, :], out
        )
    return out.reshape(shape)


def parse_path(text: str) -> dict[str, str]:
    path = {group: "lin" for group in GROUPS}
    for item in text.split(","):
        group, _, how = item.partition("=")
        if group not in PATHS or how not in PATHS[group]:
            raise ValueError(f"bad path item {item!r} in {text!r}; expected {PATHS}")
        path[group] = how
    return path


def morph_along(path: dict[str, str]):
    """`applications.morph`'s signature, each channel group moving along `path`."""

    def morph(model, labels, z_a, z_b, steps: int = 5, extrapolate: float = 0.0):
        classes = model.num_classes
        measured, colour = model.measured_code_channels, model.region_colour_channels
        spans = {"c": (0, colour), "w": (colour, measured), "e": (measured, None)}
        a = z_a.reshape(*z_a.shape[:2], classes, -1)
        b = z_b.reshape(*z_b.shape[:2], classes, -1)
        frames = []
        for t in np.linspace(0.0, 1.0, steps):
            z = a.copy()
            for group, (start, end) in spans.items():
                part_a, part_b = a[..., start:end], b[..., start:end]
                how = path[group]
                if how == "lin":
                    z[..., start:end] = part_a + t * (part_b - part_a)
                elif how == "near":
                    z[..., start:end] = part_a if t <= 0.5 else part_b
                elif how == "polar":
                    waves = polar_waves(part_a.mean((0, 1)), part_b.mean((0, 1)), float(t))
                    z[..., start:end] = waves
                else:  # fade
                    waves = (part_a if t <= 0.5 else part_b).copy()
                    waves = waves.reshape(*waves.shape[:-1], -1, REGION_TEXTURE_CHANNELS)
                    waves[..., 2:] *= abs(1.0 - 2.0 * t)
                    z[..., start:end] = waves.reshape(part_a.shape)
            frames.append(z.reshape(z_a.shape))
        return model.generate(np.repeat(labels[None], steps, axis=0), z=np.stack(frames))

    return morph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset")
    parser.add_argument("--n-images", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--paths", nargs="+", default=["c=lin,w=lin,e=lin"])
    args = parser.parse_args()
    paths = [(text, parse_path(text)) for text in args.paths]
    model = load_preset(args.preset)
    if not getattr(model, "region_texture_code", 0):
        parser.error(f"{args.preset} has no region texture code")
    segmenter = load_preset("segmenter_shapes64", expected_class=ShapesSegmenter)
    data = SyntheticShapes(64, model.num_classes, seed=HELD_OUT_SEED + args.seed)
    batch = data.batch(np.arange(args.n_images))
    other = data.batch(np.arange(args.n_images, 2 * args.n_images))["images"]
    donor = donor_appearance(data, batch["palette"], batch["texture"], batch["params"], args.seed)
    images_b = data.render(batch["masks"], *donor)
    print("| path | FID ends | FID middle | ratio | FID per frame |")
    print("|---|---|---|---|---|")
    original = applications.morph
    try:
        for text, path in paths:
            applications.morph = morph_along(path)  # what morph_fid_ratio calls
            r = morph_fid_ratio(
                model, segmenter.features, batch["images"], batch["masks"], images_b, other
            )
            frames = ", ".join(f"{v:.2f}" for v in r["fid_per_step"])
            print(
                f"| {text} | {r['fid_ends']:.2f} | {r['fid_middle']:.2f} | {r['ratio']:.2f} "
                f"| {frames} |",
                flush=True,
            )
    finally:
        applications.morph = original


if __name__ == "__main__":
    main()
