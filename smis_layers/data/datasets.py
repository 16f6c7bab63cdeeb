"""The facts of the three datasets of the paper, as data: one `DatasetFacts` row per dataset.

Every consumer reads this table and nothing else: the official decoder
(`GroupDecreasingSchedule.official`), the official network (`GroupDNet.official`), the label
conventions (`smis_layers.data.labels`), the folder loaders (`smis_layers.data.folders`),
`smis train` and the CLI's `--data` choices. A difference between datasets is a field of a
row, never an `if dataset == ...` branch elsewhere (a test greps the package for those).

| dataset | classes | image size | ngf | encoder width | latent | instance edges |
|---|---|---|---|---|---|---|
| deepfashion | 8 | 256x256 | 160 | 256 | 4x4 | no |
| cityscapes | 35 | 256x512 | 280 | 350 | 4x8 | yes |
| ade20k | 151 (150 + "other") | 256x256 | 64 | 604 | 4x4 | no |

The numbers are those of the official GroupDNet options and networks (paper Sec. 4, the
official code's per-dataset options), which the converter's parity tests check.

This module imports nothing but the standard library, so a layer file may import it.

Examples:
    >>> from smis_layers.data.datasets import dataset_facts
    >>> dataset_facts("cityscapes").num_classes, dataset_facts("cityscapes").image_size
    (35, (256, 512))
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

#: The official decoder's block names, in order (the first at the latent size).
OFFICIAL_BLOCK_NAMES = ("head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3")


@dataclasses.dataclass(frozen=True)
class FolderLayout:
    """Where a dataset folder keeps a split's files and how they pair.

    Attributes:
        splits: accepted split name -> the split's folder name.
        image_dir: the images' folder under the root, `{split}` standing for the split folder.
        label_dir: the label maps' folder (and instance maps', when `instance_suffix` is set).
        image_suffixes: the images' file endings (the first one is the usual one).
        label_suffix: the label maps' file ending.
        instance_suffix: the instance maps' file ending, or None (no instance maps).
        recursive: files lie in sub-folders of `image_dir` / `label_dir` (Cityscapes' city
            folders) and pair by their path relative to it minus the ending; else they pair by
            file stem, and only the ending's suffix (case-insensitive) is matched.
        description: the layout in one line, for error messages.
    """

    splits: MappingProxyType
    image_dir: str
    label_dir: str
    image_suffixes: tuple[str, ...]
    label_suffix: str
    instance_suffix: str | None
    recursive: bool
    description: str


@dataclasses.dataclass(frozen=True)
class OfficialDecoder:
    """The official decoder of a dataset, block by block (`GroupDecreasingSchedule.official`).

    Attributes:
        widths: each block's output channels as a multiple of `ngf` (so `ngf` may change).
        class_width: when set, the input convolution and the first block are `class_width * C`
            wide instead of `widths[0] * ngf` (ADE20K's official head).
        input_groups: groups of the input convolution.
        groups: each block's convolution groups.
        norm_hidden: each block's CGNorm hidden width.
        norm_shared_groups: each block's CGNorm shared (segmap) convolution groups.
        norm_groups: each block's CGNorm gamma/beta convolution groups.
    """

    widths: tuple[int, ...]
    class_width: int | None
    input_groups: int
    groups: tuple[int, ...]
    norm_hidden: tuple[int, ...]
    norm_shared_groups: tuple[int, ...]
    norm_groups: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class DatasetFacts:
    """Every per-dataset fact the package uses.

    Attributes:
        name: the dataset's name ("deepfashion", "cityscapes", "ade20k").
        num_classes: C, the model's label channels (ADE20K: 150 classes and "other").
        image_size: (height, width) of the official network.
        ngf: the official decoder's base width.
        encoder_channels: the official encoder's width (ndf).
        latent_size: (height, width) of the latent code.
        instance_edges: the official network conditions on instance edges, and the dataset
            ships instance maps.
        shift_other: the label convention moves annotation value 0 ("other") to the last
            class and every other value k to k - 1 (ADE20K); else the values are the classes
            0..C-1.
        label_note: what the annotation files hold, for error messages.
        layout: the dataset folder's layout.
        decoder: the official decoder.
    """

    name: str
    num_classes: int
    image_size: tuple[int, int]
    ngf: int
    encoder_channels: int
    latent_size: tuple[int, int]
    instance_edges: bool
    shift_other: bool
    label_note: str
    layout: FolderLayout
    decoder: OfficialDecoder


#: The endings of common image files (an image folder may hold any of them).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")

_ROWS = (
    DatasetFacts(
        name="deepfashion",
        num_classes=8,
        image_size=(256, 256),
        ngf=160,
        encoder_channels=256,
        latent_size=(4, 4),
        instance_edges=False,
        shift_other=False,
        label_note="the official DeepFashion label maps hold the 8 classes 0..7",
        layout=FolderLayout(
            splits=MappingProxyType({"train": "train", "test": "test"}),
            image_dir="{split}",
            label_dir="cihp_{split}_mask",
            image_suffixes=IMAGE_SUFFIXES,
            label_suffix=".png",
            instance_suffix=None,
            recursive=False,
            description="ROOT/{train,test}/*.jpg and ROOT/cihp_{train,test}_mask/*.png",
        ),
        decoder=OfficialDecoder(
            widths=(16, 16, 16, 8, 4, 2, 1),
            class_width=None,
            input_groups=8,
            groups=(8, 8, 4, 4, 2, 2, 1),
            norm_hidden=(128,) * 7,
            norm_shared_groups=(8, 8, 4, 4, 2, 2, 1),
            norm_groups=(8, 8, 4, 4, 2, 2, 1),
        ),
    ),
    DatasetFacts(
        name="cityscapes",
        num_classes=35,
        image_size=(256, 512),
        ngf=280,
        encoder_channels=350,
        latent_size=(4, 8),
        instance_edges=True,
        shift_other=False,
        label_note=(
            "expected *_gtFine_labelIds.png ids 0..33 (label_nc=35); 255 suggests a trainIds "
            "or colour file"
        ),
        layout=FolderLayout(
            splits=MappingProxyType({"train": "train", "val": "val"}),
            image_dir="leftImg8bit/{split}",
            label_dir="gtFine/{split}",
            image_suffixes=("_leftImg8bit.png",),
            label_suffix="_gtFine_labelIds.png",
            instance_suffix="_gtFine_instanceIds.png",
            recursive=True,
            description=(
                "ROOT/leftImg8bit/{train,val}/CITY/*_leftImg8bit.png and "
                "ROOT/gtFine/{train,val}/CITY/*_gtFine_labelIds.png, *_gtFine_instanceIds.png"
            ),
        ),
        decoder=OfficialDecoder(
            widths=(16, 16, 16, 8, 4, 2, 1),
            class_width=None,
            input_groups=35,
            groups=(35, 35, 20, 14, 10, 4, 1),
            norm_hidden=(1225, 1225, 700, 490, 350, 140, 35),  # C x the block's groups
            norm_shared_groups=(35,) * 7,
            norm_groups=(35,) * 7,
        ),
    ),
    DatasetFacts(
        name="ade20k",
        num_classes=151,
        image_size=(256, 256),
        ngf=64,
        encoder_channels=604,
        latent_size=(4, 4),
        instance_edges=False,
        shift_other=True,
        label_note="ADEChallengeData2016 annotations hold 0 (other) and the classes 1..150",
        layout=FolderLayout(
            splits=MappingProxyType(
                {
                    "training": "training",
                    "train": "training",
                    "validation": "validation",
                    "val": "validation",
                }
            ),
            image_dir="images/{split}",
            label_dir="annotations/{split}",
            image_suffixes=(".jpg", ".jpeg"),
            label_suffix=".png",
            instance_suffix=None,
            recursive=False,
            description=(
                "ROOT/images/{training,validation}/*.jpg and "
                "ROOT/annotations/{training,validation}/*.png"
            ),
        ),
        decoder=OfficialDecoder(
            widths=(16, 32, 16, 16, 8, 4, 2),
            class_width=16,
            input_groups=151,
            groups=(151, 16, 16, 8, 4, 2, 1),
            # 2C where the groups divide C, else C x the groups
            norm_hidden=(302, 2416, 2416, 1208, 604, 302, 302),
            norm_shared_groups=(151,) * 7,
            norm_groups=(151, 16, 16, 8, 4, 2, 1),
        ),
    ),
)

#: The table: dataset name -> its facts, in the paper's order.
DATASETS: MappingProxyType = MappingProxyType({row.name: row for row in _ROWS})


def dataset_facts(name: str) -> DatasetFacts:
    """The facts of dataset `name`.

    Raises:
        ValueError: `name` is not in the table; the message lists the datasets.
    """
    if name not in DATASETS:
        raise ValueError(
            f"Unknown dataset {name!r}: `dataset` must be one of {tuple(DATASETS)}; received "
            f"dataset={name!r}"
        )
    return DATASETS[name]


def datasets_with_instances() -> tuple[str, ...]:
    """The datasets that ship instance maps (and whose official networks use them)."""
    return tuple(name for name, row in DATASETS.items() if row.instance_edges)
