import json

import keras
import numpy as np
import pytest

from smis_layers.data.synthetic import SyntheticShapes
from smis_layers.models.segmenter import DepthToSpace, ShapesSegmenter, SpaceToDepth
from smis_layers.presets import load_preset
from smis_layers.training.segmenter import augment_images, class_weights, train_segmenter


def tiny(**overrides):
    return ShapesSegmenter(**{"num_classes": 4, "filters": (4, 6, 8), **overrides})


def test_shapes_features_and_feature_maps():
    model = tiny()
    images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    assert tuple(model(images).shape) == (2, 32, 32, 4)
    assert model.downsampling == 8 and model.feature_dim == 14
    assert tuple(model.features(images).shape) == (2, 14)
    shapes = [tuple(m.shape) for m in model.feature_maps(images)]
    assert shapes == [(2, 16, 16, 4), (2, 8, 8, 6), (2, 4, 4, 8)]
    labels = model.predict_labels(images, batch_size=1)
    np.testing.assert_array_equal(labels, np.argmax(keras.ops.convert_to_numpy(model(images)), -1))
    with pytest.raises(ValueError, match="must be divisible by 8"):
        model(np.zeros((1, 20, 20, 3), "float32"))


def test_space_to_depth_layout_and_inverse():
    x = np.arange(2 * 4 * 4 * 3, dtype="float32").reshape(2, 4, 4, 3)
    packed = np.asarray(SpaceToDepth(2)(x))
    assert packed.shape == (2, 2, 2, 12)
    # location (i, j) holds pixels (2i + a, 2j + b) in the order (a, b, channel)
    np.testing.assert_array_equal(packed[1, 1, 0].reshape(2, 2, 3), x[1, 2:4, 0:2])
    np.testing.assert_array_equal(np.asarray(DepthToSpace(2)(packed)), x)


def test_each_output_block_reads_its_own_input_pixels():
    """With patch_size=2 the logits are per pixel: changing one pixel changes its own logits."""
    model = tiny(filters=(4, 4))
    images = np.zeros((1, 16, 16, 3), "float32")
    changed = images.copy()
    changed[0, 5, 6] = 1.0
    before = keras.ops.convert_to_numpy(model(images))
    after = keras.ops.convert_to_numpy(model(changed))
    assert np.abs(after - before)[0, 5, 6].max() > 0


def test_preset_round_trip(tmp_path):
    from smis_layers.presets import save_preset

    model = tiny(patch_size=1, decoder_convs=2)
    assert model.get_config()["filters"] == [4, 6, 8]
    images = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    save_preset(model, tmp_path / "seg")
    restored = load_preset(tmp_path / "seg")
    assert isinstance(restored, ShapesSegmenter)
    assert (restored.patch_size, restored.decoder_convs) == (1, 2)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(images)),
        keras.ops.convert_to_numpy(model(images)),
        atol=1e-6,
    )


def test_learns_a_batch():
    data = SyntheticShapes(image_size=64, num_classes=4, seed=0).batch(np.arange(4))
    model = tiny(filters=(8, 8))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    first = model.train_on_batch(data["images"], data["masks"])
    for _ in range(12):
        last = model.train_on_batch(data["images"], data["masks"])
    assert last < 0.6 * first


def test_class_weights_balance_the_pixels():
    dataset = SyntheticShapes(image_size=64, num_classes=4, seed=0)
    weights = class_weights(dataset, num_images=16)
    masks = dataset.batch(np.arange(16))["masks"]
    frequency = np.bincount(masks.ravel(), minlength=4) / masks.size
    assert (frequency * weights).sum() == pytest.approx(1.0, rel=1e-5)
    assert weights[0] < weights[1:].min()  # the background is the most frequent class


def test_augmentation_is_deterministic_and_bounded():
    import tensorflow as tf

    images = SyntheticShapes(num_classes=4, seed=0).batch(np.arange(8))["images"]
    seed = tf.constant([0, 5], tf.int64)
    first = augment_images(tf.constant(images), seed).numpy()
    np.testing.assert_array_equal(first, augment_images(tf.constant(images), seed).numpy())
    other = augment_images(tf.constant(images), tf.constant([0, 6], tf.int64)).numpy()
    assert not np.array_equal(first, other)
    assert first.min() >= -1 and first.max() <= 1
    change = np.abs(first - images).mean(axis=(1, 2, 3))
    assert np.all(change > 0) and np.all(change < 0.2)


def test_train_segmenter_saves_a_preset_with_metadata(tmp_path):
    segmenter, info = train_segmenter(
        tmp_path / "seg",
        steps=2,
        batch_size=2,
        num_classes=4,
        filters=(4, 4),
        validation_images=2,
        validation_every=2,
        augment=True,
        verbose=0,
    )
    metadata = json.loads((tmp_path / "seg" / "metadata.json").read_text())
    assert metadata["training"]["steps"] == 2 and metadata["training"]["batch_size"] == 2
    assert metadata["training"]["call"].startswith("train_segmenter(")
    assert metadata["description"].startswith("Segmenter of the synthetic benchmark, 64x64")
    assert 0 <= metadata["validation"]["miou"] <= 1
    assert 0 <= metadata["validation"]["pixel_accuracy"] <= 1
    assert [p["step"] for p in metadata["training"]["validation_curve"]] == [2]
    assert metadata["training"]["arguments"]["augment"] is True
    assert not json.loads((tmp_path / "seg" / "config.json").read_text()).get("compile_config")
    assert metadata["validation"] == info["validation"]
    restored = load_preset(tmp_path / "seg")
    images = SyntheticShapes(num_classes=4, seed=1000).batch(np.arange(2))["images"]
    np.testing.assert_array_equal(restored.predict_labels(images), segmenter.predict_labels(images))
    with pytest.raises(ValueError, match="`seed` must differ from the validation seed 1000"):
        train_segmenter(None, steps=1, seed=1000)
