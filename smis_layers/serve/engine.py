"""The demo page's logic, free of any web framework: codes, styles, masks and rendering.

`DemoEngine` keeps one model loaded and answers every action of the page (resample one class,
morph one class, copy one class's appearance from a reference, edit the label map, reset) by
rewriting the per-class codes of a `DemoState` and decoding once. The page (`smis_layers.serve.app`)
only converts between widgets and these calls, so everything here is testable without a browser.

Per class `c` the state holds two codes, style A (`a`) and style B (`b`), and a morph position
`t[c]` in [0, 1]; the code the decoder sees for class `c` is `(1 - t[c]) * a_c + t[c] * b_c` (linear
interpolation of that class's channels only). "New style" draws fresh A and B codes for one class
and sets `t[c] = 0`; copying an appearance sets A to the reference's code (the encoder's mean).

Examples:
    >>> engine = DemoEngine(build_architecture("groupdnet_shapes64"))
    >>> state = engine.start(seed=0, example_index=0)
    >>> image = engine.render(state)  # (H, W, 3) uint8
    >>> state = engine.new_style(state, 3)  # only class 3's pixels change
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence

import keras
import numpy as np

from smis_layers.data.labels import model_label_convention, resize_image, resize_label_image
from smis_layers.data.synthetic import SHAPE_FAMILIES, SIZES, SyntheticShapes
from smis_layers.utils.deprecation import renamed_function, warn_deprecated
from smis_layers.utils.images import colourize, to_uint8

MAX_SEED = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class DemoState:
    """What one browser session has chosen.

    Attributes:
        seed: the seed of the initial codes (style A = `model.sample_z(1, seed)`).
        labels: (H, W) int32 label map being generated.
        a: (1, h, w, K*C) style A codes (K latent channels per class).
        b: (1, h, w, K*C) style B codes (the morph targets).
        t: (C,) morph position of every class, 0 = style A, 1 = style B.
        draws: how many fresh codes this session has drawn (seeds the next draw).
    """

    seed: int
    labels: np.ndarray
    a: np.ndarray
    b: np.ndarray
    t: np.ndarray
    draws: int = 0

    @property
    def mask(self) -> np.ndarray:
        """Deprecated alias of `labels`."""
        warn_deprecated("`DemoState.mask` is now `DemoState.labels`")
        return self.labels


def default_class_names(num_classes: int) -> list[str]:
    """Names of the synthetic benchmark's classes: background, then its shape families."""
    names = ["background", *SHAPE_FAMILIES]
    return [names[c] if c < len(names) else f"class {c}" for c in range(num_classes)]


def class_palette(num_classes: int) -> np.ndarray:
    """(C, 3) uint8 colour of every class (`colourize`'s colours)."""
    return colourize(np.arange(num_classes))


def hex_colour(rgb: Sequence[int]) -> str:
    """ "#rrggbb" of an RGB triple."""
    return "#{:02x}{:02x}{:02x}".format(*(int(v) for v in rgb))


def labels_from_colours(rgb, num_classes: int) -> np.ndarray:
    """(H, W) labels of an (H, W, 3) colour image: the class whose colour is nearest.

    Anti-aliased brush edges (blends of two class colours) go to the nearer of the two. Classes
    beyond the palette's 20 colours share colours with lower classes and map to the lowest one.
    """
    rgb = np.asarray(rgb)[..., :3].astype("int32")
    palette = class_palette(num_classes).astype("int32")
    distance = ((rgb[..., None, :] - palette) ** 2).sum(-1)  # (H, W, C)
    return distance.argmin(-1).astype("int32")


def resize_labels(labels, size: tuple[int, int]) -> np.ndarray:
    """An (H, W) label map resized to `size` (height, width) as the training loader resizes
    label maps (`smis_layers.data.labels.resize_label_image`: nearest)."""
    from PIL import Image

    labels = np.asarray(labels, dtype="int32")
    if labels.shape == tuple(size):
        return labels
    resized = resize_label_image(Image.fromarray(labels, mode="I"), size)
    return np.asarray(resized, dtype="int32")


def labels_from_upload(
    image, num_classes: int, size: tuple[int, int], label_convention: str | None = None
) -> np.ndarray:
    """An uploaded mask as (H, W) labels at the model's size.

    Accepted: a palette ("P") or greyscale PNG whose values are the labels, an RGB image whose
    three channels are equal (greyscale labels), or a colour mask painted with the class colours
    of `colourize` (each pixel goes to the nearest class colour). Label values are a dataset's
    annotation: they go through `label_convention` (the model's; see
    `smis_layers.data.labels`), as `load_labels` reads them.

    Raises:
        ValueError: label values outside [0, num_classes) or outside the convention's range.
    """
    from PIL import Image

    from smis_layers.data.labels import to_model_labels

    if isinstance(image, Image.Image):
        if image.mode in ("P", "L", "I", "I;16"):
            array = np.asarray(image).astype("int64")
        else:
            array = np.asarray(image.convert("RGBA" if "A" in image.mode else "RGB"))
    else:
        array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 4:
        array = array[..., :3]
    if array.ndim == 3 and np.all(array == array[..., :1]):
        array = array[..., 0]
    if array.ndim == 2:
        labels = to_model_labels(array.astype("int64"), label_convention, source="The mask")
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(
                f"The mask's label values must be in [0, {num_classes}); they span "
                f"[{labels.min()}, {labels.max()}]. Upload a label map, or a mask painted "
                "with the class colours of the legend"
            )
    elif array.ndim == 3 and array.shape[-1] == 3:
        labels = labels_from_colours(array, num_classes)
    else:
        raise ValueError(f"Cannot read a mask from an array of shape {array.shape}")
    return resize_labels(labels.astype("int32"), size)


def labels_from_editor(value, num_classes: int, size: tuple[int, int]) -> np.ndarray:
    """The labels painted in an image editor: its composite (or its background with its layers
    drawn over it, where there is no composite), nearest class colour per pixel, then resized
    (nearest) to `size`. Transparent pixels are background (class 0).

    Args:
        value: a dict with "composite", "background" and "layers" (RGB or RGBA arrays), as
            gradio's ImageEditor gives it, or a plain array.
    """
    if isinstance(value, dict):
        composite = value.get("composite")
        if composite is None:
            composite = _flatten_layers(value.get("background"), value.get("layers") or [])
    else:
        composite = value
    if composite is None:
        raise ValueError("The mask editor is empty: pick an example mask or upload one")
    composite = np.asarray(composite)
    if composite.ndim == 2:
        composite = np.repeat(composite[..., None], 3, -1)
    labels = labels_from_colours(composite[..., :3], num_classes)
    if composite.shape[-1] == 4:
        labels[composite[..., 3] < 128] = 0
    return resize_labels(labels, size)


def _flatten_layers(background, layers):
    """Alpha-composites RGBA `layers` over `background`."""
    if background is None and not layers:
        return None
    base = np.asarray(background if background is not None else layers[0]).astype("float32")
    if base.ndim == 2:
        base = np.repeat(base[..., None], 3, -1)
    out = base[..., :3].copy()
    for layer in layers:
        layer = np.asarray(layer).astype("float32")
        if layer.shape[-1] == 4:
            alpha = layer[..., 3:] / 255.0
            out = layer[..., :3] * alpha + out * (1 - alpha)
        else:
            out = layer[..., :3]
    return out.round().astype("uint8")


def image_to_model(image, size: tuple[int, int]) -> np.ndarray:
    """An uploaded image (uint8 RGB(A) array or PIL image) as (H, W, 3) float32 in [-1, 1],
    resized to `size` as the training loader resizes images (`resize_image`: bicubic)."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        array = np.asarray(image)
        if array.ndim == 2:
            array = np.repeat(array[..., None], 3, -1)
        if array.dtype != np.uint8:
            raise ValueError(f"Expected a uint8 image; received dtype {array.dtype}")
        image = Image.fromarray(array[..., :3])
    image = resize_image(image.convert("RGB"), size)
    return np.asarray(image, dtype="float32") / 127.5 - 1.0


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling of an (H, W, ...) array by an integer factor."""
    if factor == 1:
        return image
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


class DemoEngine:
    """One loaded model and the actions of the demo page.

    The decoder and the encoder are the model's `inference_function`s (TensorFlow backend: a
    `tf.function`; other backends run eagerly), traced and warmed up here at batch 1, so no
    action re-traces.
    Every action takes a `DemoState` and returns a new one; `render` decodes a state.

    Args:
        model: a GroupDNet (or one of its baselines) with `num_classes`, `image_size`,
            `latent_shape`, `segmap`, `decode`, `encode_segmap`.
        class_names: one name per class; default: the synthetic benchmark's.
        num_examples: how many built-in example scenes to offer.
        example_seed: the SyntheticShapes seed of the examples.
        display_size: images are upscaled (nearest) by an integer factor to about this size.
        compile: trace the decoder and encoder (TensorFlow backend only).
        shared_codes: draw one N(0, 1) code per class repeated over the latent grid
            (`model.sample_z(..., spatially_shared=True)`); otherwise codes come from the
            model's code prior (`sample_z`'s "auto": the fitted prior a preset ships, else
            N(0, 1); docs/zoo.md).
    """

    def __init__(
        self,
        model,
        class_names: Sequence[str] | None = None,
        num_examples: int = 6,
        example_seed: int = 0,
        display_size: int = 256,
        compile: bool = True,
        shared_codes: bool = False,
    ):
        self.model = model
        self.shared_codes = bool(shared_codes)
        self.num_classes = int(model.num_classes)
        self.label_convention = model_label_convention(model)
        self.image_size = tuple(int(s) for s in model.image_size)
        self.latent_shape = tuple(int(s) for s in model.latent_shape)
        self.latent_channels = self.latent_shape[-1] // self.num_classes
        names = list(class_names) if class_names else default_class_names(self.num_classes)
        if len(names) != self.num_classes:
            raise ValueError(
                f"`class_names` must have {self.num_classes} names; received {len(names)}"
            )
        self.class_names = names
        self.palette = class_palette(self.num_classes)
        self.scale = max(1, display_size // max(self.image_size))
        self.examples = self._make_examples(num_examples, example_seed)
        self._lock = threading.Lock()
        self._decode, self._encode = self._make_functions(compile)
        self.last_ms = 0.0
        # Warm-up: trace and run both functions once.
        state = self.start(0, 0)
        self.render(state)
        self.encode(self.examples["images"][0], self.examples["masks"][0])

    # ------------------------------------------------------------------ setup
    def _make_examples(self, count: int, seed: int) -> dict[str, np.ndarray]:
        """SyntheticShapes scenes at the model's size (generated at the nearest supported size
        and resized when the model's size is not one of them)."""
        height, width = self.image_size
        source = min(SIZES, key=lambda s: abs(s - max(height, width)))
        dataset = SyntheticShapes(
            image_size=source, num_classes=min(max(self.num_classes, 2), 16), seed=seed
        )
        batch = dataset.batch(np.arange(count))
        labels = np.stack([resize_labels(m, self.image_size) for m in batch["masks"]])
        images = np.stack([image_to_model(to_uint8(i), self.image_size) for i in batch["images"]])
        labels = np.minimum(labels, self.num_classes - 1).astype("int32")
        return {"images": images.astype("float32"), "masks": labels}

    def _segmap(self, labels: np.ndarray):
        model = self.model
        labels = np.asarray(labels, dtype="int32")[None]
        segmap = model.segmap(labels)
        if getattr(model, "use_instance_edges", False):
            # No instance map on the page: each class region counts as one instance.
            segmap = model.condition_segmap(segmap, instance_ids=labels)
        return segmap

    def _make_functions(self, compile: bool):
        model = self.model
        if compile:
            decode = model.inference_function("decode")
            encode_segmap = model.inference_function("encode_segmap")
        else:

            def decode(z, segmap):
                return model.decode(z, segmap, training=False)

            def encode_segmap(images, segmap):
                return model.encode_segmap(images, segmap, training=False)

        def encode(images, segmap):
            return encode_segmap(images, segmap)[0]

        return decode, encode

    # ------------------------------------------------------------------ codes
    def _fresh_codes(self, seed: int, draw: int) -> np.ndarray:
        """Codes drawn as `_seeded` draws them (the model's code prior), determined by
        (seed, draw)."""
        draw_seed = int(np.random.default_rng([int(seed), int(draw)]).integers(2**31))
        return self._prior_codes(draw_seed)

    def _prior_codes(self, seed: int) -> np.ndarray:
        z = self.model.sample_z(1, seed, spatially_shared=self.shared_codes)
        return np.asarray(z, dtype="float32")

    def _channels(self, class_index: int) -> slice:
        return slice(*self.model.class_channels(self.check_class(class_index)))

    def check_class(self, class_index: int) -> int:
        """`class_index` as an int, or a ValueError when it is not a class of the model."""
        class_index = int(class_index)
        if not 0 <= class_index < self.num_classes:
            raise ValueError(
                f"Class {class_index} does not exist; the model's classes are "
                f"0..{self.num_classes - 1}"
            )
        return class_index

    def z(self, state: DemoState) -> np.ndarray:
        """The codes the decoder sees: per class, A interpolated towards B by `t`."""
        t = np.repeat(np.asarray(state.t, "float32"), self.latent_channels)
        return ((1.0 - t) * state.a + t * state.b).astype("float32")

    # ------------------------------------------------------------------ actions
    def start(self, seed: int, example_index: int = 0) -> DemoState:
        """A fresh session: example mask `example_index` and the codes of `seed`."""
        labels = self.examples["masks"][self.check_example(example_index)]
        return self._seeded(labels, seed)

    def reset(self, state: DemoState, seed: int) -> DemoState:
        """Every class back to the codes of `seed` (style A: `model.sample_z(1, seed)`, so the
        page shows what `model.generate(labels, seed=seed)` gives); morphs to 0; the label map
        stays."""
        return self._seeded(state.labels, seed)

    def _seeded(self, labels, seed) -> DemoState:
        seed = check_seed(seed)
        a = self._prior_codes(seed)
        b = self._fresh_codes(seed, 0)
        t = np.zeros(self.num_classes, "float32")
        return DemoState(seed, np.array(labels, dtype="int32"), a, b, t, draws=1)

    def new_style(self, state: DemoState, class_index: int) -> DemoState:
        """Resamples class `class_index` only: fresh style A and B codes, morph back to 0."""
        channels = self._channels(class_index)
        a, b, t = state.a.copy(), state.b.copy(), state.t.copy()
        a[..., channels] = self._fresh_codes(state.seed, state.draws)[..., channels]
        b[..., channels] = self._fresh_codes(state.seed, state.draws + 1)[..., channels]
        t[class_index] = 0.0
        return dataclasses.replace(state, a=a, b=b, t=t, draws=state.draws + 2)

    def morph(self, state: DemoState, class_index: int, position: float) -> DemoState:
        """Moves class `class_index` to `position` in [0, 1] between its styles A and B."""
        class_index = self.check_class(class_index)
        position = float(position)
        if not 0.0 <= position <= 1.0:
            raise ValueError(f"The morph position must be in [0, 1]; received {position}")
        t = state.t.copy()
        t[class_index] = position
        return dataclasses.replace(state, t=t)

    def encode(self, image, labels) -> np.ndarray:
        """The encoder's mean code (1, h, w, K*C) of one image in [-1, 1] and its label map."""
        image = np.asarray(image, "float32")[None]
        labels = np.asarray(labels, "int32")[None]
        with self._lock:
            mu = self._encode(image, self.model.segmap(labels))
        return np.asarray(keras.ops.convert_to_numpy(mu), dtype="float32")

    def copy_appearance(
        self, state: DemoState, class_index: int | None, image, labels
    ) -> DemoState:
        """Appearance mixture: class `class_index` takes its code from a reference image.

        Args:
            state: the current state.
            class_index: the class to copy, or None for every class present in both the
                reference label map and the current one.
            image: (H, W, 3) reference image in [-1, 1] at the model's size.
            labels: (H, W) reference labels at the model's size.

        Raises:
            ValueError: the class is absent from the reference label map (its code would be
                meaningless), or no class is shared.
        """
        labels = np.asarray(labels, "int32")
        in_reference = set(np.unique(labels).tolist())
        if class_index is None:
            classes = sorted(in_reference & set(self.present_classes(state.labels)))
            if not classes:
                raise ValueError("The reference and the current mask share no class")
        else:
            class_index = self.check_class(class_index)
            if class_index not in in_reference:
                raise ValueError(
                    f"Class {class_index} ({self.class_names[class_index]}) is not in the "
                    "reference mask, so the reference has no appearance for it"
                )
            classes = [class_index]
        mu = self.encode(image, labels)
        a, t = state.a.copy(), state.t.copy()
        for c in classes:
            channels = self._channels(c)
            a[..., channels] = mu[..., channels]
            t[c] = 0.0
        return dataclasses.replace(state, a=a, t=t)

    def set_labels(self, state: DemoState, labels) -> DemoState:
        """Semantic manipulation: a new label map, every class keeping its codes."""
        labels = np.asarray(labels)
        if labels.shape != self.image_size:
            raise ValueError(f"The mask must be {self.image_size}; received {labels.shape}")
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(f"Mask labels must be in [0, {self.num_classes})")
        return dataclasses.replace(state, labels=labels.astype("int32"))

    def check_example(self, example_index: int) -> int:
        example_index = int(example_index)
        if not 0 <= example_index < len(self.examples["masks"]):
            raise ValueError(f"No example {example_index}")
        return example_index

    # ------------------------------------------------------------------ outputs
    def generate(self, state: DemoState) -> np.ndarray:
        """(H, W, 3) float image in [-1, 1] of a state, at the model's size."""
        start = time.perf_counter()
        with self._lock:
            images = self._decode(self.z(state), self._segmap(state.labels))
        images = np.asarray(keras.ops.convert_to_numpy(images))
        self.last_ms = (time.perf_counter() - start) * 1000
        return images[0]

    def render(self, state: DemoState) -> np.ndarray:
        """(H, W, 3) uint8 image of a state, at the model's size."""
        return to_uint8(self.generate(state))

    def display(self, image: np.ndarray) -> np.ndarray:
        """An image or label colours upscaled for the page."""
        return upscale(image, self.scale)

    def label_colours(self, labels) -> np.ndarray:
        """(H, W, 3) uint8 colours of a label map."""
        return self.palette[np.asarray(labels, "int32")]

    set_mask = renamed_function(set_labels, "DemoEngine.set_mask")
    mask_colours = renamed_function(label_colours, "DemoEngine.mask_colours")

    @staticmethod
    def present_classes(labels) -> list[int]:
        """Classes that have at least one pixel in `mask`, ascending."""
        return [int(c) for c in np.unique(np.asarray(labels))]


def check_seed(seed) -> int:
    """`seed` as an int in [0, 2**31 - 1], or a ValueError."""
    if seed is None:
        raise ValueError("Enter a seed (a whole number >= 0)")
    value = float(seed)
    if value != int(value) or not 0 <= value <= MAX_SEED:
        raise ValueError(f"The seed must be a whole number in [0, {MAX_SEED}]; received {seed}")
    return int(value)
