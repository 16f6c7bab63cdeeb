"""The real-dataset folder loaders, on small folder trees written by the tests."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from smis_layers.data import (
    DATASET_CLASSES,
    FolderDatasetError,
    SyntheticShapes,
    export_deepfashion_layout,
    folder_dataset,
    list_samples,
)
from tests.helpers import BACKEND

tf = pytest.importorskip("tensorflow")

# Far-apart colours: a pixel's colour names its label, even after JPEG compression.
PALETTE = np.array(
    [[230, 25, 25], [25, 230, 25], [25, 25, 230], [230, 230, 25], [25, 230, 230], [230, 25, 230]],
    dtype="uint8",
)
CITY = "aachen"


def stripes(index: int, labels, height: int = 32, width: int = 32) -> np.ndarray:
    """An asymmetric label map: 8-pixel vertical stripes whose order depends on `index`."""
    order = np.roll(np.asarray(labels), index)
    columns = order[(np.arange(width) // 8) % len(order)]
    mask = np.tile(columns, (height, 1))
    # A corner patch, as wide as the index, makes every map unique and breaks the flip symmetry.
    mask[: height // 4, : 2 + index] = order[-1]
    return mask.astype("uint8")


def paint(mask: np.ndarray, labels) -> np.ndarray:
    """RGB image whose colour encodes the label (PALETTE[position of the label in labels])."""
    lookup = np.zeros(256, dtype="int64")
    lookup[np.asarray(labels)] = np.arange(len(labels))
    return PALETTE[lookup[mask]]


def decode_colours(images: np.ndarray, labels) -> np.ndarray:
    """Labels back from [-1, 1] images painted by `paint` (nearest palette colour)."""
    pixels = (images + 1.0) * 127.5
    distance = np.linalg.norm(pixels[..., None, :] - PALETTE[None, None, : len(labels)], axis=-1)
    return np.asarray(labels)[distance.argmin(-1)]


def save_jpeg(array: np.ndarray, path) -> None:
    Image.fromarray(array).save(path, quality=95, subsampling=0)


def write_deepfashion(root, count: int = 6, split: str = "train", labels=(0, 3, 5, 7)) -> list:
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / f"cihp_{split}_mask").mkdir(parents=True, exist_ok=True)
    masks = []
    for i in range(count):
        mask = stripes(i, labels)
        save_jpeg(paint(mask, labels), root / split / f"{i:04d}.jpg")
        Image.fromarray(mask).save(root / f"cihp_{split}_mask" / f"{i:04d}.png")
        masks.append(mask)
    return masks


def cityscapes_stem(i: int) -> str:
    return f"{CITY}_{i:06d}_000019"


def write_cityscapes(root, count: int = 4, split: str = "train", height=16, width=32):
    labels = (7, 11, 26, 33)  # road, building, car (with instances), bicycle
    images = root / "leftImg8bit" / split / CITY
    gt = root / "gtFine" / split / CITY
    images.mkdir(parents=True, exist_ok=True)
    gt.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        mask = stripes(i, labels, height, width)
        instances = mask.astype("uint16")
        cars = mask == 26
        instances[cars] = 26000 + 1 + np.arange(width)[None].repeat(height, 0)[cars] // 8
        stem = cityscapes_stem(i)
        Image.fromarray(paint(mask, labels)).save(images / f"{stem}_leftImg8bit.png")
        Image.fromarray(mask).save(gt / f"{stem}_gtFine_labelIds.png")
        Image.fromarray(instances).save(gt / f"{stem}_gtFine_instanceIds.png")
        # Other gtFine files of the official layout are ignored.
        Image.fromarray(paint(mask, labels)).save(gt / f"{stem}_gtFine_color.png")
        (gt / f"{stem}_gtFine_polygons.json").write_text("{}")
    return labels


def write_ade20k(root, count: int = 3, split: str = "training"):
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "annotations" / split).mkdir(parents=True, exist_ok=True)
    labels = (0, 1, 150, 42)
    masks = []
    for i in range(count):
        mask = stripes(i, labels)
        save_jpeg(paint(mask, labels), root / "images" / split / f"ADE_train_{i:08d}.jpg")
        Image.fromarray(mask).save(root / "annotations" / split / f"ADE_train_{i:08d}.png")
        masks.append(mask)
    return labels, masks


def batches(dataset, count: int) -> list[dict]:
    return [{k: v.numpy() for k, v in b.items()} for b in dataset.take(count)]


def test_dataset_classes():
    assert DATASET_CLASSES == {"deepfashion": 8, "cityscapes": 35, "ade20k": 151}


def test_deepfashion_batches_and_flip_keeps_masks_aligned(tmp_path):
    labels = (0, 3, 5, 7)
    masks = write_deepfashion(tmp_path, count=6, labels=labels)
    dataset = folder_dataset("deepfashion", tmp_path, "train", 32, batch_size=4, flip=True, seed=3)
    flipped = unflipped = 0
    for batch in batches(dataset, 6):  # 24 samples, 4 epochs
        assert set(batch) == {"images", "masks"}
        assert batch["images"].shape == (4, 32, 32, 3) and batch["images"].dtype == np.float32
        assert batch["masks"].shape == (4, 32, 32) and batch["masks"].dtype == np.int32
        assert batch["images"].min() >= -1.0 and batch["images"].max() <= 1.0
        assert set(np.unique(batch["masks"])) <= set(labels)
        np.testing.assert_array_equal(decode_colours(batch["images"], labels), batch["masks"])
        for mask in batch["masks"]:
            unflipped += any(np.array_equal(mask, m) for m in masks)
            flipped += any(np.array_equal(mask, m[:, ::-1]) for m in masks)
    assert flipped + unflipped == 24 and flipped >= 4 and unflipped >= 4


def test_stream_is_deterministic_shuffled_per_epoch_and_resumable(tmp_path):
    masks = write_deepfashion(tmp_path, count=5)

    def stream(**kwargs):
        dataset = folder_dataset("deepfashion", tmp_path, "train", 32, batch_size=1, **kwargs)
        return [b["masks"][0] for b in batches(dataset, 10)]

    def file_order(samples):
        return [next(i for i, m in enumerate(masks) if np.array_equal(s, m)) for s in samples]

    a, b = stream(seed=7), stream(seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    order = file_order(a)
    assert sorted(order[:5]) == sorted(order[5:]) == list(range(5))  # every epoch: all files
    assert order[:5] != order[5:] or file_order(stream(seed=8)) != order
    assert file_order(stream(shuffle=False)) == [0, 1, 2, 3, 4] * 2
    resumed = stream(seed=7, start=3)
    assert all(np.array_equal(x, y) for x, y in zip(a[3:], resumed, strict=False))
    with_flip = stream(seed=7, flip=True)
    resumed = stream(seed=7, flip=True, start=4)
    assert all(np.array_equal(x, y) for x, y in zip(with_flip[4:], resumed, strict=False))
    one_pass = folder_dataset(
        "deepfashion", tmp_path, "train", 32, batch_size=2, repeat=False, shuffle=False, start=1
    )
    assert [b["masks"].shape[0] for b in batches(one_pass, 10)] == [2, 2]


def test_cityscapes_instances_and_resize(tmp_path):
    labels = write_cityscapes(tmp_path, count=4)
    samples = list_samples("cityscapes", tmp_path, "train")
    assert [s.image.name for s in samples] == [
        f"{cityscapes_stem(i)}_leftImg8bit.png" for i in range(4)
    ]
    dataset = folder_dataset(
        "cityscapes", tmp_path, "train", (16, 32), batch_size=4, flip=True, seed=1
    )
    for batch in batches(dataset, 3):
        assert set(batch) == {"images", "masks", "instances"}
        assert batch["images"].shape == (4, 16, 32, 3)
        assert batch["masks"].shape == batch["instances"].shape == (4, 16, 32)
        assert batch["instances"].dtype == np.int32
        # PNG images: exact colours, and labels, instances and colours flip together.
        np.testing.assert_array_equal(decode_colours(batch["images"], labels), batch["masks"])
        instances = batch["instances"]
        owner = np.where(instances >= 1000, instances // 1000, instances)
        np.testing.assert_array_equal(owner, batch["masks"])
        assert instances.max() > 26000
    # Downsizing: masks nearest (no new values), images bicubic, both to the model size.
    small = batches(folder_dataset("cityscapes", tmp_path, "train", (8, 12), batch_size=2), 1)[0]
    assert small["images"].shape == (2, 8, 12, 3) and small["masks"].shape == (2, 8, 12)
    assert set(np.unique(small["masks"])) <= set(labels)
    without = batches(
        folder_dataset("cityscapes", tmp_path, "train", (16, 32), batch_size=2, instances=False), 1
    )[0]
    assert set(without) == {"images", "masks"}


def test_ade20k_moves_other_to_the_last_class(tmp_path):
    labels, masks = write_ade20k(tmp_path, count=3)
    dataset = folder_dataset(
        "ade20k", tmp_path, "training", 32, batch_size=3, shuffle=False, repeat=False
    )
    (batch,) = batches(dataset, 2)
    expected = np.where(np.stack(masks) == 0, 150, np.stack(masks).astype("int32") - 1)
    np.testing.assert_array_equal(batch["masks"], expected)
    assert set(np.unique(batch["masks"])) == {150, 0, 149, 41}
    assert batch["masks"].max() < DATASET_CLASSES["ade20k"]
    # The picture still matches the original labels.
    np.testing.assert_array_equal(decode_colours(batch["images"], labels), np.stack(masks))
    assert len(list_samples("ade20k", tmp_path, "train")) == 3  # "train" names "training"


def test_unpaired_files_are_all_listed(tmp_path):
    write_deepfashion(tmp_path, count=2)
    save_jpeg(np.zeros((32, 32, 3), "uint8"), tmp_path / "train" / "orphan.jpg")
    Image.fromarray(np.zeros((32, 32), "uint8")).save(tmp_path / "cihp_train_mask" / "lonely.png")
    with pytest.raises(FolderDatasetError, match="2 unpaired") as info:
        folder_dataset("deepfashion", tmp_path, "train", 32, batch_size=1)
    assert f"orphan.jpg has no label map (expected {tmp_path}/cihp_train_mask/orphan.png)" in str(
        info.value
    )
    assert "lonely.png has no image" in str(info.value)

    write_cityscapes(tmp_path / "city", count=2)
    gt = tmp_path / "city" / "gtFine" / "train" / CITY
    (gt / f"{cityscapes_stem(1)}_gtFine_instanceIds.png").unlink()
    with pytest.raises(
        FolderDatasetError, match=r"000001_000019_leftImg8bit.png has no inst"
    ) as info:
        list_samples("cityscapes", tmp_path / "city", "train")
    assert f"expected {gt / cityscapes_stem(1)}_gtFine_instanceIds.png" in str(info.value)
    assert len(list_samples("cityscapes", tmp_path / "city", "train", instances=False)) == 2


def test_layout_errors(tmp_path):
    with pytest.raises(FolderDatasetError, match=r"is not a folder; the deepfashion layout"):
        folder_dataset("deepfashion", tmp_path / "nowhere", "train", 32, batch_size=1)
    (tmp_path / "train").mkdir()
    (tmp_path / "cihp_train_mask").mkdir()
    with pytest.raises(FolderDatasetError, match="no samples found"):
        list_samples("deepfashion", tmp_path, "train")
    with pytest.raises(ValueError, match="Unknown dataset 'coco'"):
        list_samples("coco", tmp_path, "train")
    with pytest.raises(ValueError, match=r"`split` must be one of \['train', 'val'\]"):
        list_samples("cityscapes", tmp_path, "test")
    with pytest.raises(ValueError, match="only cityscapes"):
        list_samples("deepfashion", tmp_path, "train", instances=True)


def bad_sample(tmp_path, problem: str):
    """A one-sample DeepFashion tree whose sample has `problem`; returns (root, culprit)."""
    write_deepfashion(tmp_path, count=1)
    image, mask = tmp_path / "train" / "0000.jpg", tmp_path / "cihp_train_mask" / "0000.png"
    if problem == "values":
        bad = np.zeros((32, 32), "uint8")
        bad[0, :3] = (9, 255, 3)
        Image.fromarray(bad).save(mask)
        return mask, r"label values 9, 255 are outside \[0, 7\] for deepfashion"
    if problem == "corrupt":
        image.write_bytes(b"\xff\xd8 this is no JPEG")
        return image, "cannot be read as an image"
    if problem == "truncated":
        image.write_bytes(image.read_bytes()[:200])
        return image, "cannot be read as an image"
    if problem == "size":
        Image.fromarray(np.zeros((24, 32), "uint8")).save(mask)
        return image, r"is 32x32 but its label map .*0000.png is 32x24 \(width x height\)"
    if problem == "rgb":
        Image.fromarray(np.zeros((32, 32, 3), "uint8")).save(mask)
        return mask, "must be a single-channel image .* mode RGB"
    raise AssertionError(problem)


@pytest.mark.parametrize("problem", ["values", "corrupt", "truncated", "size", "rgb"])
def test_bad_files_raise_naming_the_file(tmp_path, problem):
    culprit, reason = bad_sample(tmp_path, problem)
    expected = re.escape(str(culprit)) if problem != "size" else ""
    dataset = folder_dataset("deepfashion", tmp_path, "train", 32, batch_size=1)
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected + ".*" + reason):
        next(iter(dataset))
    with pytest.raises(FolderDatasetError, match="1 of 1 deepfashion samples are unusable") as info:
        folder_dataset("deepfashion", tmp_path, "train", 32, batch_size=1, verify=True)
    assert re.search(reason, str(info.value)) and str(culprit) in str(info.value)


def test_out_of_range_labels_of_cityscapes_and_ade20k(tmp_path):
    write_cityscapes(tmp_path / "city", count=1)
    labels = tmp_path / "city" / "gtFine" / "train" / CITY
    labels = labels / f"{cityscapes_stem(0)}_gtFine_labelIds.png"
    Image.fromarray(np.full((16, 32), 255, "uint8")).save(labels)
    with pytest.raises(FolderDatasetError, match=r"label values 255 are outside \[0, 34\].*trainI"):
        folder_dataset("cityscapes", tmp_path / "city", "train", (16, 32), 1, verify=True)
    write_ade20k(tmp_path / "ade", count=1)
    mask = tmp_path / "ade" / "annotations" / "training" / "ADE_train_00000000.png"
    Image.fromarray(np.full((32, 32), 151, "uint8")).save(mask)
    dataset = folder_dataset("ade20k", tmp_path / "ade", "training", 32, batch_size=1)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"values 151 are outside \[0, 150\]"):
        next(iter(dataset))


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the trainer needs TensorFlow")
def test_train_run_reads_a_deepfashion_folder(tmp_path):
    from smis_layers.cli import build_parser
    from smis_layers.training.run import train_run

    root = tmp_path / "deepfashion"
    export_deepfashion_layout(SyntheticShapes(image_size=64, seed=0), root, num_train=8)
    args = {
        "model": "groupdnet_shapes64",
        "steps": 2,
        "checkpoint_every": 2,
        "batch_size": 2,
        "d_layers": 2,
        "d_filters": 8,
        "verbose": 0,
    }
    # Data errors come before anything is written.
    for data, data_dir, message in [
        ("ade20k", root, "has 8 classes but ade20k label maps have 151"),
        ("deepfashion", None, "needs --data-dir"),
        ("synthetic", root, "--data-dir is read only with"),
    ]:
        with pytest.raises(ValueError, match=message):
            train_run(out=tmp_path / "bad", data=data, data_dir=data_dir, **args)
        assert not (tmp_path / "bad" / "run.json").exists()
    with pytest.raises(FileNotFoundError, match="no such folder"):
        train_run(out=tmp_path / "bad", data="deepfashion", data_dir=tmp_path / "x", **args)

    out = tmp_path / "run"
    preset = train_run(out=out, data="deepfashion", data_dir=root, **args)
    run = json.loads((out / "run.json").read_text())
    assert run["data"] == "deepfashion" and run["data_dir"] == str(root.resolve())
    assert (preset / "config.json").is_file()
    with pytest.raises(ValueError, match=r"holds a run with other arguments.*data_dir"):
        # without the scan, which would first refuse tmp_path as a dataset folder
        train_run(out=out, data="deepfashion", data_dir=tmp_path, verify_data=False, **args)

    command = ["train", "--model", "m", "--out", "o", "--steps", "2", "--data", "ade20k"]
    parsed = build_parser().parse_args([*command, "--data-dir", str(root)])
    assert parsed.data == "ade20k" and parsed.data_dir == str(root)
