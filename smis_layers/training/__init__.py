"""Training: the GAN trainer, its losses and schedules, and resumable runs (`run`).

The names are imported on first use, so the CLI reads the run settings
(`smis_layers.training.config`) without starting a deep-learning framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smis_layers.utils.lazy import lazy_exports

_LAZY_EXPORTS = {
    "ConstantThenLinearDecay": "smis_layers.training.schedules",
    "RunConfig": "smis_layers.training.config",
    "RunOptions": "smis_layers.training.config",
    "SMISTrainer": "smis_layers.training.trainer",
    "feature_matching_loss": "smis_layers.training.losses",
    "hinge_discriminator_loss": "smis_layers.training.losses",
    "hinge_generator_loss": "smis_layers.training.losses",
    "kl_divergence_loss": "smis_layers.training.losses",
    "perceptual_loss": "smis_layers.training.losses",
    "ttur_optimizer": "smis_layers.training.trainer",
    "vgg19_feature_extractor": "smis_layers.training.perceptual",
}

__all__ = [
    "ConstantThenLinearDecay",
    "RunConfig",
    "RunOptions",
    "SMISTrainer",
    "feature_matching_loss",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "kl_divergence_loss",
    "perceptual_loss",
    "ttur_optimizer",
    "vgg19_feature_extractor",
]

if TYPE_CHECKING:
    from smis_layers.training.config import RunConfig, RunOptions
    from smis_layers.training.losses import (
        feature_matching_loss,
        hinge_discriminator_loss,
        hinge_generator_loss,
        kl_divergence_loss,
        perceptual_loss,
    )
    from smis_layers.training.perceptual import vgg19_feature_extractor
    from smis_layers.training.schedules import ConstantThenLinearDecay
    from smis_layers.training.trainer import SMISTrainer, ttur_optimizer


__getattr__, __dir__ = lazy_exports(__name__, _LAZY_EXPORTS)
