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


def test_posterior_snr_divides_the_means_spread_by_the_noise_and_skips_colour_channels():
    probe = load_script("decoder_texture_probe")
    model = build_architecture("groupdnet:classes=4,size=64,width=2,encoder=4,colour=1", seed=0)
    channels, colour = model.schedule.latent_channels, model.region_colour_channels
    shape = (2, 4, 4, 4, channels)
    mu = np.zeros(shape, "float32")
    mu[0, ..., colour:], mu[1, ..., colour:] = 0.3, -0.3  # spread (std over scenes) 0.3
    mu[0, ..., :colour], mu[1, ..., :colour] = 5.0, -5.0  # colour channels: ignored
    logvar = np.full(shape, 2 * np.log(0.5), "float32")  # sigma 0.5
    logvar[..., :colour] = -20.0
    snr, sigma = probe.posterior_snr(model, mu.reshape(2, 4, 4, -1), logvar.reshape(2, 4, 4, -1))
    np.testing.assert_allclose([snr, sigma], [0.6, 0.5], rtol=1e-6)


def test_with_split_mode_keeps_the_weights_and_changes_what_the_encoder_reads():
    probe = load_script("decoder_texture_probe")
    model = build_architecture("groupdnet:classes=4,size=64,width=2,encoder=4,colour=1", seed=0)
    masked = probe.with_split_mode(model, "mask")
    assert probe.with_split_mode(model, "crop_resize") is model
    assert masked.split_mode == "mask" and masked.get_config()["split_mode"] == "mask"
    for a, b in zip(masked.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    batch = SyntheticShapes(64, 4, seed=3).batch(np.arange(2))
    codes = [m.encode(batch["images"], batch["masks"])[0] for m in (model, masked)]
    assert np.abs(codes[0] - codes[1]).max() > 1e-3


def test_train_encoder_moves_only_the_encoder():
    probe = load_script("decoder_texture_probe")
    base = build_architecture("groupdnet:classes=4,size=64,width=2,encoder=4,colour=1", seed=0)
    model = probe.with_split_mode(base, "mask")
    encoder_before = [np.array(w) for w in model.encoder.get_weights()]
    others = [w for w in model.weights if not any(w is v for v in model.encoder.weights)]
    others_before = [np.array(w) for w in others]
    losses = probe.train_encoder(model, steps=3, learning_rate=0.01, batch_size=2, seed=4)
    assert len(losses) == 3 and all(np.isfinite(losses))
    moved = [
        np.abs(a - b).max()
        for a, b in zip(model.encoder.get_weights(), encoder_before, strict=True)
    ]
    assert max(moved) > 1e-3
    for weight, before in zip(others, others_before, strict=True):
        np.testing.assert_array_equal(np.array(weight), before, err_msg=weight.path)
