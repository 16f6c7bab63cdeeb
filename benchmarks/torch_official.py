"""The official-architecture PyTorch training step (encoder, generator, discriminator), for the
GPU benchmark's ratio rows (`benchmarks/gpu_jax.py`).

The encoder and generator are tests/models/official_reference.py's (written from the paper's
description and the official structure, not copied); the discriminator completes them with
SPADE's multi-scale PatchGAN (4x4 convolutions 64-128-256-512-1, strides 2, 2, 2, 1, 1,
spectral norm and InstanceNorm after the first, LeakyReLU(0.2), average pooling between
scales). The step is the official one without the perceptual term: G step (hinge GAN + feature
matching x10 + KL x0.05), then D step (hinge) on detached fakes, Adam(0, 0.9), TTUR.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm

from tests.models.official_reference import (
    EncoderRef,
    crop_resize_classes,
    official_encoder,
    official_generator,
)


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int, num_layers: int = 4, filters: int = 64):
        super().__init__()
        layers, channels = [], in_channels
        for i in range(num_layers):
            width = filters * min(2**i, 8)
            stride = 2 if i < num_layers - 1 else 1
            conv = spectral_norm(nn.Conv2d(channels, width, 4, stride, padding=2))
            norm = nn.InstanceNorm2d(width) if i > 0 else nn.Identity()
            layers.append(nn.Sequential(conv, norm, nn.LeakyReLU(0.2)))
            channels = width
        layers.append(nn.Conv2d(channels, 1, 4, 1, padding=2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiScaleDiscriminator(nn.Module):
    def __init__(self, in_channels: int, num_scales: int = 2, **kwargs):
        super().__init__()
        self.scales = nn.ModuleList(
            PatchDiscriminator(in_channels, **kwargs) for _ in range(num_scales)
        )

    def forward(self, x):
        outputs = []
        for i, scale in enumerate(self.scales):
            if i > 0:
                x = F.avg_pool2d(x, 3, 2, padding=1, count_include_pad=False)
            outputs.append(scale(x))
        return outputs


def _hinge_g(outputs):
    return -sum(o[-1].mean() for o in outputs) / len(outputs)


def _hinge_d(real, fake):
    loss = 0.0
    for r, f in zip(real, fake, strict=True):
        loss = loss + F.relu(1 - r[-1]).mean() + F.relu(1 + f[-1]).mean()
    return loss / len(real)


def _feature_matching(real, fake):
    loss = 0.0
    for r, f in zip(real, fake, strict=True):
        for a, b in zip(r[:-1], f[:-1], strict=True):
            loss = loss + F.l1_loss(b, a.detach())
    return loss / len(real)


class OfficialStep:
    """One official G + D step of the DeepFashion architecture at `ngf` (160 official), on
    `device`, with bfloat16 autocast when `bf16`.

    Args:
        ngf: generator width; `encoder_ndf` None is the official encoder (ndf 256).
        size: image size (256 official).
        discriminator_filters: the discriminator's first width (64 official).
    """

    def __init__(
        self,
        device: str,
        bf16: bool,
        ngf: int = 160,
        encoder_ndf: int | None = None,
        size: int = 256,
        discriminator_filters: int = 64,
        num_classes: int = 8,
    ):
        self.device, self.bf16, self.size, self.c = device, bf16, size, num_classes
        self.generator = official_generator("deepfashion", ngf).to(device)
        self.encoder = (
            official_encoder("deepfashion", size)
            if encoder_ndf is None
            else EncoderRef(num_classes, encoder_ndf, 6 if size >= 256 else 5)
        ).to(device)
        self.discriminator = MultiScaleDiscriminator(
            num_classes + 3, filters=discriminator_filters
        ).to(device)
        g_params = [*self.generator.parameters(), *self.encoder.parameters()]
        self.g_optimizer = torch.optim.Adam(g_params, lr=1e-4, betas=(0.0, 0.9))
        self.d_optimizer = torch.optim.Adam(
            self.discriminator.parameters(), lr=4e-4, betas=(0.0, 0.9)
        )

    def batch(self, batch_size: int, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        labels = torch.randint(
            0, self.c, (batch_size, self.size // 8, self.size // 8), generator=generator
        )
        labels = labels.repeat_interleave(8, 1).repeat_interleave(8, 2)
        one_hot = F.one_hot(labels, self.c).permute(0, 3, 1, 2).float()
        images = torch.rand(batch_size, 3, self.size, self.size, generator=generator) * 2 - 1
        return one_hot.to(self.device), images.to(self.device)

    def step(self, one_hot, images) -> float:
        autocast = torch.autocast(
            "cuda" if self.device.startswith("cuda") else "cpu",
            dtype=torch.bfloat16,
            enabled=self.bf16,
        )
        with autocast:
            mu, logvar = self.encoder(crop_resize_classes(one_hot, images))
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            fake = self.generator(one_hot, z)
            fake_out = self.discriminator(torch.cat([one_hot, fake], 1))
            real_out = self.discriminator(torch.cat([one_hot, images], 1))
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            g_loss = _hinge_g(fake_out) + 10 * _feature_matching(real_out, fake_out) + 0.05 * kl
        self.g_optimizer.zero_grad(set_to_none=True)
        g_loss.float().backward()
        self.g_optimizer.step()
        with autocast:
            with torch.no_grad():
                mu, logvar = self.encoder(crop_resize_classes(one_hot, images))
                fake = self.generator(one_hot, mu + torch.randn_like(mu) * torch.exp(0.5 * logvar))
            fake_out = self.discriminator(torch.cat([one_hot, fake.detach()], 1))
            real_out = self.discriminator(torch.cat([one_hot, images], 1))
            d_loss = _hinge_d(real_out, fake_out)
        self.d_optimizer.zero_grad(set_to_none=True)
        d_loss.float().backward()
        self.d_optimizer.step()
        return float(d_loss.detach())
