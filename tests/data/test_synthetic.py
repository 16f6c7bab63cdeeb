import numpy as np
import pytest
from PIL import Image

from smis_layers.data import (
    SyntheticShapes,
    export_deepfashion_layout,
    synthetic_batches,
    synthetic_tf_dataset,
)


def test_deterministic_and_independent_of_batching():
    dataset = SyntheticShapes(image_size=64, seed=3)
    a = dataset.batch(np.arange(6))
    b = dataset.batch([4, 5])
    np.testing.assert_array_equal(a["images"][4:], b["images"])
    np.testing.assert_array_equal(a["masks"][4:], b["masks"])
    other = SyntheticShapes(image_size=64, seed=4).batch([4, 5])
    assert not np.array_equal(other["masks"], b["masks"])


@pytest.mark.parametrize("size", [64, 128, 256])
def test_sizes_ranges_and_classes(size):
    batch = SyntheticShapes(image_size=size, seed=0).batch(np.arange(8))
    assert batch["images"].shape == (8, size, size, 3) and batch["images"].dtype == np.float32
    assert batch["images"].min() >= -1 and batch["images"].max() <= 1
    assert batch["masks"].shape == (8, size, size) and batch["masks"].max() < 8
    assert len(np.unique(batch["masks"])) >= 5  # background and several shape classes


def test_appearance_is_multimodal_and_exactly_per_class():
    dataset = SyntheticShapes(image_size=64, seed=1)
    batch = dataset.batch(np.arange(4))
    assert dataset.num_modes == 15
    # Changing class c's appearance factors changes exactly class c's pixels.
    for c in np.unique(batch["masks"]):
        palette = batch["palette"].copy()
        palette[:, c] = (palette[:, c] + 1) % dataset.num_palettes
        texture = batch["texture"].copy()
        texture[:, c] = 0  # flat: pixels differ wherever the palette's colour changes
        images = dataset.render(batch["masks"], palette, texture, batch["params"])
        changed = np.abs(images - batch["images"]).max(-1) > 0
        assert not changed[batch["masks"] != c].any()
        assert changed[batch["masks"] == c].mean() > 0.5
    # Different samples of the same class use different modes.
    modes = {
        (p, t)
        for p, t in zip(
            dataset.batch(np.arange(64))["palette"][:, 1],
            dataset.batch(np.arange(64))["texture"][:, 1],
            strict=True,
        )
    }
    assert len(modes) > 8


def test_tf_dataset_resumes_at_a_sample_index():
    dataset = SyntheticShapes(image_size=64, seed=2)
    first = next(iter(synthetic_tf_dataset(dataset, 4, start=8)))
    np.testing.assert_array_equal(first["images"].numpy(), dataset.batch(range(8, 12))["images"])
    finite = list(synthetic_tf_dataset(dataset, 4, num_samples=10, factors=True))
    assert [b["images"].shape[0] for b in finite] == [4, 4, 2]
    assert set(finite[0]) == {"images", "masks", "palette", "texture", "params"}


def test_numpy_batches_are_the_tf_datasets_samples_in_order():
    data = SyntheticShapes(64, seed=2)
    tf_batches = list(synthetic_tf_dataset(data, 3, start=5, num_samples=7).as_numpy_iterator())
    for prefetch, workers in ((4, 2), (0, 1)):
        batches = list(synthetic_batches(data, 3, 5, 7, prefetch=prefetch, workers=workers))
        assert [len(b["images"]) for b in batches] == [3, 3, 1]
        for ours, theirs in zip(batches, tf_batches, strict=True):
            assert set(ours) == {"images", "masks"}
            np.testing.assert_array_equal(ours["images"], theirs["images"])
            np.testing.assert_array_equal(ours["masks"], theirs["masks"])
    endless = synthetic_batches(data, 2, start=4)
    for first in (4, 6, 8):
        np.testing.assert_array_equal(
            next(endless)["masks"], data.batch([first, first + 1])["masks"]
        )
    with pytest.raises(ValueError, match="workers"):
        synthetic_batches(data, 2, workers=0)  # checked when called, not when first iterated


def test_export_deepfashion_layout(tmp_path):
    dataset = SyntheticShapes(image_size=64, seed=0)
    export_deepfashion_layout(dataset, tmp_path, num_train=3, num_test=2)
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == [
        "000000.jpg",
        "000001.jpg",
        "000002.jpg",
    ]
    assert len(list((tmp_path / "cihp_test_mask").iterdir())) == 2
    mask = np.array(Image.open(tmp_path / "cihp_train_mask" / "000001.png"))
    np.testing.assert_array_equal(mask, dataset.batch([1])["masks"][0])
    with pytest.raises(FileExistsError, match="not empty"):
        export_deepfashion_layout(dataset, tmp_path, num_train=1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="`image_size` must be one of"):
        SyntheticShapes(image_size=100)
    with pytest.raises(ValueError, match=r"`num_classes` must be in \[2, 16\]"):
        SyntheticShapes(num_classes=40)
