"""scripts/decoder_texture_probe.py's code inversion: it must lower the reconstruction loss by
moving the encoder's channels of the codes, and leave the region colour channels alone."""

from __future__ import annotations

import numpy as np

from smis_layers.data.synthetic import SyntheticShapes
from smis_layers.models import build_architecture
from tests.helpers import load_script


def test_invert_codes_lowers_the_loss_and_keeps_the_colour_channels():
    probe = load_script("decoder_texture_probe")
    model = build_architecture("groupdnet:classes=4,size=64,width=2,encoder=4,colour=1", seed=0)
    batch = SyntheticShapes(64, 4, seed=3).batch(np.arange(2))
    mu, codes, losses = probe.invert_codes(
        model,
        batch["images"],
        batch["masks"],
        steps=6,
        learning_rate=0.1,
        spectrum_weight=0.5,
    )
    assert len(losses) == 6 and losses[-1] < losses[0]
    colour = model.region_colour_channels
    before = mu.reshape(*mu.shape[:3], 4, -1)
    after = codes.reshape(*codes.shape[:3], 4, -1)
    np.testing.assert_array_equal(after[..., :colour], before[..., :colour])
    assert np.abs(after[..., colour:] - before[..., colour:]).max() > 0.1
