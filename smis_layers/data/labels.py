"""Label conventions: how a dataset's annotation files map to a model's class indices, and the
one resize policy of the training loader that every reader of images and label maps shares.

A preset records the convention of the data it was trained on (metadata.json's
`label_convention`, written by `smis train` and by the official converter; absent means
"identity"), and every reader of label-map files applies it: the folder loader, `load_labels`
(and through it `smis sample`, `smis encode` and the other application commands) and the demo
page's reference label maps.

| convention | annotation values | model class |
|---|---|---|
| identity | 0..C-1 | the same value |
| deepfashion | 0..7 (the 8 CIHP-merged classes) | the same value |
| cityscapes | `*_gtFine_labelIds.png` ids 0..34 | the same value |
| ade20k | 0 ("other") and the classes 1..150 | k -> k - 1, 0 -> 150 (the official loader's order) |
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from smis_layers.data.datasets import DATASETS


@dataclasses.dataclass(frozen=True)
class LabelConvention:
    """How one dataset's annotation values become model classes.

    Attributes:
        classes: the model's class count, or None (identity: any).
        raw_max: the largest value allowed in the annotation files, or None (identity).
        shift_other: ADE20K's convention: value 0 ("other") moves to the last class and every
            other value k to k - 1.
        note: what the files hold, for error messages.
    """

    classes: int | None
    raw_max: int | None
    shift_other: bool
    note: str


#: The conventions by name: identity, and one per dataset of the table
#: (`smis_layers.data.datasets`), whose annotation values are 0..C-1 before any shift.
LABEL_CONVENTIONS = {
    "identity": LabelConvention(None, None, False, "label values are the model's classes"),
    **{
        name: LabelConvention(
            facts.num_classes, facts.num_classes - 1, facts.shift_other, facts.label_note
        )
        for name, facts in DATASETS.items()
    },
}
DEFAULT_LABEL_CONVENTION = "identity"


def label_convention(name: str | None) -> LabelConvention:
    """The convention called `name` (None: identity), or a ValueError listing the known ones."""
    name = DEFAULT_LABEL_CONVENTION if name is None else name
    if name not in LABEL_CONVENTIONS:
        raise ValueError(
            f"Unknown label convention {name!r}; expected one of {sorted(LABEL_CONVENTIONS)}"
        )
    return LABEL_CONVENTIONS[name]


def model_label_convention(model) -> str:
    """The label convention of a model: the one its preset recorded (`load_preset` attaches it
    as `model.label_convention`), else identity."""
    return getattr(model, "label_convention", None) or DEFAULT_LABEL_CONVENTION


def out_of_range(raw, name: str | None) -> np.ndarray:
    """The sorted distinct values of annotation `raw` that convention `name` does not allow
    (empty for identity, whose range is checked against the model later)."""
    convention = label_convention(name)
    raw = np.asarray(raw)
    if convention.raw_max is None:
        return np.zeros((0,), raw.dtype)
    return np.unique(raw[(raw < 0) | (raw > convention.raw_max)])


def to_model_labels(raw, name: str | None, source: str = "label map") -> np.ndarray:
    """An annotation's values as the model's class indices (int32) under convention `name`.

    Raises:
        ValueError: values outside the convention's range, naming `source`, the values and
            what the files should hold.
    """
    convention = label_convention(name)
    bad = out_of_range(raw, name)
    if bad.size:
        raise ValueError(
            f"{source}: label values {bad.tolist()[:20]} are outside [0, {convention.raw_max}] "
            f"for the {name} label convention ({convention.note})"
        )
    labels = np.asarray(raw).astype("int32")
    if convention.shift_other:
        labels = (labels + convention.classes - 1) % convention.classes
    return labels


def resize_image(image, size: Sequence[int]):
    """A PIL image resized to `size` (height, width) as the training loader resizes images:
    PIL's bicubic filter, the aspect ratio not kept, no crop (the official preprocessing)."""
    from PIL import Image

    height, width = (int(v) for v in size)
    if image.size == (width, height):
        return image
    return image.resize((width, height), Image.BICUBIC)


def resize_label_image(image, size: Sequence[int]):
    """A PIL label or instance map resized to `size` (height, width) as the training loader
    resizes them: PIL's nearest filter, no crop."""
    from PIL import Image

    height, width = (int(v) for v in size)
    if image.size == (width, height):
        return image
    return image.resize((width, height), Image.NEAREST)


def data_label_convention(data: str) -> str:
    """The label convention of a training data source: the dataset's own for a dataset of the
    table (`smis_layers.data.datasets`), identity for the synthetic benchmark (and anything
    else whose labels are already the model's classes)."""
    return data if data in LABEL_CONVENTIONS else DEFAULT_LABEL_CONVENTION
