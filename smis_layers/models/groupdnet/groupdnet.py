from __future__ import annotations

import operator
from collections.abc import Callable, Sequence

import keras
import numpy as np
from keras import ops

from smis_layers.layers.cg_block import CGBlock
from smis_layers.layers.class_mask_split import MODES as SPLIT_MODES
from smis_layers.layers.class_mask_split import ClassMaskSplit
from smis_layers.layers.group_conv2d import GroupConv2D
from smis_layers.layers.group_conv_encoder import GroupConvEncoder
from smis_layers.layers.group_decreasing_schedule import GroupDecreasingSchedule
from smis_layers.layers.normalization import NORMS
from smis_layers.models.groupdnet.groupdnet_presets import official_config
from smis_layers.models.groupdnet.synthesizer import Synthesizer
from smis_layers.models.region_codes import (
    REGION_COLOUR_CHANNELS,
    REGION_COLOUR_LOGVAR,
    REGION_TEXTURE_CHANNELS,
    REGION_TEXTURE_MAX_WAVES,
    region_mean_colours,
    region_texture_waves,
    texture_carriers,
)
from smis_layers.models.segmaps import (
    instance_edge_map,
    pair_with_instance_edges,
    prepare_segmap,
)
from smis_layers.utils.deprecation import renamed_keywords, warn_deprecated
from smis_layers.utils.validation import (
    check_image_range,
    require_choice,
    require_float_dtype,
    require_int_pair,
    require_positive_int,
)


def _replica_position():
    """(num_replicas_in_sync, replica id) of the current tf.distribute replica context."""
    if keras.backend.backend() != "tensorflow":
        return 1, 0
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return 1, 0
    return context.num_replicas_in_sync, context.replica_id_in_sync_group


@keras.saving.register_keras_serializable(package="smis_layers")
class GroupDNet(keras.Model):
    """GroupDNet: the group decreasing network for semantically multi-modal image synthesis.

    Encoder: `ClassMaskSplit` -> `GroupConvEncoder`, one latent code of `latent_channels`
    channels per class (class `c` owns latent channels `8c..8c+7` at the official setting).
    Decoder (from a `GroupDecreasingSchedule`): a grouped 3x3 convolution `fc` from the code, the
    `CGBlock`s (`head_0`, `G_middle_0`, ..., `up_3`; nearest x2 upsampling before those that ask
    for it), LeakyReLU(0.2), a 3x3 convolution `conv_img` to RGB and tanh. Every CGNorm is
    conditioned on the full-resolution `condition`: the one-hot segmap, paired with the
    instance-edge map when `use_instance_edges`, as the official Cityscapes network does.

    `labels` are integer label maps (B, H, W) / (B, H, W, 1); their one-hot segmap (B, H, W, C)
    is accepted in their place. Images are (B, H, W, 3) in [-1, 1].

    Args:
        num_classes: C.
        image_size: (height, width) of the images, or an int for square images.
        schedule: the decoder; default `GroupDecreasingSchedule.decreasing(num_classes,
            base_filters=16, image_size=image_size)`.
        encoder_channels: width of the encoder's first layer (divisible by C); default 4C.
        encoder_layers: stride-2 layers of the encoder; default so that the encoder's output
            size equals the schedule's latent size.
        split_mode: `ClassMaskSplit` mode, "crop_resize" (official) or "mask" (paper).
        norm: parameter-free normalization inside CGNorm ("batch", "sync_batch", "instance").
        encoder_norm: normalization of the encoder ("instance" officially).
        spectral_norm: spectral normalization of the CGBlock and encoder convolutions.
        use_instance_edges: condition CGNorm on (class channel, instance edges) pairs (2C).
        region_colour_code: not in the paper (default False, as in the official networks):
            the first 3 of each class's latent channels are the mean RGB of the class's
            region, computed from the image and not sampled in training (their `logvar` is
            `REGION_COLOUR_LOGVAR`); the encoder's code fills the other channels. Every class's
            colour then reaches the decoder from the first step, which keeps every class's
            code in use (docs/zoo.md). At generation such channels are drawn like the others
            (the fitted code prior learns the data's colours). Needs per-class codes and at
            least 4 latent channels per class.
        region_texture_code: not in the paper (default False, 0): the number of texture waves
            each class's code holds, 1 (True) or 2. The 4 latent channels per wave after the
            colour channels hold its region's dominant texture wave (and with 2 the strongest
            in another direction, a checker's second diagonal), measured from the image
            (`region_codes.region_texture_waves`: wave vector and complex amplitude) and not
            sampled in training, and the decoder's CGNorms see the waves' sum drawn at full
            resolution inside the region (`texture_carriers`), paired with the class's
            condition channels: a decoder fed only a constant code and the label map cannot
            place stripes of a given angle and phase. Generation draws these channels like
            the others, so a class's code sets its texture. Needs per-class codes and more
            latent channels per class than the colour and texture channels together (two
            waves and the colour: 12, `latent=12` in a small spec).
        lowering: grouped-convolution lowering, see `GroupConv2D`.
        seed: seed of the model's `keras.random.SeedGenerator` (training-time sampling).
        **kwargs: `keras.Model` keyword arguments (`name`, `dtype`, ...).

    Examples:
        >>> model = GroupDNet(num_classes=4, image_size=32, schedule=GroupDecreasingSchedule
        ...                   .decreasing(4, base_filters=4, image_size=32))
        >>> labels = np.random.randint(0, 4, (2, 32, 32))
        >>> model.generate(labels, seed=0).shape
        (2, 32, 32, 3)
        >>> # not in the paper: each class's code also carries its region's mean colour
        >>> coloured = GroupDNet(num_classes=4, image_size=32, region_colour_code=True,
        ...                      schedule=model.schedule)
        >>> images = np.random.uniform(-1, 1, (2, 32, 32, 3))
        >>> mu, _ = coloured.encode(images, labels)  # mu[..., 8c:8c+3]: class c's mean RGB

    Reference:
        Zhu et al., "Semantically Multi-modal Image Synthesis", CVPR 2020.
    """

    #: True: per-class codes. The encoder sees the `ClassMaskSplit` images (3C channels)
    #: through C groups, and class c's latent channels describe class c's region. False (VSPADE):
    #: one image-level code. The encoder sees the whole image through ordinary convolutions
    #: (a 1-group `GroupConvEncoder`), and no latent channel belongs to a class.
    class_owned_codes = True

    def __init__(
        self,
        num_classes: int,
        image_size: int | Sequence[int],
        schedule: GroupDecreasingSchedule | dict | None = None,
        encoder_channels: int | None = None,
        encoder_layers: int | None = None,
        split_mode: str = "crop_resize",
        norm: str = "batch",
        encoder_norm: str = "instance",
        spectral_norm: bool = True,
        use_instance_edges: bool = False,
        region_colour_code: bool = False,
        region_texture_code: bool | int = False,
        lowering: str = "auto",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = require_positive_int("num_classes", num_classes)
        self.image_size = require_int_pair("image_size", image_size)
        if schedule is None:
            schedule = self.default_schedule(num_classes, self.image_size)
        elif isinstance(schedule, dict):
            schedule = GroupDecreasingSchedule.from_config(schedule)
        self.schedule = schedule
        self._validate_schedule()
        self._validate_optional_ints(
            encoder_channels=encoder_channels, encoder_layers=encoder_layers
        )
        self.encoder_channels = encoder_channels or 4 * num_classes
        self.encoder_layers = encoder_layers or self._default_encoder_layers()
        require_choice("split_mode", split_mode, SPLIT_MODES)
        require_choice("norm", norm, NORMS)
        self.split_mode = split_mode
        self.norm = norm
        self.encoder_norm = encoder_norm
        self.spectral_norm = bool(spectral_norm)
        self.use_instance_edges = bool(use_instance_edges)
        self.region_colour_code = bool(region_colour_code)
        self.region_texture_code = self._texture_waves(region_texture_code)
        self._validate_measured_channels()
        self.lowering = lowering
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.code_prior = None  # a FittedCodePrior for `sample_z`; presets may ship one

        self.class_mask_split = ClassMaskSplit(
            num_classes, mode=split_mode, name="class_mask_split"
        )
        self.encoder = self._make_encoder()
        self.fc = GroupConv2D(
            schedule.input_filters, 3, groups=schedule.input_groups, lowering=lowering, name="fc"
        )
        self.blocks = [
            CGBlock(
                spec.filters,
                spec.groups,
                norm_hidden_channels=spec.norm_hidden_channels,
                norm_shared_groups=spec.norm_shared_groups,
                norm_groups=spec.norm_groups,
                norm=norm,
                spectral_norm=spectral_norm,
                lowering=lowering,
                name=spec.name,
            )
            for spec in schedule.blocks
        ]
        self.upsample = keras.layers.UpSampling2D(2, interpolation="nearest", name="up")
        self.conv_img = self._make_output_conv()
        self._build_all()

    @classmethod
    def official(cls, dataset: str, **overrides) -> GroupDNet:
        """The official GroupDNet architecture for "deepfashion", "cityscapes" or "ade20k".

        Keyword arguments override the official constructor arguments (e.g. `norm`).
        """
        return cls(**{**official_config(dataset), **overrides})

    @classmethod
    def from_preset(cls, name_or_path) -> GroupDNet:
        """Loads a preset folder (or zoo name) after verifying its files' sha256."""
        from smis_layers.presets import load_preset

        return load_preset(name_or_path, expected_class=cls)

    def save_to_preset(self, directory, metadata: dict | None = None, overwrite: bool = False):
        """Writes this model as a preset folder (config.json, model.weights.h5, metadata.json)."""
        from smis_layers.presets import save_preset

        return save_preset(self, directory, metadata=metadata, overwrite=overwrite)

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters of the encoder and of the generator (fc, blocks, conv_img)."""

        def count(layers):
            return sum(int(np.prod(v.shape)) for layer in layers for v in layer.trainable_weights)

        return {
            "encoder": count([self.encoder]),
            "generator": count([self.fc, *self.blocks, self.conv_img]),
        }

    # ------------------------------------------------------------------ variation points
    @classmethod
    def default_schedule(cls, num_classes: int, image_size) -> GroupDecreasingSchedule:
        """The decoder used when no `schedule` is given."""
        return GroupDecreasingSchedule.decreasing(num_classes, 16, image_size)

    @property
    def encoder_groups(self) -> int:
        """The encoder's groups: C for per-class codes, 1 for an image-level code."""
        return self.num_classes if self.class_owned_codes else 1

    @property
    def encoder_input_channels(self) -> int:
        return 3 * self.encoder_groups

    def _make_encoder(self) -> keras.layers.Layer:
        groups = self.encoder_groups
        return GroupConvEncoder(
            groups,
            self.encoder_channels,
            self.encoder_layers,
            latent_channels=self.schedule.latent_channels * self.num_classes // groups,
            spectral_norm=self.spectral_norm,
            norm=self.encoder_norm,
            lowering=self.lowering,
            name="encoder",
        )

    def _encoder_input(self, images, segmap):
        return self.class_mask_split(images, segmap) if self.class_owned_codes else images

    def _make_output_conv(self) -> keras.layers.Layer:
        return GroupConv2D(3, 3, lowering=self.lowering, name="conv_img")

    def _compose_output(self, x, segmap):
        return ops.tanh(x)

    # ------------------------------------------------------------------ construction
    @staticmethod
    def _validate_optional_ints(**values):
        for name, value in values.items():
            if value is not None:
                require_positive_int(name, value)

    def _validate_schedule(self):
        if not isinstance(self.schedule, GroupDecreasingSchedule):
            raise TypeError(
                "`schedule` must be a GroupDecreasingSchedule, its config dict or None; "
                f"received {type(self.schedule).__name__}"
            )
        if self.schedule.num_classes != self.num_classes:
            raise ValueError(
                f"`schedule.num_classes` ({self.schedule.num_classes}) must equal `num_classes` "
                f"({self.num_classes})"
            )
        if self.schedule.output_size != self.image_size:
            raise ValueError(
                f"The schedule generates {self.schedule.output_size} images (latent "
                f"{self.schedule.latent_size} x 2**{self.schedule.num_upsamplings}); "
                f"`image_size` is {self.image_size}"
            )

    @staticmethod
    def _texture_waves(region_texture_code) -> int:
        """`region_texture_code` as its number of waves (False 0, True 1), validated."""
        try:
            waves = operator.index(region_texture_code)  # bools and NumPy integers too
        except TypeError:
            waves = None
        if waves is None or not 0 <= waves <= REGION_TEXTURE_MAX_WAVES:
            raise ValueError(
                "`region_texture_code` must be False, True or a number of texture waves "
                f"per class from 0 to {REGION_TEXTURE_MAX_WAVES}; received {region_texture_code!r}"
            )
        return waves

    def _validate_measured_channels(self):
        options = [
            name
            for name, on in (
                ("region_colour_code", self.region_colour_code),
                ("region_texture_code", self.region_texture_code),
            )
            if on
        ]
        if not options:
            return
        switched = " and ".join(f"`{name}`" for name in options)
        if not self.class_owned_codes:
            raise ValueError(
                f"{switched} needs per-class codes; {type(self).__name__}'s code belongs to no "
                "class"
            )
        if self.schedule.latent_channels <= self.measured_code_channels:
            raise ValueError(
                f"{switched} needs more than {self.measured_code_channels} latent channels per "
                f"class; the schedule has {self.schedule.latent_channels} (the encoder's code "
                "fills the channels after the measured ones)"
            )

    def _validate_condition_groups(self):
        """Every CGNorm's shared convolution splits what it sees (C channels; one more per
        class with instance edges, and another with `region_texture_code`) into
        `norm_shared_groups` groups."""
        for spec in self.schedule.blocks:
            if self.decoder_condition_channels % spec.norm_shared_groups:
                raise ValueError(
                    f"Block {spec.name}: `norm_shared_groups` ({spec.norm_shared_groups}) must "
                    "divide the condition channels CGNorm sees "
                    f"({self.decoder_condition_channels}: num_classes={self.num_classes}, "
                    f"use_instance_edges={self.use_instance_edges}, "
                    f"region_texture_code={self.region_texture_code})"
                )

    def _default_encoder_layers(self) -> int:
        ratio = self.image_size[0] // self.schedule.latent_size[0]
        return max(1, ratio.bit_length() - 1)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(h, w, latent_channels * C) of one sample's code."""
        return (*self.schedule.latent_size, self.schedule.latent_channels * self.num_classes)

    @property
    def region_colour_channels(self) -> int:
        """Leading channels of every class's code that hold its region's mean RGB:
        `REGION_COLOUR_CHANNELS` with `region_colour_code`, else 0.

        Examples:
            >>> model = GroupDNet(num_classes=4, image_size=32, region_colour_code=True)
            >>> k, width = model.schedule.latent_channels, model.region_colour_channels  # 8, 3
            >>> colours = model.sample_z(2, seed=0)[..., 2 * k : 2 * k + width]  # class 2's RGB
        """
        return REGION_COLOUR_CHANNELS if self.region_colour_code else 0

    @property
    def region_texture_channels(self) -> int:
        """Channels of every class's code, after its colour channels, that hold its region's
        texture waves: `REGION_TEXTURE_CHANNELS` per wave of `region_texture_code`, else 0."""
        return REGION_TEXTURE_CHANNELS * self.region_texture_code

    @property
    def measured_code_channels(self) -> int:
        """Leading channels of every class's code measured from the image (colour, then
        texture) rather than encoded; the encoder's code fills the rest."""
        return self.region_colour_channels + self.region_texture_channels

    @property
    def condition_channels(self) -> int:
        """Channels of the decoder's condition, which CGNorm sees (2C with instance edges)."""
        return (2 if self.use_instance_edges else 1) * self.num_classes

    @property
    def decoder_condition_channels(self) -> int:
        """Channels CGNorm sees: the condition's, plus every class's texture carrier with
        `region_texture_code` (`decoder_condition`)."""
        return self.condition_channels + (self.num_classes if self.region_texture_code else 0)

    @property
    def mask_channels(self) -> int:
        """Deprecated alias of `condition_channels`."""
        warn_deprecated("`GroupDNet.mask_channels` is now `GroupDNet.condition_channels`")
        return self.condition_channels

    def _build_all(self):
        self._validate_condition_groups()
        height, width = self.image_size
        c = self.num_classes
        self.class_mask_split.build((None, height, width, 3), (None, height, width, c))
        encoder_input = (None, height, width, self.encoder_input_channels)
        self.encoder.build(encoder_input)
        encoded = self.encoder.compute_output_shape(encoder_input)[0]
        if tuple(encoded[1:3]) != self.schedule.latent_size:
            raise ValueError(
                f"The encoder ({self.encoder_layers} stride-2 layers) maps {self.image_size} "
                f"images to {tuple(encoded[1:3])} codes but the schedule's latent size is "
                f"{self.schedule.latent_size}; change `encoder_layers`"
            )
        condition_shape = (None, height, width, self.decoder_condition_channels)
        self.fc.build((None, *self.latent_shape))
        channels, (h, w) = self.schedule.input_filters, self.schedule.latent_size
        for spec, block in zip(self.schedule.blocks, self.blocks, strict=True):
            if spec.upsample:
                if not self.upsample.built:
                    self.upsample.build((None, h, w, channels))
                h, w = 2 * h, 2 * w
            block.build((None, h, w, channels), condition_shape)
            channels = spec.filters
        self.conv_img.build((None, h, w, channels))
        self.built = True

    # ------------------------------------------------------------------ inputs
    @renamed_keywords(masks="labels")
    def segmap(self, labels):
        """One-hot (B, H, W, C) segmap of label maps (a segmap is returned as it is, cast)."""
        return prepare_segmap(labels, self.num_classes, dtype=self.compute_dtype)

    def condition_segmap(self, segmap, instance_ids=None, instance_edges=None):
        """The decoder's `condition`, which CGNorm and the discriminator see: the segmap,
        paired with the instance-edge map (from `instance_ids` or given `instance_edges`) for
        models with `use_instance_edges`."""
        if not self.use_instance_edges:
            return segmap
        if instance_edges is None:
            if instance_ids is None:
                raise ValueError(
                    "This GroupDNet conditions on instance edges (use_instance_edges=True): "
                    "pass `instances` (instance id map) or `instance_edges`"
                )
            instance_edges = instance_edge_map(instance_ids, dtype=segmap.dtype)
        if len(instance_edges.shape) == 3:
            instance_edges = ops.expand_dims(instance_edges, -1)
        return pair_with_instance_edges(segmap, ops.cast(instance_edges, segmap.dtype))

    # ------------------------------------------------------------------ networks
    def encode_segmap(self, images, segmap, training=None):
        """(mu, logvar) of one-hot `segmap` and images."""
        mu, logvar = self.encoder(self._encoder_input(images, segmap), training=training)
        measured = []
        if self.region_colour_code:
            measured.append(region_mean_colours(images, segmap))
        if self.region_texture_code:
            measured.append(region_texture_waves(images, segmap, waves=self.region_texture_code))
        if measured:
            mu, logvar = self._with_measured_channels(mu, logvar, measured)
        return mu, logvar

    def _with_measured_channels(self, mu, logvar, measured):
        """`mu` / `logvar` whose leading channels of every class hold `measured` ((B, C, k)
        summaries of its region, in order) over the whole latent grid, with
        `REGION_COLOUR_LOGVAR`."""
        values = ops.cast(ops.concatenate(measured, axis=-1), mu.dtype)
        width = self.measured_code_channels
        mu, logvar = self._per_class(mu)[..., width:], self._per_class(logvar)[..., width:]
        values = ops.broadcast_to(values[:, None, None], (*ops.shape(mu)[:4], width))
        fixed = ops.full_like(values, REGION_COLOUR_LOGVAR)
        shape = (*ops.shape(mu)[:3], self.latent_shape[-1])
        mu = ops.reshape(ops.concatenate([values, mu], axis=-1), shape)
        logvar = ops.reshape(ops.concatenate([fixed, logvar], axis=-1), shape)
        return mu, logvar

    def _per_class(self, codes):
        """Codes (B, h, w, K) as (B, h, w, C, latent_channels): class c's at [..., c, :]."""
        shape = ops.shape(codes)
        return ops.reshape(codes, (*shape[:3], self.num_classes, self.schedule.latent_channels))

    @renamed_keywords(segmap="condition")
    def decode(self, z, condition, training=None):
        """Images from codes `z` (B, h, w, 8C) and the decoder's `condition` (the segmap, or
        the segmap paired with instance edges: `condition_segmap`)."""
        return self.render_features(self.decoder_features(z, condition, training), condition)

    @renamed_keywords(segmap="condition")
    def decoder_features(self, z, condition, training=None):
        """The last decoder block's output (B, H, W, filters) for codes `z`, before `conv_img`.
        Its channels are split in the last block's groups: in GroupNet and MulNet, group c
        depends on class c's code alone.

        Examples:
            >>> condition = model.segmap(labels)  # no instance edges
            >>> features = model.decoder_features(model.sample_z(len(labels), seed=0), condition)
            >>> images = model.render_features(features, condition)  # what `decode` returns
        """
        self._check_decode_inputs(z, condition)
        condition = self.decoder_condition(z, condition)
        x = self.fc(z)
        for spec, block in zip(self.schedule.blocks, self.blocks, strict=True):
            if spec.upsample:
                x = self.upsample(x)
            x = block(x, condition, training=training)
        return x

    def decoder_condition(self, z, condition):
        """What CGNorm sees: the `condition`, and with `region_texture_code` every class's
        texture waves from its code (the grid's mean of its texture channels) drawn inside the
        class's region, after the class's condition channels, so that CGNorm's per-class groups
        keep them together: (B, H, W, decoder_condition_channels).

        Examples:
            >>> model = GroupDNet(num_classes=4, image_size=32, region_texture_code=True)
            >>> condition = model.segmap(labels)  # (B, 32, 32, 4)
            >>> model.decoder_condition(model.sample_z(len(labels), seed=0), condition).shape
            (2, 32, 32, 8)
        """
        if not self.region_texture_code:
            return condition
        c = self.num_classes
        shape = ops.shape(condition)
        texture = self._per_class(z)[..., self.region_colour_channels : self.measured_code_channels]
        waves = ops.mean(texture, axis=(1, 2))
        carriers = ops.cast(texture_carriers(waves, self.image_size), condition.dtype)
        grouped = ops.reshape(condition, (*shape[:3], c, self.condition_channels // c))
        carriers = carriers * grouped[..., 0]  # the class's segmap channel
        paired = ops.concatenate([grouped, carriers[..., None]], axis=-1)
        return ops.reshape(paired, (*shape[:3], self.decoder_condition_channels))

    @renamed_keywords(segmap="condition")
    def render_features(self, features, condition):
        """Images in [-1, 1] from `decoder_features`: LeakyReLU(0.2), `conv_img` and tanh
        (MulNet composes its per-class images by the segmap's class channels).

        Examples:
            >>> images = model.render_features(model.decoder_features(z, condition), condition)
        """
        x = self.conv_img(ops.leaky_relu(features, negative_slope=0.2))
        return self._compose_output(x, condition)

    def call(self, inputs, training=None):
        """Training forward pass: encode, sample z, decode.

        Args:
            inputs: dict with "images" (B, H, W, 3), "masks" (the labels, or their segmap: the
                data batches' key, kept from 0.1.0) and, for
                models with instance edges, "instances" or "instance_edges".

        Returns:
            dict with "images" (generated), "mu", "logvar" and "z".
        """
        self._check_call_inputs(inputs)
        segmap = self.segmap(inputs["masks"])
        mu, logvar = self.encode_segmap(inputs["images"], segmap, training=training)
        z = self._sample_training_z(mu, logvar)
        condition = self.condition_segmap(
            segmap, inputs.get("instances"), inputs.get("instance_edges")
        )
        images = self.decode(z, condition, training=training)
        return {"images": images, "mu": mu, "logvar": logvar, "z": z}

    def training_prior_z(self, like, spatially_shared: bool = False):
        """Codes drawn from N(0, 1) in a training step, shaped like `like` (a batch of codes):
        the official sampling, from the model's seed generator (so a resumed run draws what an
        uninterrupted one draws), replica-aware like the posterior codes of `call`. Used by
        `SMISTrainer`'s `prior_gan_weight` and `latent_weight` terms.

        Args:
            like: a batch of codes (B, h, w, K) whose shape and dtype the draw takes.
            spatially_shared: draw one code per sample and repeat it over the h x w grid
                (False: every grid position draws its own, the official sampling; with
                `region_texture_code` the texture channels still draw one set of waves per
                class, as `sample_z` and the encoder give them).

        Examples:
            >>> out = model({"images": images, "masks": labels}, training=True)
            >>> fake = model.decode(model.training_prior_z(out["mu"]), model.segmap(labels))
        """
        zeros = ops.zeros_like(like[:, :1, :1, :] if spatially_shared else like)
        z = ops.broadcast_to(self._sample_training_z(zeros, zeros), ops.shape(like))
        if not self.region_texture_code or spatially_shared:
            return z
        per_class = self._per_class(z)
        start, end = self.region_colour_channels, self.measured_code_channels
        waves = ops.broadcast_to(
            per_class[:, :1, :1, :, start:end], ops.shape(per_class[..., start:end])
        )
        parts = [per_class[..., :start], waves, per_class[..., end:]]
        return ops.reshape(ops.concatenate(parts, axis=-1), ops.shape(z))

    def _sample_training_z(self, mu, logvar):
        """z = mu + eps * exp(logvar / 2). Under a tf.distribute strategy every replica holds the
        same seed state, so each draws the noise of the whole global batch and keeps its own
        rows: a replicated step draws what one device would draw for the global batch."""
        replicas, replica_id = _replica_position()
        if replicas == 1:
            return GroupConvEncoder.reparameterize(mu, logvar, seed=self.seed_generator)
        shape = ops.shape(mu)
        eps = keras.random.normal(
            (replicas * shape[0], *shape[1:]), dtype=mu.dtype, seed=self.seed_generator
        )
        eps = ops.reshape(eps, (replicas, shape[0], *shape[1:]))
        eps = ops.take(eps, replica_id, axis=0)
        return mu + eps * ops.exp(0.5 * logvar)

    # ------------------------------------------------------------------ user API (the task's)
    @property
    def synthesizer(self) -> Synthesizer:
        """The model's task: `generate`, `encode`, `sample_z`, the class-code editing and the
        compiled inference functions, on NumPy inputs. The methods below call it."""
        task = self.__dict__.get("_synthesizer")  # kept out of Keras's attribute tracking
        if task is None:
            task = self.__dict__["_synthesizer"] = Synthesizer(self)
        return task

    @renamed_keywords(masks="labels")
    def generate(
        self, labels, z=None, seed: int | None = None, instances=None, instance_edges=None
    ) -> np.ndarray:
        """Images (B, H, W, 3) in [-1, 1] for label maps `labels` and codes `z` (drawn if
        None); see `Synthesizer.generate`."""
        return self.synthesizer.generate(labels, z, seed, instances, instance_edges)

    @renamed_keywords(masks="labels")
    def encode(self, images, labels) -> tuple[np.ndarray, np.ndarray]:
        """(mu, logvar) of real images, as NumPy arrays; see `Synthesizer.encode`."""
        return self.synthesizer.encode(images, labels)

    def sample_z(
        self,
        batch_size: int,
        seed: int | None = None,
        spatially_shared: bool = False,
        prior: str = "auto",
    ) -> np.ndarray:
        """Random codes (batch_size, h, w, 8C); see `Synthesizer.sample_z`."""
        return self.synthesizer.sample_z(batch_size, seed, spatially_shared, prior)

    def inference_function(self, name: str) -> Callable:
        """`decode` or `encode_segmap` in inference mode, compiled for the backend; see
        `Synthesizer.inference_function`."""
        return self.synthesizer.inference_function(name)

    def class_code(self, z, class_index: int) -> np.ndarray:
        """Class `class_index`'s part of the codes: (..., latent_channels)."""
        return self.synthesizer.class_code(z, class_index)

    def with_class_code(self, z, class_index: int, code) -> np.ndarray:
        """A copy of `z` in which class `class_index`'s code is replaced by `code`."""
        return self.synthesizer.with_class_code(z, class_index, code)

    def class_channels(self, class_index: int) -> tuple[int, int]:
        """(first, end) latent channels owned by class `class_index`."""
        return self.synthesizer.class_channels(class_index)

    # ------------------------------------------------------------------ validation
    # The NumPy entry points (the synthesizer's) check shapes and values; `call` and `decode`
    # (also traced inside `fit`) check static shapes, and values only for concrete tensors.
    def _check_call_inputs(self, inputs):
        """Static checks of `call`'s dict (values too when the tensors are concrete)."""
        if not isinstance(inputs, dict) or "images" not in inputs or "masks" not in inputs:
            keys = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
            raise ValueError(
                f"GroupDNet's `inputs` must be a dict with 'images' and 'masks'; received {keys}"
            )
        images, labels = inputs["images"], inputs["masks"]
        image_shape, labels_shape = tuple(images.shape), tuple(labels.shape)
        height, width = self.image_size
        if len(image_shape) != 4 or not _matches(image_shape[1:], (height, width, 3)):
            raise ValueError(
                f"`inputs['images']` must be (batch, {height}, {width}, 3); received shape "
                f"{image_shape}"
            )
        if len(labels_shape) not in (3, 4) or not _matches(labels_shape[1:3], (height, width)):
            raise ValueError(
                f"`inputs['masks']` must be (batch, {height}, {width}[, C or 1]); received shape "
                f"{labels_shape}"
            )
        if None not in (image_shape[0], labels_shape[0]) and image_shape[0] != labels_shape[0]:
            raise ValueError(
                "`inputs['images']` and `inputs['masks']` must have the same batch size; "
                f"received shapes {image_shape} and {labels_shape}"
            )
        require_float_dtype("inputs['images']", images.dtype)
        concrete = _concrete(images)
        if concrete is not None:
            check_image_range("inputs['images']", concrete, warn_unit_range=False)

    def _check_decode_inputs(self, z, condition):
        shape = tuple(z.shape)
        if len(shape) != 4 or shape[1:] != tuple(self.latent_shape):
            raise ValueError(
                f"`z` must be (batch, {', '.join(str(v) for v in self.latent_shape)}); received "
                f"shape {shape}"
            )
        condition_shape = tuple(condition.shape)
        channels = self.condition_channels
        if len(condition_shape) != 4 or condition_shape[-1] != channels:
            raise ValueError(
                f"The decoder's `condition` must be (batch, height, width, {channels}); "
                f"received shape {condition_shape}"
            )
        if None not in (shape[0], condition_shape[0]) and shape[0] != condition_shape[0]:
            raise ValueError(
                f"`z` and `condition` must have the same batch size; received shapes {shape} "
                f"and {condition_shape}"
            )

    # ------------------------------------------------------------------ serialization
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "image_size": list(self.image_size),
                "schedule": self.schedule.get_config(),
                "encoder_channels": self.encoder_channels,
                "encoder_layers": self.encoder_layers,
                "split_mode": self.split_mode,
                "norm": self.norm,
                "encoder_norm": self.encoder_norm,
                "spectral_norm": self.spectral_norm,
                "use_instance_edges": self.use_instance_edges,
                "region_colour_code": self.region_colour_code,
                "region_texture_code": self.region_texture_code,
                "lowering": self.lowering,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _matches(shape: tuple, expected: tuple) -> bool:
    """Whether a static shape equals `expected`, unknown (None) dimensions matching anything."""
    return len(shape) == len(expected) and all(
        a is None or a == b for a, b in zip(shape, expected, strict=True)
    )


def _concrete(tensor) -> np.ndarray | None:
    """The values of an eager tensor or array; None for symbolic tensors (inside `fit`)."""
    if isinstance(tensor, np.ndarray):
        return tensor
    if isinstance(tensor, keras.KerasTensor):
        return None
    try:
        return np.asarray(ops.convert_to_numpy(tensor))
    except Exception:  # a symbolic tensor of a traced function
        return None


def __getattr__(name: str):
    """Deprecated alias: `check_label_values` moved to `smis_layers.models.segmaps`."""
    if name != "check_label_values":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import warnings

    from smis_layers.models import segmaps

    warnings.warn(
        "`smis_layers.models.groupdnet.groupdnet.check_label_values` moved to "
        "`smis_layers.models.segmaps.check_label_values`; the old name will be removed in the "
        "next release",
        DeprecationWarning,
        stacklevel=2,
    )
    return segmaps.check_label_values
