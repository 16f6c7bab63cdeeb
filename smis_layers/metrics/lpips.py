"""LPIPS (learned perceptual image patch similarity) in Keras, with weights from local files.

LPIPS(x, y) = sum_l mean_{h,w} sum_c w_{l,c} (f_l(x)_{hwc} / ||f_l(x)_{hw}|| - f_l(y)_{hwc} /
||f_l(y)_{hw}||)^2: the backbone's feature maps f_l at a few depths, unit-normalized along the
channels, squared differences weighted by a learned non-negative 1x1 "linear head" per layer,
averaged over space and summed over layers. Images are in [-1, 1] and pass LPIPS's scaling layer
(a per-channel shift and scale close to ImageNet normalization) before the backbone.

Nothing is downloaded: the official v0.1 heads (`vgg.pth`, `alex.pth` of the `lpips` package)
and the torchvision backbone weights are converted with `convert_lpips_torch_weights` into one
`.npz` file, which `LPIPS.from_weights` loads; see docs/evaluation.md.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

# LPIPS's ScalingLayer: (x - shift) / scale for images in [-1, 1].
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)

VGG16_TAPS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
VGG16_CHANNELS = (64, 128, 256, 512, 512)
ALEXNET_CHANNELS = (64, 192, 384, 256, 256)
NETS = ("vgg16", "alexnet")


def vgg16_backbone() -> keras.Model:
    """torchvision's VGG16 `features` as a Keras model (Keras's VGG16 has the same layers):
    images (already scaled) -> relu1_2, relu2_2, relu3_3, relu4_3, relu5_3."""
    vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    return keras.Model(
        vgg.input, [vgg.get_layer(name).output for name in VGG16_TAPS], name="vgg16_backbone"
    )


def alexnet_backbone() -> keras.Model:
    """torchvision's AlexNet `features` as a Keras model: images (already scaled) -> relu1 ...
    relu5 (the conv layers are `conv1` ... `conv5`, with torchvision's explicit zero padding)."""
    inputs = keras.Input((None, None, 3), name="images")
    specs = [  # (filters, kernel, stride, padding, max pool before)
        (64, 11, 4, 2, False),
        (192, 5, 1, 2, True),
        (384, 3, 1, 1, True),
        (256, 3, 1, 1, False),
        (256, 3, 1, 1, False),
    ]
    x, taps = inputs, []
    for i, (filters, kernel, stride, padding, pool) in enumerate(specs, start=1):
        if pool:
            x = keras.layers.MaxPooling2D(3, 2, name=f"pool{i - 1}")(x)
        x = keras.layers.ZeroPadding2D(padding, name=f"pad{i}")(x)
        x = keras.layers.Conv2D(filters, kernel, stride, activation="relu", name=f"conv{i}")(x)
        taps.append(x)
    return keras.Model(inputs, taps, name="alexnet_backbone")


def _backbone(net: str) -> keras.Model:
    if net not in NETS:
        raise ValueError(f"`net` must be one of {NETS}; received net={net!r}")
    return vgg16_backbone() if net == "vgg16" else alexnet_backbone()


def backbone_conv_layers(backbone: keras.Model) -> list[keras.layers.Conv2D]:
    """The backbone's Conv2D layers in order (the order of torchvision's `features.N` convs)."""
    return [layer for layer in backbone.layers if isinstance(layer, keras.layers.Conv2D)]


def unit_normalize(features, epsilon: float = 1e-10):
    """features / (||features||_2 over channels + epsilon), as LPIPS's `normalize_tensor`."""
    norm = ops.sqrt(ops.sum(ops.square(features), axis=-1, keepdims=True))
    return features / (norm + epsilon)


@keras.saving.register_keras_serializable(package="smis_layers")
class LPIPS(keras.layers.Layer):
    """LPIPS distance between two batches of images in [-1, 1]: `lpips(a, b)` -> (B,).

    Args:
        backbone: a Keras model mapping (scaled) images to a list of feature maps, e.g.
            `vgg16_backbone()`, `alexnet_backbone()` or any small network.
        input_scaling: apply LPIPS's scaling layer ((x - shift) / scale) to the [-1, 1] images
            before the backbone (True for the official networks).
        epsilon: added to the channel norm before dividing (LPIPS uses 1e-10).
        **kwargs: `keras.layers.Layer` keyword arguments.

    The linear heads are one non-negative weight vector per feature map (`heads[l]`, shape
    (C_l,)), initialized to ones (the "baseline" variant of the LPIPS paper: plain squared
    distance of normalized features) and set by `from_weights` or `set_head_weights`.

    Examples:
        >>> lpips = LPIPS.from_weights("lpips_vgg16.npz", net="vgg16")
        >>> lpips(images_a, images_b)                    # (B,) distances
        >>> lpips.distance(images_a, images_b, region)   # restricted to a (B, H, W) region

    Reference:
        Zhang, Isola, Efros, Shechtman, Wang, "The Unreasonable Effectiveness of Deep Features
        as a Perceptual Metric", CVPR 2018.
    """

    def __init__(
        self,
        backbone: keras.Model,
        input_scaling: bool = True,
        epsilon: float = 1e-10,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(backbone)
        if not isinstance(backbone, keras.Model):
            raise ValueError(f"`backbone` must be a keras.Model; received {backbone!r}")
        self.backbone = backbone
        self.backbone.trainable = False
        self.input_scaling = bool(input_scaling)
        self.epsilon = float(epsilon)
        outputs = backbone.outputs if isinstance(backbone.outputs, list) else [backbone.outputs]
        self.channels = tuple(int(o.shape[-1]) for o in outputs)
        self.heads = [
            self.add_weight(
                shape=(c,),
                initializer="ones",
                constraint=keras.constraints.NonNeg(),
                trainable=True,
                name=f"head{i}",
            )
            for i, c in enumerate(self.channels)
        ]
        self.built = True

    @classmethod
    def from_weights(cls, weights_path: str | os.PathLike, net: str = "vgg16") -> LPIPS:
        """The official LPIPS network `net` ("vgg16" or "alexnet") with backbone and heads
        from a `.npz` file written by `convert_lpips_torch_weights`."""
        if not os.path.isfile(weights_path):
            raise FileNotFoundError(
                f"LPIPS weights file not found: {weights_path!r}. It is never downloaded; see "
                "docs/evaluation.md (convert_lpips_torch_weights)"
            )
        lpips = cls(_backbone(net), name=f"lpips_{net}")
        try:
            with np.load(weights_path, allow_pickle=False) as arrays:
                lpips.load_arrays(dict(arrays))
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
            raise ValueError(
                f"{weights_path} is not a readable LPIPS weights archive (truncated, corrupted "
                f"or of another network?): {error}"
            ) from None
        return lpips

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Sets the backbone's convolutions ("conv{i}/kernel", "conv{i}/bias", i from 0, in
        the order of `backbone_conv_layers`) and the heads ("head{l}") from arrays."""
        convs = backbone_conv_layers(self.backbone)
        expected = {f"conv{i}/{k}" for i in range(len(convs)) for k in ("kernel", "bias")}
        expected |= {f"head{i}" for i in range(len(self.heads))}
        if set(arrays) != expected:
            missing, unexpected = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
            raise ValueError(
                f"The LPIPS arrays do not match this network: missing {missing}, "
                f"unexpected {unexpected}"
            )
        for i, conv in enumerate(convs):
            kernel, bias = arrays[f"conv{i}/kernel"], arrays[f"conv{i}/bias"]
            if kernel.shape != tuple(conv.kernel.shape) or bias.shape != tuple(conv.bias.shape):
                raise ValueError(
                    f"conv{i} ({conv.name}) expects kernel {tuple(conv.kernel.shape)} and bias "
                    f"{tuple(conv.bias.shape)}; received {kernel.shape} and {bias.shape}"
                )
            conv.kernel.assign(kernel)
            conv.bias.assign(bias)
        self.set_head_weights([arrays[f"head{i}"] for i in range(len(self.heads))])

    def set_head_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Sets the linear heads (one non-negative (C_l,) vector per feature map)."""
        if len(weights) != len(self.heads):
            raise ValueError(
                f"`weights` must hold {len(self.heads)} head vectors; received {len(weights)}"
            )
        for i, (head, w) in enumerate(zip(self.heads, weights, strict=True)):
            w = np.asarray(w, "float32").reshape(-1)
            if w.shape != tuple(head.shape):
                raise ValueError(
                    f"head {i} must have shape {tuple(head.shape)}; received {w.shape}"
                )
            if np.any(w < 0):
                raise ValueError(f"LPIPS head weights must be non-negative; head {i} is not")
            head.assign(w)

    def head_weights(self) -> list[np.ndarray]:
        return [np.asarray(ops.convert_to_numpy(h)) for h in self.heads]

    def feature_maps(self, images):
        """The backbone's unit-normalized feature maps of images in [-1, 1]."""
        x = ops.convert_to_tensor(images, dtype=self.compute_dtype)
        if self.input_scaling:
            shift = ops.convert_to_tensor(LPIPS_SHIFT, dtype=x.dtype)
            scale = ops.convert_to_tensor(LPIPS_SCALE, dtype=x.dtype)
            x = (x - shift) / scale
        features = self.backbone(x, training=False)
        features = features if isinstance(features, (list, tuple)) else [features]
        return [unit_normalize(f, self.epsilon) for f in features]

    def distance_maps(self, images_a, images_b) -> list:
        """Per-layer distance maps (B, h_l, w_l): sum_c w_c (f_a - f_b)^2."""
        maps = []
        for fa, fb, head in zip(
            self.feature_maps(images_a), self.feature_maps(images_b), self.heads, strict=True
        ):
            maps.append(ops.sum(ops.square(fa - fb) * head, axis=-1))
        return maps

    def call(self, images_a, images_b):
        """(B,) LPIPS distances."""
        return sum(ops.mean(m, axis=(1, 2)) for m in self.distance_maps(images_a, images_b))

    def distance(self, images_a, images_b, region=None) -> np.ndarray:
        """(B,) LPIPS distances as NumPy, restricted to `region` (B, H, W) weights in [0, 1]
        when given (each layer's map averaged with the region area-resized to its size)."""
        from smis_layers.metrics.distances import LPIPSDistance

        return LPIPSDistance(self)(images_a, images_b, region)

    def get_config(self):
        return {
            **super().get_config(),
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "input_scaling": self.input_scaling,
            "epsilon": self.epsilon,
        }


def _torch_state_dict(path):
    import torch

    if not os.path.isfile(path):
        raise FileNotFoundError(f"PyTorch weights file not found: {path!r}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (a dict of tensors)")
    return {k: v.detach().cpu().numpy() for k, v in state.items() if hasattr(v, "detach")}


def convert_lpips_torch_weights(
    heads_path: str | os.PathLike,
    backbone_path: str | os.PathLike,
    output_path: str | os.PathLike,
    net: str = "vgg16",
) -> dict[str, np.ndarray]:
    """Converts the official PyTorch LPIPS weights into the `.npz` file of `LPIPS.from_weights`.

    Args:
        heads_path: the LPIPS v0.1 linear heads (`lpips/weights/v0.1/vgg.pth` or `alex.pth` of
            the `lpips` package): keys `lin{l}.model.1.weight` of shape (1, C_l, 1, 1).
        backbone_path: torchvision's ImageNet `vgg16` or `alexnet` state dict (e.g.
            `vgg16-397923af.pth`, `alexnet-owt-7be5be79.pth`): keys `features.{i}.weight`
            (O, I, kh, kw) and `features.{i}.bias`; the classifier's keys are ignored.
        output_path: the `.npz` file to write.
        net: "vgg16" or "alexnet".

    Both files are read with `torch.load(weights_only=True)` (no code is executed); torch must
    be installed for the conversion only.

    Returns:
        The arrays written.
    """
    backbone = _backbone(net)
    convs = backbone_conv_layers(backbone)
    heads = _torch_state_dict(heads_path)
    torch_backbone = _torch_state_dict(backbone_path)
    indices = sorted(
        {
            int(m.group(1))
            for k in torch_backbone
            if (m := re.fullmatch(r"features\.(\d+)\.weight", k))
        }
    )
    if len(indices) != len(convs):
        raise ValueError(
            f"{backbone_path} has {len(indices)} `features.N.weight` convolutions; torchvision's "
            f"{net} has {len(convs)}"
        )
    arrays = {}
    for i, (index, conv) in enumerate(zip(indices, convs, strict=True)):
        kernel = torch_backbone[f"features.{index}.weight"].transpose(2, 3, 1, 0)
        if kernel.shape != tuple(conv.kernel.shape):
            raise ValueError(
                f"features.{index}.weight has kernel shape {kernel.shape} after transposition; "
                f"{net}'s {conv.name} expects {tuple(conv.kernel.shape)}"
            )
        arrays[f"conv{i}/kernel"] = kernel.astype("float32")
        arrays[f"conv{i}/bias"] = torch_backbone[f"features.{index}.bias"].astype("float32")
    head_keys = {}
    for key, value in heads.items():
        match = re.fullmatch(r"lin(\d+)\.model\.1\.weight", key) or re.fullmatch(
            r"lin(\d+)\.weight", key
        )
        if match:
            head_keys[int(match.group(1))] = value
    channels = VGG16_CHANNELS if net == "vgg16" else ALEXNET_CHANNELS
    if sorted(head_keys) != list(range(len(channels))):
        raise ValueError(
            f"{heads_path} must hold the {len(channels)} heads lin0 ... lin{len(channels) - 1} "
            f"(keys `lin{{l}}.model.1.weight`); found keys {sorted(heads)}"
        )
    for layer, c in enumerate(channels):
        head = head_keys[layer].reshape(-1).astype("float32")
        if head.shape != (c,):
            raise ValueError(f"lin{layer} has {head.size} weights; {net} layer {layer} has {c}")
        arrays[f"head{layer}"] = head
    np.savez(output_path, **arrays)
    return arrays
