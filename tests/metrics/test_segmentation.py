import numpy as np
import pytest

from smis_layers.metrics.segmentation import (
    SegmentationScores,
    confusion_matrix,
    scores_from_confusion,
    segmentation_scores,
)

# One 2x4 image, 4 classes; class 3 appears nowhere, 255 is "don't care".
Y_TRUE = np.array([[[0, 0, 1, 1], [2, 2, 255, 0]]])
Y_PRED = np.array([[[0, 1, 1, 1], [2, 0, 2, 0]]])
# Counted pixels (7): (0,0) (0,1) (1,1) (1,1) (2,2) (2,0) (0,0)
EXPECTED = np.array(
    [
        [2, 1, 0, 0],
        [0, 2, 0, 0],
        [1, 0, 1, 0],
        [0, 0, 0, 0],
    ]
)
# IoU: class 0 = 2 / (3 + 3 - 2) = 0.5; class 1 = 2 / (2 + 3 - 2) = 2/3; class 2 = 1 / (2 + 1 - 1)
# = 0.5; class 3 absent from both -> excluded.
MIOU = (0.5 + 2 / 3 + 0.5) / 3
PIXEL_ACCURACY = 5 / 7


def test_confusion_matrix_by_hand():
    np.testing.assert_array_equal(confusion_matrix(Y_TRUE, Y_PRED, 4, ignore_label=255), EXPECTED)


def test_scores_by_hand():
    scores = segmentation_scores(Y_TRUE, Y_PRED, 4, ignore_label=255)
    assert scores["miou"] == pytest.approx(MIOU)
    assert scores["pixel_accuracy"] == pytest.approx(PIXEL_ACCURACY)
    assert scores["mean_class_accuracy"] == pytest.approx((2 / 3 + 1 + 0.5) / 3)
    assert np.isnan(scores["iou"][3])


def test_ignored_pixel_would_count_without_ignore_label():
    y_true = np.where(Y_TRUE == 255, 3, Y_TRUE)  # the don't-care pixel becomes class 3
    matrix = confusion_matrix(y_true, Y_PRED, 4)
    assert matrix[3, 2] == 1 and matrix.sum() == 8
    # class 3 now has IoU 0 and is part of the mean
    assert segmentation_scores(y_true, Y_PRED, 4)["miou"] == pytest.approx(
        (0.5 + 2 / 3 + 1 / 3 + 0) / 4
    )


def test_predicted_only_class_counts_in_the_mean():
    matrix = np.array([[3, 1], [0, 0]])  # class 1 predicted once, never true
    assert scores_from_confusion(matrix)["miou"] == pytest.approx((3 / 4 + 0) / 2)


def test_streaming_metric_equals_batch_function_and_accepts_scores():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, (6, 8, 8))
    y_true[0, :2] = 255
    logits = rng.normal(size=(6, 8, 8, 5)).astype("float32")
    metric = SegmentationScores(5, ignore_label=255)
    metric.update_state(y_true[:4], logits[:4])
    metric.update_state(y_true[4:], logits[4:].argmax(-1))
    expected = segmentation_scores(y_true, logits, 5, ignore_label=255)
    result = {k: float(np.asarray(v)) for k, v in metric.result().items()}
    assert result["miou"] == pytest.approx(expected["miou"])
    assert result["pixel_accuracy"] == pytest.approx(expected["pixel_accuracy"])
    np.testing.assert_array_equal(
        metric.confusion_matrix(), confusion_matrix(y_true, logits, 5, 255)
    )
    metric.reset_state()
    assert metric.confusion_matrix().sum() == 0
    assert np.isnan(float(np.asarray(metric.result()["miou"])))


def test_streaming_metric_by_hand_and_sample_weight():
    metric = SegmentationScores(4, ignore_label=255)
    metric.update_state(Y_TRUE, Y_PRED)
    np.testing.assert_array_equal(metric.confusion_matrix(), EXPECTED)
    assert float(np.asarray(metric.result()["miou"])) == pytest.approx(MIOU)
    weighted = SegmentationScores(4)
    weighted.update_state(Y_TRUE[..., None], Y_PRED, sample_weight=(Y_TRUE != 255) * 2.0)
    np.testing.assert_array_equal(weighted.confusion_matrix(), 2 * EXPECTED)


def test_config_round_trip():
    metric = SegmentationScores(7, ignore_label=0, name="seg")
    clone = SegmentationScores.from_config(metric.get_config())
    assert (clone.num_classes, clone.ignore_label, clone.name) == (7, 0, "seg")


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="`num_classes` must be a positive integer"):
        SegmentationScores(0)
    with pytest.raises(ValueError, match="`ignore_label` must be an int or None"):
        SegmentationScores(3, ignore_label="x")
    with pytest.raises(ValueError, match=r"same shape; received y_true of shape \(1, 2, 4\)"):
        confusion_matrix(Y_TRUE, Y_PRED[:, :1], 4)
    with pytest.raises(ValueError, match="`y_true` must be label maps"):
        SegmentationScores(4).update_state(Y_TRUE, Y_PRED[:, :1])
