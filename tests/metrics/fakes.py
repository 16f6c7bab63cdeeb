"""Fake generators with GroupDNet's API whose outputs the tests control exactly."""

from __future__ import annotations

import numpy as np


class FakeGenerator:
    """C classes, codes (B, 1, 1, K*C); class c owns channels K*c .. K*c+K-1.

    kind:
        "isolated": class c's pixels are tanh(first channel of class c's code) (all RGB);
        "ignore_z": images depend on the labels only;
        "entangled": every pixel is tanh(mean of the whole code) + the class colour.
    """

    def __init__(self, num_classes=3, size=8, per_class=2, kind="isolated"):
        self.num_classes, self.size, self.k, self.kind = num_classes, size, per_class, kind
        self.image_size = (size, size)
        self.latent_shape = (1, 1, per_class * num_classes)
        self.seen_z = []

    def sample_z(self, batch, seed=None):
        return np.random.default_rng(seed).normal(size=(batch, *self.latent_shape))

    def class_code(self, z, c):
        return np.asarray(z)[..., self.k * c : self.k * (c + 1)]

    def with_class_code(self, z, c, code):
        z = np.array(z, "float32", copy=True)
        z[..., self.k * c : self.k * (c + 1)] = code
        return z

    def generate(self, labels, z=None, seed=None):
        labels = np.asarray(labels)
        z = self.sample_z(len(labels), seed) if z is None else np.asarray(z)
        self.seen_z.append(z)
        colour = (labels / max(1, self.num_classes - 1))[..., None] * np.ones(3) - 0.5
        if self.kind == "ignore_z":
            return colour.astype("float32")
        if self.kind == "entangled":
            return (colour + np.tanh(z.mean(axis=(1, 2, 3)))[:, None, None, None]).astype("float32")
        first = z[:, 0, 0, :: self.k]  # (B, C): first channel of every class code
        value = np.take_along_axis(first, labels.reshape(len(labels), -1), 1)
        return np.repeat(np.tanh(value).reshape(*labels.shape, 1), 3, -1).astype("float32")


class CopyGenerator:
    """A perfect SMIS model of full-resolution codes: `encode` stores each class's pixels in its
    own 3 channels, `generate` paints every class region from its own channels. Swapping a
    class's code transfers exactly that region."""

    def __init__(self, num_classes, size):
        self.num_classes, self.image_size = num_classes, (size, size)

    def encode(self, images, labels):
        images, labels = np.asarray(images), np.asarray(labels)
        one_hot = np.eye(self.num_classes, dtype="float32")[labels]  # (B, H, W, C)
        codes = (one_hot[..., :, None] * images[..., None, :]).reshape(*labels.shape, -1)
        return codes, np.zeros_like(codes)

    def class_channels(self, c):
        return 3 * c, 3 * c + 3

    def class_code(self, z, c):
        return np.asarray(z)[..., 3 * c : 3 * c + 3]

    def with_class_code(self, z, c, code):
        z = np.array(z, "float32", copy=True)
        z[..., 3 * c : 3 * c + 3] = code
        return z

    def generate(self, labels, z=None, seed=None):
        labels = np.asarray(labels)
        z = np.asarray(z).reshape(*labels.shape, self.num_classes, 3)
        return np.take_along_axis(z, labels[..., None, None], -2)[..., 0, :]


class GlobalGenerator(CopyGenerator):
    """An entangled model: every class's code holds the whole image and the output is the mean
    of the class codes' images, so one class's code changes every pixel."""

    def encode(self, images, labels):
        codes = np.tile(np.asarray(images), (1, 1, 1, self.num_classes))
        return codes, np.zeros_like(codes)

    def generate(self, labels, z=None, seed=None):
        labels = np.asarray(labels)
        return np.asarray(z).reshape(*labels.shape, self.num_classes, 3).mean(-2)


class ColourCodeGenerator:
    """One global code of 3 channels: `encode` gives the image's mean colour scaled to unit
    length, `generate` paints every pixel with the code. A morph between two images' codes
    passes through colours of smaller length (the chord of the unit sphere), so its middle
    frames are darker than any encoded image."""

    def __init__(self, num_classes=3, size=8):
        self.num_classes, self.image_size = num_classes, (size, size)
        self.latent_shape = (1, 1, 3)

    def encode(self, images, labels):
        colour = np.asarray(images, "float32").mean(axis=(1, 2))
        colour /= np.linalg.norm(colour, axis=-1, keepdims=True) + 1e-6
        mu = colour[:, None, None, :]
        return mu, np.zeros_like(mu)

    def generate(self, labels, z=None, seed=None):
        labels = np.asarray(labels)
        colour = np.asarray(z, "float32")[:, 0, 0, :]  # (B, 3)
        return np.broadcast_to(colour[:, None, None, :], (*labels.shape, 3)).copy()
