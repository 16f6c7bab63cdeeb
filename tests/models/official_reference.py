"""A small-width PyTorch re-statement of the official GroupDNet (SMIS) generator and encoder.

Used by the checkpoint converter's parity tests. It is written from DESIGN.md and from reading the
official forward pass (Seanseattle/SMIS, CC BY-NC-SA; nothing is copied from it). What has to
match the official code exactly:

- the `state_dict` key names: modules are attributes with the official names (`fc`, `head_0`,
  ..., `conv_img`; `conv_0`, `conv_1`, `conv_s`, `norm_0`, `norm_1`, `norm_s`;
  `param_free_norm`, `mlp_shared` as an `nn.Sequential` of conv + ReLU, `mlp_gamma`,
  `mlp_beta`; encoder `layer1`... as `nn.Sequential(spectral-normed conv, InstanceNorm2d)`,
  `fc_mu`, `fc_var`), spectral norm by `torch.nn.utils.spectral_norm` (`weight_orig`,
  `weight_u`, `weight_v`);
- the forward: `fc` on the code, nearest x2 upsampling before every block but the first
  ('more' mode), every CGNorm resizing the mask with `F.interpolate(mode="nearest")`,
  LeakyReLU(0.2), `conv_img`, tanh; the Cityscapes decoder pairing each class mask with the
  instance-edge map (the last input channel); the encoder's per-sample, per-class crop and
  resize of the masked image (`crop_resize_classes`).

Unlike the official classes, widths, groups per block, number of classes and blocks, latent size
and the CGNorm hidden width are parameters, so parity can be checked at tiny sizes;
`official_generator` / `official_encoder` rebuild the official structures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm

VARIANTS = ("deepfashion", "cityscapes", "ade20k")
OFFICIAL_NUM_CLASSES = {"deepfashion": 8, "cityscapes": 35, "ade20k": 151}
OFFICIAL_ENCODER_WIDTH = {"deepfashion": 256, "cityscapes": 350, "ade20k": 604}

# (name, in_channels, out_channels, groups) of one decoder block.
BlockSpec = tuple[str, int, int, int]


def cgnorm_widths(
    variant: str, num_classes: int, groups: int, deepfashion_hidden: int = 128
) -> dict[str, int]:
    """Mask channels, hidden width and groups of the official CGNorm (GROUP_SPADE) variants."""
    c = num_classes
    if variant == "deepfashion":
        return {"mask": c, "hidden": deepfashion_hidden, "shared_groups": groups, "groups": groups}
    if variant == "cityscapes":
        return {"mask": 2 * c, "hidden": c * groups, "shared_groups": c, "groups": c}
    if variant == "ade20k":
        hidden = 2 * c if c % groups == 0 else c * groups
        return {"mask": c, "hidden": hidden, "shared_groups": c, "groups": groups}
    raise ValueError(f"variant must be one of {VARIANTS}; received {variant!r}")


class CGNormRef(nn.Module):
    """Conditional group normalization: param-free norm, then mask -> gamma, beta."""

    def __init__(
        self,
        channels: int,
        variant: str,
        num_classes: int,
        groups: int,
        norm: str = "batch",
        deepfashion_hidden: int = 128,
    ):
        super().__init__()
        w = cgnorm_widths(variant, num_classes, groups, deepfashion_hidden)
        if norm == "batch":  # the official sync batch norm has the same state and eval maths
            self.param_free_norm = nn.BatchNorm2d(channels, affine=False)
        elif norm == "instance":
            self.param_free_norm = nn.InstanceNorm2d(channels, affine=False)
        else:
            raise ValueError(f"norm must be 'batch' or 'instance'; received {norm!r}")
        self.mlp_shared = nn.Sequential(
            nn.Conv2d(w["mask"], w["hidden"], 3, padding=1, groups=w["shared_groups"]),
            nn.ReLU(),
        )
        self.mlp_gamma = nn.Conv2d(w["hidden"], channels, 3, padding=1, groups=w["groups"])
        self.mlp_beta = nn.Conv2d(w["hidden"], channels, 3, padding=1, groups=w["groups"])

    def forward(self, x, seg):
        normalized = self.param_free_norm(x)
        seg = F.interpolate(seg, size=x.shape[2:], mode="nearest")
        hidden = self.mlp_shared(seg)
        return normalized * (1 + self.mlp_gamma(hidden)) + self.mlp_beta(hidden)


class CGBlockRef(nn.Module):
    """Residual block: (CGNorm, LeakyReLU, grouped conv) x 2 plus a learned shortcut."""

    def __init__(self, fin: int, fout: int, groups: int, variant: str, num_classes: int, **norm):
        super().__init__()
        self.learned_shortcut = fin != fout
        middle = min(fin, fout)
        # Registration order as in the official block: convs first, then the norms.
        self.conv_0 = spectral_norm(nn.Conv2d(fin, middle, 3, padding=1, groups=groups))
        self.conv_1 = spectral_norm(nn.Conv2d(middle, fout, 3, padding=1, groups=groups))
        if self.learned_shortcut:
            self.conv_s = spectral_norm(nn.Conv2d(fin, fout, 1, bias=False, groups=groups))
        self.norm_0 = CGNormRef(fin, variant, num_classes, groups, **norm)
        self.norm_1 = CGNormRef(middle, variant, num_classes, groups, **norm)
        if self.learned_shortcut:
            self.norm_s = CGNormRef(fin, variant, num_classes, groups, **norm)

    def forward(self, x, seg):
        shortcut = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return shortcut + dx


class GeneratorRef(nn.Module):
    """The official decoder family, with the structure given explicitly.

    Args:
        num_classes: C.
        variant: CGNorm variant and input handling: "deepfashion", "cityscapes" (the input's
            last channel is the instance-edge map, paired with every class mask), "ade20k".
        fc_filters, fc_groups: the grouped 3x3 convolution applied to the code.
        blocks: (name, in, out, groups) of the decoder blocks, in order; nearest x2 upsampling
            precedes every block but the first.
        unused_blocks: blocks built (they are in the state dict) but never called, like the
            official ADE20K generator's `up_4`.
        latent_size: (h, w) of the code.
        norm: "batch" (official) or "instance" param-free norm in CGNorm.
        deepfashion_hidden: CGNorm hidden width of the "deepfashion" variant (official 128).
        latent_channels: code channels per class.
    """

    def __init__(
        self,
        num_classes: int,
        variant: str,
        fc_filters: int,
        fc_groups: int,
        blocks: Sequence[BlockSpec],
        unused_blocks: Sequence[BlockSpec] = (),
        latent_size: tuple[int, int] = (4, 4),
        norm: str = "batch",
        deepfashion_hidden: int = 128,
        latent_channels: int = 8,
    ):
        super().__init__()
        self.num_classes, self.variant = num_classes, variant
        self.latent_size = tuple(latent_size)
        self.block_names = [spec[0] for spec in blocks]
        norm_args = {"norm": norm, "deepfashion_hidden": deepfashion_hidden}
        self.fc = nn.Conv2d(
            latent_channels * num_classes, fc_filters, 3, padding=1, groups=fc_groups
        )
        for name, fin, fout, groups in (*blocks, *unused_blocks):
            self.add_module(name, CGBlockRef(fin, fout, groups, variant, num_classes, **norm_args))
        self.conv_img = nn.Conv2d(blocks[-1][2], 3, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)

    def forward(self, input_semantics, z):
        """`input_semantics`: (B, C, H, W) one-hot, plus the edge map as channel C for
        "cityscapes"; `z`: (B, 8C, h, w)."""
        seg = input_semantics
        if self.variant == "cityscapes":
            classes, edges = seg[:, :-1], seg[:, -1:]
            pairs = torch.stack([classes, edges.expand_as(classes)], dim=2)  # (B, C, 2, H, W)
            seg = pairs.flatten(1, 2)  # [class 0, edges, class 1, edges, ...]
        x = self.fc(z)
        x = x.reshape(x.shape[0], -1, *self.latent_size)
        for i, name in enumerate(self.block_names):
            if i > 0:
                x = self.up(x)
            x = getattr(self, name)(x, seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


class EncoderRef(nn.Module):
    """The official ConvEncoder: grouped stride-2 spectral convs + InstanceNorm, mu and logvar."""

    def __init__(
        self,
        num_classes: int,
        ndf: int,
        num_layers: int,
        latent_channels: int = 8,
        max_multiplier: int = 8,
    ):
        super().__init__()
        c = num_classes
        channels = 3 * c
        for i in range(num_layers):
            width = ndf * min(2**i, max_multiplier)
            conv = nn.Conv2d(channels, width, 3, stride=2, padding=1, groups=c, bias=False)
            layer = nn.Sequential(spectral_norm(conv), nn.InstanceNorm2d(width, affine=False))
            self.add_module(f"layer{i + 1}", layer)
            channels = width
        self.num_layers = num_layers
        self.fc_mu = nn.Conv2d(channels, latent_channels * c, 3, padding=1, groups=c)
        self.fc_var = nn.Conv2d(channels, latent_channels * c, 3, padding=1, groups=c)

    def forward(self, x):
        for i in range(self.num_layers):
            if i > 0:
                x = F.leaky_relu(x, 0.2)
            x = getattr(self, f"layer{i + 1}")(x)
        x = F.leaky_relu(x, 0.2)
        return self.fc_mu(x), self.fc_var(x)


def crop_resize_classes(one_hot, images, size: tuple[int, int] | None = None):
    """The official encoder input: per sample and class, crop the masked image to its box, resize.

    `one_hot` (B, C, H, W), `images` (B, 3, H, W) -> (B, 3C, *size). The box is where the masked
    image summed over RGB, then over rows (or columns), is nonzero; the crop is resized with
    nearest `F.interpolate` to `size` (the official code uses its fixed crop size; here the
    image size by default). A class whose masked image is all zero keeps the uncropped zeros.
    """
    size = tuple(size or images.shape[-2:])
    samples = []
    for b in range(images.shape[0]):
        parts = []
        for c in range(one_hot.shape[1]):
            masked = images[b] * one_hot[b, c]
            rgb = masked.sum(dim=0)
            cols = torch.nonzero(rgb.sum(dim=0)).flatten()
            if cols.numel() == 0:
                parts.append(masked)
                continue
            rows = torch.nonzero(rgb.sum(dim=1)).flatten()
            crop = masked[:, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
            parts.append(F.interpolate(crop[None], size=size, mode="nearest")[0])
        samples.append(torch.cat(parts, dim=0))
    return torch.stack(samples)


def instance_edges(instance_ids):
    """1 where a pixel's instance id differs from a 4-neighbour's: (B, 1, H, W) float."""
    t = instance_ids
    edges = torch.zeros_like(t, dtype=torch.bool)
    horizontal = t[..., :, 1:] != t[..., :, :-1]
    vertical = t[..., 1:, :] != t[..., :-1, :]
    edges[..., :, 1:] |= horizontal
    edges[..., :, :-1] |= horizontal
    edges[..., 1:, :] |= vertical
    edges[..., :-1, :] |= vertical
    return edges.float()


def input_semantics(labels, num_classes: int, instance_ids=None):
    """One-hot (B, C, H, W) from label maps (B, H, W), with the edge map appended if given."""
    labels = torch.as_tensor(labels, dtype=torch.long)
    one_hot = F.one_hot(labels, num_classes).permute(0, 3, 1, 2).float()
    if instance_ids is None:
        return one_hot
    ids = torch.as_tensor(instance_ids)[:, None]
    return torch.cat([one_hot, instance_edges(ids)], dim=1)


def randomize_(module: nn.Module, seed: int, calibrate: Callable[[nn.Module], None] | None = None):
    """Random weights, spectral-norm vectors and batch-norm statistics, then `.eval()`.

    Weights ~ N(0, 1/fan_in), biases ~ N(0, 0.1^2), spectral-norm u and v random unit vectors.
    `calibrate(module)`, if given, runs in training mode with cumulative batch-norm averaging:
    the running statistics become real activation statistics (so eval-mode activations stay in
    range) and the spectral norms take one power iteration from their random u, v. The running
    statistics are then perturbed so they are not exactly the calibration batch's.
    """
    generator = torch.Generator().manual_seed(seed)

    def normal(shape, std=1.0):
        return std * torch.randn(shape, generator=generator)

    batch_norms = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for _, parameter in module.named_parameters():
            if parameter.dim() > 1:
                parameter.copy_(normal(parameter.shape, 1 / math.sqrt(parameter[0].numel())))
            else:
                parameter.copy_(normal(parameter.shape, 0.1))
        for name, buffer in module.named_buffers():
            if name.endswith(("weight_u", "weight_v")):
                buffer.copy_(F.normalize(normal(buffer.shape), dim=0))
            elif name.endswith("running_mean"):
                buffer.copy_(normal(buffer.shape, 0.1))
            elif name.endswith("running_var"):
                buffer.copy_(0.5 + torch.rand(buffer.shape, generator=generator))
        if calibrate is not None:
            momenta = [bn.momentum for bn in batch_norms]
            for bn in batch_norms:
                bn.reset_running_stats()
                bn.momentum = None
            module.train()
            calibrate(module)
            for bn, momentum in zip(batch_norms, momenta, strict=True):
                bn.momentum = momentum
                std = bn.running_var.sqrt()
                bn.running_mean.add_(0.1 * std * normal(std.shape))
                bn.running_var.mul_(0.8 + 0.4 * torch.rand(std.shape, generator=generator))
                bn.num_batches_tracked.fill_(1000)
    return module.eval()


def official_generator(
    dataset: str, ngf: int, num_classes: int | None = None, deepfashion_hidden: int = 128
) -> GeneratorRef:
    """The official generator structure of "deepfashion", "cityscapes" or "ade20k" at width ngf
    (and, for "deepfashion", CGNorm hidden width `deepfashion_hidden`; official 128).

    (Cityscapes needs ngf divisible by 70 at C=35; the official widths are 160, 280, 64.)
    """
    c = num_classes or OFFICIAL_NUM_CLASSES[dataset]
    names = ("head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3")
    unused = ()
    if dataset == "ade20k":
        widths = (16 * c, 16 * c, 32 * ngf, 16 * ngf, 16 * ngf, 8 * ngf, 4 * ngf, 2 * ngf)
        groups = (c, 16, 16, 8, 4, 2, 1)
        fc_filters, fc_groups = 16 * c, c
        unused = (("up_4", 2 * ngf, ngf, 1),)
    else:
        widths = (16 * ngf, *(m * ngf for m in (16, 16, 16, 8, 4, 2, 1)))
        if dataset == "deepfashion":
            groups = (c, c, c // 2, c // 2, c // 4, c // 4, c // 8)
            fc_groups = 8
        else:
            groups = (c, c, 20, 14, 10, 4, 1)
            fc_groups = c
        fc_filters = 16 * ngf
    blocks = [
        (name, widths[i], widths[i + 1], g)
        for i, (name, g) in enumerate(zip(names, groups, strict=True))
    ]
    latent = (4, 8) if dataset == "cityscapes" else (4, 4)
    return GeneratorRef(
        c,
        dataset,
        fc_filters,
        fc_groups,
        blocks,
        unused,
        latent,
        deepfashion_hidden=deepfashion_hidden,
    )


def official_encoder(dataset: str, crop_size: int = 256) -> EncoderRef:
    """The official ConvEncoder of a dataset (6 stride-2 layers at crop size >= 256, else 5)."""
    num_layers = 6 if crop_size >= 256 else 5
    return EncoderRef(OFFICIAL_NUM_CLASSES[dataset], OFFICIAL_ENCODER_WIDTH[dataset], num_layers)
