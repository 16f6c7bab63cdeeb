"""Architecture presets of GroupDNet: the official networks, exactly, and small CPU ones."""

from __future__ import annotations

from smis_layers.data.datasets import dataset_facts
from smis_layers.layers.group_decreasing_schedule import GroupDecreasingSchedule


def official_config(dataset: str) -> dict:
    """Constructor arguments of the official GroupDNet for "deepfashion", "cityscapes", "ade20k".

    DeepFashion 256x256 (C=8, ngf=160, encoder ndf=256), Cityscapes 256x512 (C=35, ngf=280,
    ndf=350, CGNorm conditioned on the segmap paired with instance edges), ADE20K 256x256
    (C=151, ngf=64, ndf=604); encoder input by per-class crop and resize, 'more' upsampling,
    spectral norm, instance-normalized encoder. The official decoder normalizes with synchronized
    batch norm, which equals "batch" on one device (use norm="sync_batch" for multi-device).
    """
    schedule = GroupDecreasingSchedule.official(dataset)
    facts = dataset_facts(dataset)  # the table of smis_layers.data.datasets
    return {
        "num_classes": schedule.num_classes,
        "image_size": facts.image_size,
        "schedule": schedule.get_config(),
        "encoder_channels": facts.encoder_channels,
        "encoder_layers": 6,
        "split_mode": "crop_resize",
        "norm": "batch",
        "encoder_norm": "instance",
        "spectral_norm": True,
        "use_instance_edges": facts.instance_edges,
    }
