"""mIoU and pixel accuracy of label maps: a streaming confusion matrix and batch functions."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from smis_layers.utils.validation import require_positive_int


def _check_ignore_label(ignore_label, num_classes: int):
    if ignore_label is None:
        return None
    if isinstance(ignore_label, bool) or not isinstance(ignore_label, (int, np.integer)):
        raise ValueError(f"`ignore_label` must be an int or None; received {ignore_label!r}")
    return int(ignore_label)


def _labels_of(y_pred, num_classes: int, name: str):
    """Label maps (B, H, W) from label maps, or from (B, H, W, C) scores (argmax)."""
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == 4 and y_pred.shape[-1] == num_classes:
        return np.argmax(y_pred, axis=-1)
    if y_pred.ndim == 4 and y_pred.shape[-1] == 1:
        return y_pred[..., 0]
    if y_pred.ndim != 3:
        raise ValueError(
            f"`{name}` must be label maps (B, H, W) or scores (B, H, W, {num_classes}); received "
            f"shape {y_pred.shape}"
        )
    return y_pred


def confusion_matrix(
    y_true, y_pred, num_classes: int, ignore_label: int | None = None
) -> np.ndarray:
    """Confusion matrix of label maps: entry (i, j) counts pixels of true class i predicted j.

    Args:
        y_true: true labels (B, H, W) (or (B, H, W, 1)); pixels equal to `ignore_label` and
            pixels outside [0, num_classes) are not counted.
        y_pred: predicted labels (B, H, W), or per-class scores (B, H, W, num_classes) whose
            argmax is the prediction.
        num_classes: C.
        ignore_label: the "don't care" label of `y_true`, or None.

    Returns:
        (C, C) int64 array.

    Examples:
        >>> confusion_matrix(np.array([[[0, 1, 1]]]), np.array([[[0, 1, 0]]]), 2)
        array([[1, 0],
               [1, 1]])
    """
    num_classes = require_positive_int("num_classes", num_classes)
    ignore_label = _check_ignore_label(ignore_label, num_classes)
    y_true = _labels_of(y_true, num_classes, "y_true").astype("int64")
    y_pred = _labels_of(y_pred, num_classes, "y_pred").astype("int64")
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"`y_true` and `y_pred` must be label maps of the same shape; received y_true of "
            f"shape {y_true.shape} and y_pred of shape {y_pred.shape}"
        )
    valid = (y_true >= 0) & (y_true < num_classes)
    if ignore_label is not None:
        valid &= y_true != ignore_label
    pred = np.clip(y_pred[valid], 0, num_classes - 1)
    index = y_true[valid] * num_classes + pred
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def scores_from_confusion(matrix) -> dict[str, float | np.ndarray]:
    """mIoU, pixel accuracy, mean class accuracy and per-class IoU of a confusion matrix.

    IoU_c = TP_c / (TP_c + FP_c + FN_c). A class absent from both the targets and the
    predictions (TP + FP + FN = 0) has no IoU (NaN in `iou`) and is excluded from the mean;
    mean class accuracy averages TP_c / (TP_c + FN_c) over the classes present in the targets.

    Returns:
        dict with "miou", "pixel_accuracy", "mean_class_accuracy" (floats, NaN when nothing was
        counted) and "iou" (C,) array.
    """
    matrix = np.asarray(matrix, dtype="float64")
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"`matrix` must be a square (C, C) array; received shape {matrix.shape}")
    tp = np.diag(matrix)
    true_count, pred_count = matrix.sum(1), matrix.sum(0)
    union = true_count + pred_count - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        class_accuracy = np.where(true_count > 0, tp / true_count, np.nan)
    total = matrix.sum()
    return {
        "miou": float(np.nanmean(iou)) if np.any(union > 0) else float("nan"),
        "pixel_accuracy": float(tp.sum() / total) if total > 0 else float("nan"),
        "mean_class_accuracy": (
            float(np.nanmean(class_accuracy)) if np.any(true_count > 0) else float("nan")
        ),
        "iou": iou,
    }


def segmentation_scores(
    y_true, y_pred, num_classes: int, ignore_label: int | None = None
) -> dict[str, float | np.ndarray]:
    """mIoU and pixel accuracy of a batch of label maps (see `scores_from_confusion`).

    Examples:
        >>> scores = segmentation_scores(labels, segmenter.predict_labels(images), num_classes=8)
        >>> scores["miou"], scores["pixel_accuracy"]
    """
    return scores_from_confusion(confusion_matrix(y_true, y_pred, num_classes, ignore_label))


@keras.saving.register_keras_serializable(package="smis_layers")
class SegmentationScores(keras.metrics.Metric):
    """Streaming mIoU and pixel accuracy (accumulated confusion matrix).

    `update_state(y_true, y_pred)` takes true label maps (B, H, W) and predicted label maps
    (B, H, W) or per-class scores (B, H, W, C) (their argmax is the prediction). `result()`
    returns a dict: "miou" (mean IoU over the classes present in the targets or the predictions;
    classes absent from both are excluded), "pixel_accuracy" and "mean_class_accuracy".

    Args:
        num_classes: C.
        ignore_label: "don't care" label of the targets, not counted (None: count every pixel).
            Target labels outside [0, C) are never counted.
        name / dtype: `keras.metrics.Metric` arguments.

    Examples:
        >>> metric = SegmentationScores(num_classes=8, ignore_label=255)
        >>> metric.update_state(labels, segmenter(images))
        >>> metric.result()["miou"]

    Reference:
        Long, Shelhamer, Darrell, "Fully Convolutional Networks for Semantic Segmentation",
        CVPR 2015 (the mean IU and pixel accuracy definitions).
    """

    def __init__(
        self,
        num_classes: int,
        ignore_label: int | None = None,
        name: str = "segmentation_scores",
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = require_positive_int("num_classes", num_classes)
        self.ignore_label = _check_ignore_label(ignore_label, num_classes)
        self.confusion = self.add_variable(
            shape=(num_classes, num_classes),
            initializer="zeros",
            dtype="float64",
            name="confusion",
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch. `sample_weight` (broadcastable to y_true) weights the pixels."""
        c = self.num_classes
        y_true = ops.convert_to_tensor(y_true)
        y_pred = ops.convert_to_tensor(y_pred)
        if len(y_true.shape) == 4 and y_true.shape[-1] == 1:
            y_true = y_true[..., 0]
        if len(y_pred.shape) == 4:
            y_pred = ops.argmax(y_pred, axis=-1) if y_pred.shape[-1] == c else y_pred[..., 0]
        if len(y_true.shape) != 3 or tuple(y_true.shape) != tuple(y_pred.shape):
            raise ValueError(
                f"`y_true` must be label maps (B, H, W) and `y_pred` label maps of the same "
                f"shape or scores (B, H, W, {c}); received y_true of shape {tuple(y_true.shape)} "
                f"and y_pred of shape {tuple(y_pred.shape)}"
            )
        weights = ops.ones(ops.shape(y_true), dtype="float64")
        if sample_weight is not None:
            weights = weights * ops.cast(ops.convert_to_tensor(sample_weight), "float64")
        weights = ops.reshape(weights, (-1,))
        y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        y_pred = ops.clip(ops.reshape(ops.cast(y_pred, "int32"), (-1,)), 0, c - 1)
        valid = ops.logical_and(y_true >= 0, y_true < c)
        if self.ignore_label is not None:
            valid = ops.logical_and(valid, y_true != self.ignore_label)
        weights = ops.where(valid, weights, ops.zeros_like(weights))
        index = ops.where(valid, y_true, ops.zeros_like(y_true)) * c + y_pred
        counts = ops.bincount(index, weights=weights, minlength=c * c)
        self.confusion.assign_add(ops.reshape(ops.cast(counts, "float64"), (c, c)))

    def result(self):
        c = self.confusion
        tp = ops.diagonal(c)
        true_count, pred_count = ops.sum(c, axis=1), ops.sum(c, axis=0)
        union = true_count + pred_count - tp
        present = ops.cast(union > 0, "float64")
        labelled = ops.cast(true_count > 0, "float64")
        iou = ops.divide_no_nan(tp, union)
        class_accuracy = ops.divide_no_nan(tp, true_count)
        nan = ops.convert_to_tensor(float("nan"), dtype="float64")
        total = ops.sum(c)
        present_count, labelled_count = ops.sum(present), ops.sum(labelled)
        return {
            "miou": ops.where(present_count > 0, ops.sum(iou * present) / present_count, nan),
            "pixel_accuracy": ops.where(total > 0, ops.sum(tp) / total, nan),
            "mean_class_accuracy": ops.where(
                labelled_count > 0, ops.sum(class_accuracy * labelled) / labelled_count, nan
            ),
        }

    def confusion_matrix(self) -> np.ndarray:
        """The accumulated (C, C) confusion matrix (rows: true class, columns: prediction)."""
        return np.asarray(ops.convert_to_numpy(self.confusion))

    def per_class_iou(self) -> np.ndarray:
        """(C,) IoU per class, NaN for classes absent from targets and predictions."""
        return scores_from_confusion(self.confusion_matrix())["iou"]

    def reset_state(self):
        self.confusion.assign(ops.zeros_like(self.confusion))

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "ignore_label": self.ignore_label,
        }
