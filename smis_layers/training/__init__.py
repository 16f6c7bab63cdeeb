"""Training: the GAN trainer, its losses and schedules."""

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

__all__ = [
    "ConstantThenLinearDecay",
    "SMISTrainer",
    "feature_matching_loss",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "kl_divergence_loss",
    "perceptual_loss",
    "ttur_optimizer",
    "vgg19_feature_extractor",
]
