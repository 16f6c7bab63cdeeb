import keras
import numpy as np
import pytest

from smis_layers.training import vgg19_feature_extractor
from smis_layers.training.perceptual import CAFFE_BGR_MEAN, VGG_LAYERS
from tests.helpers import to_numpy


def test_loads_a_local_vgg19_file_and_applies_caffe_preprocessing(tmp_path):
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "vgg19_notop.weights.h5"
    vgg.save_weights(path)
    extractor = vgg19_feature_extractor(path, image_size=(32, 32))
    images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    features = [to_numpy(f) for f in extractor(images)]
    assert [f.shape[-1] for f in features] == [64, 128, 256, 512, 512]
    assert [f.shape[1] for f in features] == [32, 16, 8, 4, 2]
    caffe = (images + 1.0) * 127.5
    caffe = caffe[..., ::-1] - np.array(CAFFE_BGR_MEAN, "float32")
    expected = keras.Model(vgg.input, vgg.get_layer(VGG_LAYERS[2]).output)(caffe)
    np.testing.assert_allclose(features[2], to_numpy(expected), rtol=1e-4, atol=1e-3)
    assert not extractor.trainable_weights


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="VGG19 weights file not found"):
        vgg19_feature_extractor(tmp_path / "nope.h5")
