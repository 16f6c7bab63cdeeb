"""Image distances restricted to a region, the pluggable distances of mCSD / mOCD / diversity.

An `ImageDistance` compares two batches of images in [-1, 1], optionally inside a region: a
(B, H, W) map of weights in [0, 1] (typically a binary class mask). It is computed as
`compare(embed(a), embed(b), region)`, so that the pairwise distances of n images embed each
image once. Every distance is a sum or mean over "layers" (the pixels for L1; feature maps for
feature distances and LPIPS) of a per-location distance map averaged over the region, the region
being area-resized to each map's size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from keras import ops

EPSILON = 1e-10


def _overlap_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) weights of the area (box) resize: the fraction of output cell i
    covered by input pixel j."""
    edges_in = np.arange(size_in + 1, dtype="float64")
    edges_out = np.linspace(0.0, size_in, size_out + 1)
    low = np.maximum(edges_out[:-1, None], edges_in[None, :-1])
    high = np.minimum(edges_out[1:, None], edges_in[None, 1:])
    overlap = np.clip(high - low, 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def resize_region(region, size: tuple[int, int]) -> np.ndarray:
    """Area-resizes (B, H, W) region weights to (B, h, w): each output cell is the mean of the
    region over the input pixels it covers (exact box averaging, any sizes)."""
    region = np.asarray(region, dtype="float64")
    if region.ndim != 3:
        raise ValueError(f"`region` must be (B, H, W); received shape {region.shape}")
    h, w = size
    if region.shape[1:] == (h, w):
        return region
    rows = _overlap_matrix(region.shape[1], h)
    cols = _overlap_matrix(region.shape[2], w)
    return np.einsum("ih,bhw,jw->bij", rows, region, cols)


def _numpy(x) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(x), dtype="float32")


class ImageDistance:
    """Base class of the region-restricted image distances.

    Subclasses define `embed(images) -> list of (B, h, w, c) arrays` and
    `location_distance(a, b) -> (B, h, w)` for one embedded layer; `reduction` ("sum" or
    "mean") combines the layers. `distance(a, b, region)` (or calling the object) returns (B,)
    distances; with a region, each layer's map is averaged with the region's area-resized
    weights, and a sample whose region is empty gets NaN.
    """

    name = "distance"
    reduction = "mean"

    def embed(self, images) -> list[np.ndarray]:
        raise NotImplementedError

    def location_distance(self, layer: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def embed_batched(self, images, batch_size: int = 32) -> list[np.ndarray]:
        """`embed` in batches of `batch_size` images."""
        images = np.asarray(images, "float32")
        parts = [self.embed(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
        return [np.concatenate(layer) for layer in zip(*parts, strict=True)]

    def compare(self, embedded_a, embedded_b, region=None) -> np.ndarray:
        """(B,) distances of two embedded batches, inside `region` (B, H, W) if given."""
        values = []
        for layer, (a, b) in enumerate(zip(embedded_a, embedded_b, strict=True)):
            local = self.location_distance(layer, a, b).astype("float64")  # (B, h, w)
            if region is None:
                values.append(local.mean(axis=(1, 2)))
                continue
            weights = resize_region(region, local.shape[1:3])
            total = weights.sum(axis=(1, 2))
            with np.errstate(invalid="ignore", divide="ignore"):
                values.append(
                    np.where(total > 0, (local * weights).sum(axis=(1, 2)) / total, np.nan)
                )
        values = np.stack(values)
        return values.sum(0) if self.reduction == "sum" else values.mean(0)

    def __call__(self, images_a, images_b, region=None) -> np.ndarray:
        images_a, images_b = np.asarray(images_a, "float32"), np.asarray(images_b, "float32")
        if images_a.shape != images_b.shape or images_a.ndim != 4:
            raise ValueError(
                f"`images_a` and `images_b` must be (B, H, W, 3) batches of the same shape; "
                f"received {images_a.shape} and {images_b.shape}"
            )
        if region is not None:
            region = np.asarray(region, "float32")
            if region.shape != images_a.shape[:3]:
                raise ValueError(
                    f"`region` must be (B, H, W) = {images_a.shape[:3]}; received {region.shape}"
                )
        return self.compare(self.embed(images_a), self.embed(images_b), region)

    distance = __call__


class MaskedL1Distance(ImageDistance):
    """Mean absolute pixel difference (over the region's pixels and the RGB channels) of
    images in [-1, 1]: weight-free, in [0, 2]."""

    name = "l1"

    def embed(self, images):
        return [np.asarray(images, "float32")]

    def location_distance(self, layer, a, b):
        return np.abs(a - b).mean(-1)


class MaskedFeatureDistance(ImageDistance):
    """Squared distance of unit-normalized feature maps of any feature extractor (LPIPS's
    "baseline" form, with all head weights 1), averaged over the region and the layers.

    Args:
        extractor: images in [-1, 1] -> a feature map (B, h, w, c) or a list of them (e.g.
            `ShapesSegmenter.feature_maps`, `vgg19_feature_extractor(path)`).
        normalize: unit-normalize each location's feature vector first (values in [0, 4]).
        name: the distance's name in reports.
    """

    def __init__(self, extractor: Callable, normalize: bool = True, name: str = "features"):
        if not callable(extractor):
            raise ValueError(f"`extractor` must be callable; received {extractor!r}")
        self.extractor = extractor
        self.normalize = normalize
        self.name = name

    def embed(self, images):
        maps = self.extractor(np.asarray(images, "float32"))
        maps = maps if isinstance(maps, (list, tuple)) else [maps]
        out = []
        for m in maps:
            m = _numpy(m)
            if m.ndim != 4:
                raise ValueError(
                    f"The extractor must return (B, h, w, c) feature maps; received shape {m.shape}"
                )
            if self.normalize:
                m = m / (np.sqrt((m**2).sum(-1, keepdims=True)) + EPSILON)
            out.append(m)
        return out

    def location_distance(self, layer, a, b):
        return ((a - b) ** 2).sum(-1)


class LPIPSDistance(ImageDistance):
    """LPIPS (`smis_layers.metrics.LPIPS`) restricted to a region: each layer's head-weighted
    distance map is averaged over the area-resized region, and the layers are summed. Without a
    region it equals `lpips(a, b)`."""

    name = "lpips"
    reduction = "sum"

    def __init__(self, lpips):
        self.lpips = lpips
        self.heads = lpips.head_weights()

    def embed(self, images):
        return [_numpy(f) for f in self.lpips.feature_maps(np.asarray(images, "float32"))]

    def location_distance(self, layer, a, b):
        return ((a - b) ** 2 * self.heads[layer]).sum(-1)


def masked_l1_distance() -> MaskedL1Distance:
    """The weight-free pixel distance: mean |a - b| over the region (see `MaskedL1Distance`).

    Examples:
        >>> distance = masked_l1_distance()
        >>> distance(images_a, images_b, region=(labels == 3))  # (B,)
    """
    return MaskedL1Distance()


def masked_feature_distance(
    extractor: Callable, normalize: bool = True, name: str = "features"
) -> MaskedFeatureDistance:
    """Distance of normalized feature maps of `extractor`, the region resized to each map (see
    `MaskedFeatureDistance`).

    Examples:
        >>> distance = masked_feature_distance(segmenter.feature_maps, name="segmenter")
    """
    return MaskedFeatureDistance(extractor, normalize=normalize, name=name)


def masked_lpips_distance(lpips) -> LPIPSDistance:
    """LPIPS restricted to a region (see `LPIPSDistance`).

    Examples:
        >>> distance = masked_lpips_distance(LPIPS.from_weights("lpips_vgg16.npz"))
    """
    return LPIPSDistance(lpips)
