import keras
import numpy as np
import pytest

from smis_layers import ClassMaskSplit
from tests.helpers import assert_fits, assert_save_load_round_trip, one_hot_segmap, to_numpy

C = 4


def _inputs(batch=2, height=12, width=10, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (batch, height, width, 3)).astype("float32")
    labels = rng.integers(0, C - 1, (batch, height, width))  # class C-1 absent
    labels[0, 2:5, 3:9] = 1
    return images, np.eye(C, dtype="float32")[labels]


def _official_crop_resize(images, segmap, box_source):
    """Per-sample, per-class loop following the official code's crop + nearest resize."""
    batch, height, width, classes = segmap.shape
    out = np.zeros((batch, height, width, 3 * classes), "float32")
    for b in range(batch):
        for c in range(classes):
            masked = images[b] * segmap[b, :, :, c : c + 1]
            if box_source == "mask":
                occupied = segmap[b, :, :, c] > 0
                rows, cols = np.nonzero(occupied.any(1))[0], np.nonzero(occupied.any(0))[0]
            else:  # row and column sums of the RGB-summed masked image, as the official code
                summed = masked.sum(-1)
                rows, cols = np.nonzero(summed.sum(1))[0], np.nonzero(summed.sum(0))[0]
            if cols.size == 0:
                out[b, :, :, 3 * c : 3 * c + 3] = masked  # kept uncropped
                continue
            crop = masked[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
            r = np.floor(np.arange(height, dtype="float32") * np.float32(crop.shape[0] / height))
            q = np.floor(np.arange(width, dtype="float32") * np.float32(crop.shape[1] / width))
            out[b, :, :, 3 * c : 3 * c + 3] = crop[r.astype(int)][:, q.astype(int)]
    return out


def test_mask_mode_is_the_papers_equation():
    images, segmap = _inputs()
    out = to_numpy(ClassMaskSplit(C)(images, segmap))
    assert out.shape == (2, 12, 10, 3 * C)
    for c in range(C):
        np.testing.assert_array_equal(out[..., 3 * c : 3 * c + 3], images * segmap[..., c : c + 1])


@pytest.mark.parametrize("box_source", ["mask", "masked_image"])
def test_crop_resize_matches_the_official_loop(box_source):
    images, segmap = _inputs()
    # Class 1's top row (row 2, columns 3..8) sums to 0: the masked-image box drops it.
    images[0, 2, 3:9] = [[0.5, -0.25, -0.25]] * 6
    out = to_numpy(ClassMaskSplit(C, mode="crop_resize", box_source=box_source)(images, segmap))
    np.testing.assert_allclose(out, _official_crop_resize(images, segmap, box_source), atol=0)
    np.testing.assert_array_equal(out[..., 3 * (C - 1) :], 0.0)  # absent class stays zero


def test_crop_resize_uses_pytorch_nearest_indices():
    torch = pytest.importorskip("torch")
    images, segmap = _inputs(batch=1, height=16, width=16)
    labels = np.zeros((1, 16, 16), int)
    labels[0, 1:12, 5:8] = 1  # 11 x 3 box, resized to 16 x 16
    segmap = np.eye(C, dtype="float32")[labels]
    out = to_numpy(ClassMaskSplit(C, mode="crop_resize")(images, segmap))
    masked = torch.from_numpy((images * segmap[..., 1:2])[0].transpose(2, 0, 1))[None]
    expected = torch.nn.functional.interpolate(masked[:, :, 1:12, 5:8], size=[16, 16])
    np.testing.assert_array_equal(out[0, :, :, 3:6], expected[0].numpy().transpose(1, 2, 0))


@pytest.mark.parametrize("mode", ["mask", "crop_resize"])
def test_class_isolation(mode):
    images, segmap = _inputs()
    layer = ClassMaskSplit(C, mode=mode)
    base = to_numpy(layer(images, segmap))
    for c in range(C - 1):
        changed = images + np.where(segmap[..., c : c + 1] > 0, 0.3, 0.0).astype("float32")
        out = to_numpy(layer(changed, segmap))
        diff = np.abs(out - base).reshape(*out.shape[:3], C, 3).max(axis=(0, 1, 2, 4))
        assert diff[c] > 0.1
        assert np.all(np.delete(diff, c) == 0.0)


def test_save_load_fit_and_config(tmp_path):
    images_in, segmap_in = keras.Input((12, 10, 3)), keras.Input((12, 10, C))
    split = ClassMaskSplit(C, mode="crop_resize", name="split")(images_in, segmap_in)
    model = keras.Model([images_in, segmap_in], keras.layers.Dense(2)(split))
    images, segmap = _inputs()
    restored = assert_save_load_round_trip(model, [images, segmap], tmp_path)
    assert restored.get_layer("split").get_config() == model.get_layer("split").get_config()
    assert_fits(model, [images, segmap], np.zeros((2, 12, 10, 2), "float32"))
    layer = ClassMaskSplit.from_config(model.get_layer("split").get_config())
    assert (layer.num_classes, layer.mode) == (C, "crop_resize")
    assert layer.compute_output_shape((None, 12, 10, 3), (None, 12, 10, C)) == (None, 12, 10, 12)


def test_bad_inputs():
    images, segmap = _inputs()
    with pytest.raises(ValueError, match=r"`segmap` must have 5 channels .*4 channels"):
        ClassMaskSplit(5)(images, segmap)
    with pytest.raises(ValueError, match=r"`images` must have 3 channels"):
        ClassMaskSplit(C)(images[..., :2], segmap)
    with pytest.raises(ValueError, match="same height and width"):
        ClassMaskSplit(C)(images, one_hot_segmap(2, 8, 10, C))
    with pytest.raises(ValueError, match="`images` must have rank 4"):
        ClassMaskSplit(C)(images[0], segmap)
    with pytest.raises(ValueError, match="`mode` must be one of"):
        ClassMaskSplit(C, mode="crop")


def test_box_sources_differ_where_a_boundary_row_cancels():
    images, _ = _inputs()
    labels = np.zeros((2, 12, 10), int)
    labels[:, 2:5, 3:9] = 1
    segmap = np.eye(C, dtype="float32")[labels]
    images[0, 2, 3:9] = [[0.5, -0.25, -0.25]] * 6  # class 1's top row sums to 0 in sample 0
    by_mask = to_numpy(ClassMaskSplit(C, mode="crop_resize")(images, segmap))
    by_image = to_numpy(
        ClassMaskSplit(C, mode="crop_resize", box_source="masked_image")(images, segmap)
    )
    assert not np.array_equal(by_mask[0, ..., 3:6], by_image[0, ..., 3:6])
    np.testing.assert_array_equal(by_mask[1], by_image[1])
    for box_source, out in (("mask", by_mask), ("masked_image", by_image)):
        np.testing.assert_array_equal(out, _official_crop_resize(images, segmap, box_source))
