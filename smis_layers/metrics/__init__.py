"""Evaluation metrics: FID, LPIPS, segmentation scores, mCSD / mOCD, diversity, the
synthetic benchmark's appearance-swap score, the codes' information (posterior collapse), the
texture agreement of reconstructions, the domain FID of morphs, plus `evaluate_presets`
(docs/evaluation.md)."""

from smis_layers.metrics.class_control import class_code_control, reconstruction_colour_errors
from smis_layers.metrics.code_usage import code_information, gaussian_kl_nats
from smis_layers.metrics.disentanglement import appearance_swap_score, donor_appearance
from smis_layers.metrics.distances import (
    ImageDistance,
    LPIPSDistance,
    MaskedFeatureDistance,
    MaskedL1Distance,
    masked_feature_distance,
    masked_l1_distance,
    masked_lpips_distance,
    resize_region,
)
from smis_layers.metrics.diversity import class_specific_diversity, overall_diversity
from smis_layers.metrics.evaluate import (
    combine_seeds,
    evaluate_presets,
    images_per_second,
    markdown_table,
)
from smis_layers.metrics.fid import (
    FrechetDistance,
    feature_statistics,
    frechet_distance,
    inception_v3_feature_extractor,
)
from smis_layers.metrics.flops import (
    discriminator_flops,
    generator_flops,
    layer_flops,
    train_step_flops,
)
from smis_layers.metrics.lpips import (
    LPIPS,
    alexnet_backbone,
    convert_lpips_torch_weights,
    vgg16_backbone,
)
from smis_layers.metrics.morph import morph_fid_ratio
from smis_layers.metrics.segmentation import (
    SegmentationScores,
    confusion_matrix,
    scores_from_confusion,
    segmentation_scores,
)
from smis_layers.metrics.texture import dominant_frequency, frequency_peaks, texture_agreement

#: The streaming FID metric under its usual name (any feature extractor).
FrechetInceptionDistance = FrechetDistance

__all__ = [
    "LPIPS",
    "FrechetDistance",
    "FrechetInceptionDistance",
    "ImageDistance",
    "LPIPSDistance",
    "MaskedFeatureDistance",
    "MaskedL1Distance",
    "SegmentationScores",
    "alexnet_backbone",
    "appearance_swap_score",
    "class_code_control",
    "class_specific_diversity",
    "code_information",
    "combine_seeds",
    "confusion_matrix",
    "convert_lpips_torch_weights",
    "discriminator_flops",
    "dominant_frequency",
    "donor_appearance",
    "evaluate_presets",
    "feature_statistics",
    "frechet_distance",
    "frequency_peaks",
    "gaussian_kl_nats",
    "generator_flops",
    "images_per_second",
    "inception_v3_feature_extractor",
    "layer_flops",
    "markdown_table",
    "masked_feature_distance",
    "masked_l1_distance",
    "masked_lpips_distance",
    "morph_fid_ratio",
    "overall_diversity",
    "reconstruction_colour_errors",
    "resize_region",
    "scores_from_confusion",
    "segmentation_scores",
    "texture_agreement",
    "train_step_flops",
    "vgg16_backbone",
]
