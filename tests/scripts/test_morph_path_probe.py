"""scripts/morph_path_probe.py's `polar` path: every frame's waves are single waves that turn
and rescale, paired by direction, in region_texture_waves's half-plane and order; and its
morph with every group on the straight line is applications.morph's."""

from __future__ import annotations

import numpy as np

from smis_layers import applications
from smis_layers.models import build_architecture
from tests.helpers import load_script

X = np.array([1.0, 0.0, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0])  # 8 cycles along x, one wave
Y = np.array([0.0, 1.0, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0])  # the same along y
CHECKER = np.array([0.7, 0.7, 0.1, 0.0, -0.7, 0.7, 0.1, 0.0])  # two diagonals


def test_polar_waves_turn_rather_than_mix():
    probe = load_script("morph_path_probe")
    np.testing.assert_allclose(probe.polar_waves(X, Y, 0.0), X, atol=1e-7)
    np.testing.assert_allclose(probe.polar_waves(X, Y, 1.0), Y, atol=1e-7)
    # Halfway: the same frequency along the diagonal (the straight line gives half of it
    # along each axis, plus a fading second wave: two waves neither image has).
    half = probe.polar_waves(X, Y, 0.5)
    np.testing.assert_allclose(half, [0.5**0.5, 0.5**0.5, 0.2, 0, 0, 0, 0, 0], atol=1e-6)
    # Stripes to a checker: the stripes turn towards the nearer diagonal (45 degrees away)
    # while the other diagonal fades in at its own frequency.
    quarter = probe.polar_waves(X, CHECKER, 0.5)
    assert np.isclose(np.degrees(np.arctan2(quarter[1], quarter[0])), 22.5, atol=0.5)
    np.testing.assert_allclose(quarter[4:6], CHECKER[4:6], atol=1e-6)
    np.testing.assert_allclose(np.hypot(*quarter[6:]), 0.05, atol=1e-6)
    # The mirror image of a wave (-f, conjugate amplitude) is the same wave: no turn through
    # 180 degrees, and the result stays in the half-plane fy >= 0.
    mirrored = probe.polar_waves(X, np.array([-1.0, 0.1, 0.2, -0.1, 0, 0, 0, 0]), 0.5)
    assert mirrored[1] >= 0 and np.hypot(*mirrored[:2]) > 0.95


def test_the_straight_path_is_applications_morph():
    probe = load_script("morph_path_probe")
    model = build_architecture(
        "groupdnet:classes=4,size=64,width=2,encoder=4,latent=12,colour=1,texture=2", seed=0
    )
    labels = np.random.default_rng(0).integers(0, 4, (64, 64))
    z_a, z_b = model.sample_z(2, seed=1)
    straight = probe.morph_along(probe.parse_path("c=lin,w=lin,e=lin"))
    np.testing.assert_allclose(
        straight(model, labels, z_a, z_b, steps=3),
        applications.morph(model, labels, z_a, z_b, steps=3),
        atol=1e-5,
    )
