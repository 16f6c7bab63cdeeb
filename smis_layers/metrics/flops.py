"""Analytic FLOP counts of the generators, the discriminator and the training step.

Convention: **1 multiply-add = 2 FLOPs**, counted per image (batch 1; multiply by the batch).
Counted: every convolution (`GroupConv2D` with its groups, `keras.layers.Conv1D/2D/3D`) and every
`keras.layers.Dense`, i.e. the layers holding a `kernel`; the bias add is not counted. A
convolution with kernel `(kh, kw, cin / groups, cout)` producing an `(H_out, W_out)` map costs
`2 * H_out * W_out * kh * kw * (cin / groups) * cout` FLOPs: the kernel already holds the
`1 / groups` factor, so a grouped convolution costs `1 / groups` of its dense counterpart.
CGNorm's three convolutions (shared, gamma, beta), the encoder's and the discriminator's
convolutions are all counted this way. Not counted (they are O(activations), not
O(activations x channels)): normalizations, activations, nearest resizing and upsampling, the
class-mask split, the losses, the spectral-norm power iteration (O(kernel) per step) and the
optimizer updates (O(parameters) per step).

Shapes come from the built model: Keras records the input shape every layer was built with
(`Layer._build_shapes_dict`), and the output shape is the layer's `compute_output_shape`. So the
count assumes each layer is called once per forward pass with the shape it was built with,
which holds for every model of this library (no layer is shared between calls).

Train step (what `SMISTrainer.train_step` runs, with the usual backward = 2 x forward
convention: the input gradient and the weight gradient each cost one forward):

| part | generator (enc + dec) | discriminator |
|---|---|---|
| G step: G forward, D on fake and real | 1 F_G | 2 F_D |
| G step: backward through G (weights + inputs) | 2 F_G | |
| G step: backward through D on fake (input gradient only) | | 1 F_D |
| D step: second G forward (stop-gradient) | 1 F_G | |
| D step: D forward on fake and real | | 2 F_D |
| D step: backward through D, both (weights + inputs) | | 4 F_D |
| **total** | **4 F_G** | **9 F_D** |

F_G is the training forward of the generator (encoder + decoder), F_D the forward of the
multi-scale discriminator on one image. The real images' D pass of the G step needs no backward
(it does not depend on the generator's weights), and the D weight gradients of the G step are
not requested. The first layer of each network needs no input gradient, which this count
includes anyway (an overestimate of a few percent at most).
"""

from __future__ import annotations

import dataclasses
import math

import keras

from smis_layers.layers.group_conv2d import GroupConv2D

#: Layer types whose FLOPs are counted.
CONV_TYPES = (GroupConv2D, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
#: Train-step multipliers of the generator's and the discriminator's forward FLOPs (see above).
TRAIN_STEP_GENERATOR_FORWARDS = 4
TRAIN_STEP_DISCRIMINATOR_FORWARDS = 9


@dataclasses.dataclass(frozen=True)
class LayerFlops:
    """One counted layer: its path, its type, its per-image input/output shapes and FLOPs."""

    path: str
    kind: str
    input_shape: tuple
    output_shape: tuple
    kernel_shape: tuple
    flops: int


def _build_input_shape(layer: keras.layers.Layer) -> tuple:
    shapes = getattr(layer, "_build_shapes_dict", None)
    if not shapes:
        raise ValueError(
            f"Layer {layer.path!r} has no recorded build shape; build the model (every model of "
            "smis_layers builds itself at construction) before counting its FLOPs"
        )
    return tuple(next(iter(shapes.values())))


def layer_flops(layer: keras.layers.Layer, input_shape=None) -> LayerFlops:
    """FLOPs of one call of a convolution or dense layer on one image (1 multiply-add = 2).

    Args:
        layer: a `GroupConv2D`, `keras.layers.Conv1D/2D/3D` or `keras.layers.Dense`, built.
        input_shape: the input shape (batch dimension included, any value); default: the shape
            the layer was built with.

    Examples:
        >>> conv = GroupConv2D(16, 3, groups=4)
        >>> conv.build((None, 8, 8, 8))
        >>> layer_flops(conv).flops  # 8x8 outputs x 16 filters x 3x3x(8/4) taps x 2
        36864
    """
    shape = tuple(input_shape) if input_shape is not None else _build_input_shape(layer)
    kernel_shape = tuple(int(d) for d in layer.kernel.shape)
    if isinstance(layer, CONV_TYPES):
        output_shape = tuple(layer.compute_output_shape((1, *shape[1:])))
        positions = math.prod(output_shape[1:-1])
        kind = type(layer).__name__
    elif isinstance(layer, keras.layers.Dense):
        output_shape = (1, *shape[1:-1], kernel_shape[-1])
        positions = math.prod(shape[1:-1])
        kind = "Dense"
    else:
        raise TypeError(f"Cannot count the FLOPs of {type(layer).__name__} ({layer.path!r})")
    if any(d is None for d in output_shape[1:]):
        raise ValueError(f"Layer {layer.path!r} has an unknown spatial shape {shape}")
    return LayerFlops(
        path=layer.path,
        kind=kind,
        input_shape=(1, *shape[1:]),
        output_shape=output_shape,
        kernel_shape=kernel_shape,
        flops=2 * positions * math.prod(kernel_shape),
    )


def flops_table(module: keras.layers.Layer) -> list[LayerFlops]:
    """Every counted layer under `module` (itself included), in the order Keras tracks them."""
    rows = []
    for layer in module._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, (CONV_TYPES, keras.layers.Dense)):
            rows.append(layer_flops(layer))
    return rows


def module_flops(module: keras.layers.Layer) -> int:
    """Forward FLOPs of `module` on one image: the sum of `flops_table(module)`."""
    return sum(row.flops for row in flops_table(module))


def generator_flops(model, part: str = "train", batch_size: int = 1) -> int:
    """Forward FLOPs of a GroupDNet (or baseline) on `batch_size` images.

    Args:
        model: a built `GroupDNet` or baseline.
        part: "train" (encoder + decoder: the training forward, `model(inputs)`), "decoder"
            (`model.generate(labels, z=...)`: fc, the CGBlocks and the RGB convolution) or
            "encoder".
        batch_size: images.

    Examples:
        >>> model = build_architecture("groupdnet_shapes64")
        >>> generator_flops(model, "decoder") / 1e9  # GFLOPs per generated image
        0.866...
    """
    encoder = module_flops(model.encoder)
    decoder = sum(module_flops(m) for m in (model.fc, *model.blocks, model.conv_img))
    per_image = {"train": encoder + decoder, "decoder": decoder, "encoder": encoder}
    if part not in per_image:
        raise ValueError(f"`part` must be one of {tuple(per_image)}; received {part!r}")
    return per_image[part] * batch_size


def discriminator_flops(discriminator, batch_size: int = 1, input_shape=None) -> int:
    """Forward FLOPs of a `MultiScaleDiscriminator` on `batch_size` images (all scales).

    Args:
        discriminator: built, or not built with `input_shape` given (an unbuilt one is counted
            on a built copy, so it stays unbuilt for `SMISTrainer` to build).
        batch_size: images.
        input_shape: (batch, H, W, condition channels + 3); required when `discriminator` is not
            built.

    Examples:
        >>> d = MultiScaleDiscriminator(num_scales=2, num_layers=4, base_filters=32)
        >>> discriminator_flops(d, input_shape=discriminator_input_shape(model))
    """
    if not discriminator.built:
        if input_shape is None:
            raise ValueError(
                "The discriminator is not built: pass its input_shape (batch, H, W, condition "
                "channels + 3), e.g. discriminator_input_shape(generator)"
            )
        discriminator = type(discriminator).from_config(discriminator.get_config())
        discriminator.build(tuple(input_shape))
    return module_flops(discriminator) * batch_size


def discriminator_input_shape(generator) -> tuple:
    """The discriminator's input shape for `generator`: (None, H, W, condition channels + 3)."""
    return (None, *generator.image_size, generator.condition_channels + 3)


def train_step_flops(generator, discriminator, batch_size: int) -> dict[str, int]:
    """FLOPs of one `SMISTrainer` step (G step + D step) on a batch, by the table above.

    Returns a dict with "generator_forward" (F_G), "discriminator_forward" (F_D), both per
    batch, and "total" = 4 F_G + 9 F_D.

    Examples:
        >>> step = train_step_flops(model, MultiScaleDiscriminator(), batch_size=16)
        >>> step["total"] / 1e9  # GFLOPs of one G + D training step
    """
    f_g = generator_flops(generator, "train", batch_size)
    f_d = discriminator_flops(discriminator, batch_size, discriminator_input_shape(generator))
    return {
        "generator_forward": f_g,
        "discriminator_forward": f_d,
        "total": TRAIN_STEP_GENERATOR_FORWARDS * f_g + TRAIN_STEP_DISCRIMINATOR_FORWARDS * f_d,
    }


def parameter_count(module: keras.layers.Layer) -> int:
    """Trainable parameters of `module`."""
    return sum(math.prod(v.shape) for v in module.trainable_weights)
