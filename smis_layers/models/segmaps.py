"""The semantic inputs of the models: label maps (`labels`, (B, H, W) integers) and their
one-hot `segmap` (B, H, W, C), the check of label values, and the Cityscapes instance-edge map
paired with the segmap into the decoder's 2C-channel `condition`."""

from __future__ import annotations

import numpy as np
from keras import ops

from smis_layers.utils.deprecation import renamed_keywords


def _is_concrete(x) -> bool:
    try:
        np.asarray(ops.convert_to_numpy(x))
    except Exception:  # symbolic tensors inside a traced function
        return False
    return True


@renamed_keywords(masks="labels")
def prepare_segmap(labels, num_classes: int, dtype: str = "float32", name: str = "labels"):
    """Returns a one-hot (B, H, W, C) segmap from integer label maps (or a segmap).

    Accepted: label maps (B, H, W) or (B, H, W, 1) with values in [0, C), or a one-hot or soft
    segmap (B, H, W, C), returned cast. Concrete label maps are checked by `check_label_values`.
    """
    shape = tuple(labels.shape)
    if len(shape) == 4 and shape[-1] == num_classes and num_classes > 1:
        return ops.cast(labels, dtype)
    if len(shape) == 4 and shape[-1] == 1:
        labels = ops.squeeze(labels, -1)
    elif len(shape) != 3:
        raise ValueError(
            f"`{name}` must be one-hot (batch, height, width, {num_classes}) or a label map "
            f"(batch, height, width) / (batch, height, width, 1); received shape {shape}"
        )
    if _is_concrete(labels):
        check_label_values(name, np.asarray(ops.convert_to_numpy(labels)), num_classes)
    return ops.one_hot(ops.cast(labels, "int32"), num_classes, dtype=dtype)


#: Label values that usually mean "don't care / ignore" in segmentation datasets.
DONT_CARE_LABELS = (255, -1)


def check_label_values(name: str, labels: np.ndarray, num_classes: int) -> None:
    """Label maps must hold integers in [0, num_classes).

    Args:
        name: the argument's name, for the error.
        labels: the label maps (any shape).
        num_classes: C.

    Raises:
        ValueError: naming the non-integer or out-of-range values (with a hint for the
            don't-care labels 255 and -1).
    """
    labels = np.asarray(labels)
    integral = np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_
    if not integral and np.any(labels != np.round(labels)):
        raise ValueError(
            f"`{name}` label maps must hold integer class indices; received non-integer "
            f"values of dtype {labels.dtype}"
        )
    if labels.size == 0:
        return
    low, high = labels.min(), labels.max()
    if low >= 0 and high < num_classes:
        return
    values = labels.astype("int64")
    bad = np.unique(values[(values < 0) | (values >= num_classes)])
    hint = ""
    if any(v in DONT_CARE_LABELS for v in bad.tolist()):
        hint = (
            " A don't-care/ignore label (255 or -1) has no code in GroupDNet: map it to one of "
            "the classes first (the dataset loaders do: ADE20K's 'other' becomes the last class)."
        )
    shown = bad.tolist()[:10]
    raise ValueError(
        f"`{name}` label values must lie in [0, {num_classes}) for this {num_classes}-class "
        f"model; received values in [{values.min()}, {values.max()}] (outside the range: "
        f"{shown}{' ...' if len(bad) > 10 else ''}).{hint}"
    )


def instance_edge_map(instance_ids, dtype: str = "float32"):
    """1 where a pixel's instance id differs from a 4-neighbour's, else 0: (B, H, W, 1).

    Follows pix2pixHD/SPADE's `get_edges`: a pixel is an edge if its left/right or top/bottom
    neighbour has another id (both pixels of the pair are marked).
    """
    ids = instance_ids
    if len(ids.shape) == 4:
        ids = ops.squeeze(ids, -1)
    ids = ops.cast(ids, "int32")
    horizontal = ops.not_equal(ids[:, :, 1:], ids[:, :, :-1])
    vertical = ops.not_equal(ids[:, 1:, :], ids[:, :-1, :])
    false_col = ops.zeros_like(ids[:, :, :1], dtype="bool")
    false_row = ops.zeros_like(ids[:, :1, :], dtype="bool")
    edges = ops.logical_or(
        ops.logical_or(
            ops.concatenate([horizontal, false_col], axis=2),
            ops.concatenate([false_col, horizontal], axis=2),
        ),
        ops.logical_or(
            ops.concatenate([vertical, false_row], axis=1),
            ops.concatenate([false_row, vertical], axis=1),
        ),
    )
    return ops.expand_dims(ops.cast(edges, dtype), -1)


def pair_with_instance_edges(segmap, edges):
    """(B, H, W, C) + (B, H, W, 1) -> (B, H, W, 2C) ordered [class 0, edge, class 1, edge, ...].

    The decoder's `condition` on Cityscapes: the official decoder pairs every class's segmap
    channel with the instance-edge map so that CGNorm's shared convolution (groups=C) sees
    (class c, edges) together.
    """
    num_classes = segmap.shape[-1]
    edges = ops.broadcast_to(edges, ops.shape(segmap))
    paired = ops.stack([segmap, ops.cast(edges, segmap.dtype)], axis=-1)
    shape = ops.shape(segmap)
    return ops.reshape(paired, (shape[0], shape[1], shape[2], 2 * num_classes))
