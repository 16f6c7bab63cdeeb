"""VGG19 features for the perceptual loss, from a local weights file (nothing is downloaded)."""

from __future__ import annotations

import os

import keras
from keras import ops

VGG_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


def vgg19_feature_extractor(weights_path: str | os.PathLike, image_size=None) -> keras.Model:
    """VGG19 relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 features of images in [-1, 1].

    Args:
        weights_path: a local file of `keras.applications.VGG19(include_top=False)` weights
            (e.g. `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`, as Keras's own download
            caches it); it is never fetched from the internet.
        image_size: optional (height, width) to fix the input size.

    The images are mapped from [-1, 1] to VGG's caffe convention (0-255, BGR, ImageNet mean
    subtracted) inside the model. The official code feeds [-1, 1] images to a torchvision VGG19
    unnormalized; with Keras's weights the caffe convention is the correct input.
    """
    if not os.path.isfile(weights_path):
        raise FileNotFoundError(f"VGG19 weights file not found: {weights_path}")
    shape = (*(image_size or (None, None)), 3)
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=shape)
    vgg.load_weights(weights_path)
    vgg.trainable = False
    inputs = keras.Input(shape)
    pixels = (inputs + 1.0) * 127.5
    bgr = ops.flip(pixels, axis=-1) - ops.convert_to_tensor(CAFFE_BGR_MEAN, dtype=pixels.dtype)
    features = keras.Model(vgg.input, [vgg.get_layer(name).output for name in VGG_LAYERS])
    return keras.Model(inputs, features(bgr), name="vgg19_features")
