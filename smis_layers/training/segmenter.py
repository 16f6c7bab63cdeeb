"""Trains the synthetic benchmark's evaluation segmenter (`ShapesSegmenter`)."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from smis_layers.data.synthetic import HELD_OUT_SEED, SyntheticShapes, synthetic_tf_dataset
from smis_layers.metrics.segmentation import SegmentationScores
from smis_layers.models.segmenter import ShapesSegmenter
from smis_layers.utils.validation import require_positive_int


def evaluate_segmenter(
    segmenter: ShapesSegmenter,
    dataset: SyntheticShapes,
    num_images: int,
    batch_size: int = 32,
    start: int = 0,
) -> dict[str, float]:
    """mIoU, pixel accuracy and mean class accuracy of `segmenter` on `num_images` real images
    of `dataset` (samples `start`, `start + 1`, ...)."""
    require_positive_int("num_images", num_images)
    metric = SegmentationScores(segmenter.num_classes)
    for offset in range(0, num_images, batch_size):
        indices = np.arange(start + offset, start + min(offset + batch_size, num_images))
        batch = dataset.batch(indices)
        metric.update_state(batch["masks"], segmenter.predict_labels(batch["images"], batch_size))
    return {k: float(keras.ops.convert_to_numpy(v)) for k, v in metric.result().items()}


def augment_images(images, seed):
    """Training augmentation (TensorFlow ops, deterministic given the int64 `seed` pair): per
    image, Gaussian pixel noise with a standard deviation drawn in [0, 0.08], a colour shift in
    [-0.08, 0.08] per channel and, with probability 0.3, a 3x3 box blur; clipped to [-1, 1].

    The benchmark's classes have fixed palettes, so exact pixel colours identify a class on real
    images (docs/evaluation.md); the augmentation makes the segmenter read shapes and
    approximate colours, as it must on generated images."""
    import tensorflow as tf

    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, 4)
    noise_std = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[0], 0.0, 0.08)
    noise = tf.random.stateless_normal(tf.shape(images), seeds[1]) * noise_std
    shift = tf.random.stateless_uniform([batch, 1, 1, 3], seeds[2], -0.08, 0.08)
    blur = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[3]) < 0.3
    blurred = tf.nn.avg_pool2d(images, 3, 1, "SAME")
    images = tf.where(blur, blurred, images) + noise + shift
    return tf.clip_by_value(images, -1.0, 1.0)


def class_weights(dataset: SyntheticShapes, num_images: int = 512) -> np.ndarray:
    """Per-class loss weights 1 / sqrt(frequency), from the pixel frequencies of `num_images`
    samples of `dataset`, scaled so that the mean weight of a pixel is 1 (float32, (C,))."""
    masks = dataset.batch(np.arange(num_images))["masks"]
    frequency = np.bincount(masks.ravel(), minlength=dataset.num_classes) / masks.size
    weights = 1.0 / np.sqrt(np.maximum(frequency, 1e-4))
    return (weights / (frequency * weights).sum()).astype("float32")


class _ValidationCurve(keras.callbacks.Callback):
    """Validation mIoU every `every` steps (its own time is excluded from the training time)."""

    def __init__(self, dataset: SyntheticShapes, num_images: int, every: int):
        super().__init__()
        self.dataset, self.num_images, self.every = dataset, num_images, every
        self.points: list[dict] = []
        self.seconds = 0.0

    def on_train_batch_end(self, batch, logs=None):
        step = batch + 1
        if not self.every or step % self.every:
            return
        start = time.perf_counter()
        scores = evaluate_segmenter(self.model, self.dataset, self.num_images)
        self.seconds += time.perf_counter() - start
        point = {"step": step, "loss": float((logs or {}).get("loss", float("nan")))}
        point.update({k: round(v, 4) for k, v in scores.items()})
        self.points.append(point)
        print(f"step {step}: validation {point}", flush=True)


def train_segmenter(
    out_dir: str | os.PathLike | None,
    steps: int = 1500,
    batch_size: int = 16,
    seed: int = 0,
    num_classes: int = 8,
    image_size: int = 64,
    filters: Sequence[int] = (24, 40, 72, 104),
    patch_size: int = 2,
    learning_rate: float = 3e-3,
    class_weighting: bool = False,
    augment: bool = False,
    validation_images: int = 256,
    validation_every: int = 0,
    verbose: int = 1,
    overwrite: bool = False,
) -> tuple[ShapesSegmenter, dict]:
    """Trains a `ShapesSegmenter` on `SyntheticShapes(image_size, num_classes, seed=seed)` with
    pixel-wise cross-entropy and validates it on held-out real images
    (`SyntheticShapes(..., seed=HELD_OUT_SEED)`).

    Adam with a cosine decay of `learning_rate` to 0 over `steps`; every batch is a fresh
    sample of the procedural dataset (samples 0, 1, 2, ... of the training seed).

    Args:
        out_dir: preset folder to save to (`smis_layers.presets.save_preset`), or None.
        steps / batch_size: optimization steps and images per step.
        seed: training data and initialization seed.
        num_classes / image_size: of the synthetic benchmark.
        filters / patch_size: the segmenter's stage widths and space-to-depth block.
        learning_rate: peak Adam learning rate.
        class_weighting: weight each pixel's loss by `class_weights(dataset)` (inverse square
            root of the class frequency), which speeds up learning the small classes (mIoU).
        augment: train on `augment_images` of the images (noise, colour shift, blur), so that
            the segmenter cannot rely on the benchmark's exact colours and stays usable on
            generated images.
        validation_images: held-out images for the reported mIoU / pixel accuracy.
        validation_every: also validate every this many steps (on `validation_images // 4`
            images; 0: only at the end); the curve is kept in the metadata.
        verbose: Keras `fit` verbosity.
        overwrite: replace an existing preset in `out_dir`.

    Returns:
        (segmenter, metadata) where metadata holds the training call, wall time and the
        validation scores (also written to the preset's metadata.json).

    Examples:
        >>> segmenter, info = train_segmenter("zoo/segmenter_shapes64", steps=1500)
        >>> info["validation"]["miou"]
    """
    require_positive_int("steps", steps)
    require_positive_int("batch_size", batch_size)
    require_positive_int("validation_images", validation_images)
    keras.utils.set_random_seed(seed)
    train_data = SyntheticShapes(image_size=image_size, num_classes=num_classes, seed=seed)
    if seed == HELD_OUT_SEED:
        raise ValueError(f"`seed` must differ from the validation seed {HELD_OUT_SEED}")
    weights = class_weights(train_data) if class_weighting else None

    def to_inputs(index, batch):
        import tensorflow as tf

        images = batch["images"]
        if augment:
            images = augment_images(images, tf.stack([tf.cast(seed, tf.int64), index]))
        if weights is None:
            return images, batch["masks"]
        return images, batch["masks"], tf.gather(tf.constant(weights), batch["masks"])

    dataset = synthetic_tf_dataset(train_data, batch_size).enumerate().map(to_inputs)
    segmenter = ShapesSegmenter(
        num_classes, filters=filters, patch_size=patch_size, name="segmenter"
    )
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    segmenter.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    validation_data = dataclasses.replace(train_data, seed=HELD_OUT_SEED)
    curve = _ValidationCurve(validation_data, max(1, validation_images // 4), validation_every)
    start = time.perf_counter()
    history = segmenter.fit(
        dataset,
        epochs=1,
        steps_per_epoch=steps,
        verbose=verbose,
        callbacks=[curve],
        shuffle=False,
    )
    wall_time = time.perf_counter() - start - curve.seconds
    scores = evaluate_segmenter(segmenter, validation_data, validation_images)
    arguments = {
        "steps": steps,
        "batch_size": batch_size,
        "seed": seed,
        "num_classes": num_classes,
        "image_size": image_size,
        "filters": list(filters),
        "patch_size": patch_size,
        "learning_rate": learning_rate,
        "class_weighting": class_weighting,
        "augment": augment,
        "validation_images": validation_images,
        "validation_every": validation_every,
    }
    call = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    metadata = {
        "description": (
            f"Segmenter of the synthetic benchmark, {image_size}x{image_size}: the evaluation "
            "network of domain FID and mIoU"
        ),
        "task": "segmentation of the synthetic benchmark (evaluation network)",
        "training": {
            "function": "smis_layers.training.segmenter.train_segmenter",
            "call": f"train_segmenter({str(out_dir)!r}, {call})",
            "arguments": arguments,
            "dataset": repr(train_data),
            "loss": "pixel-wise softmax cross-entropy",
            "optimizer": f"Adam, cosine decay from {learning_rate} to 0",
            "steps": steps,
            "batch_size": batch_size,
            "wall_time_s": round(wall_time, 1),
            "validation_curve": curve.points,
            "validation_curve_time_s": round(curve.seconds, 1),
            "final_loss": float(history.history["loss"][-1]),
            "keras_backend": keras.backend.backend(),
        },
        "validation": {
            "dataset": repr(validation_data),
            "images": validation_images,
            **{k: round(v, 5) for k, v in scores.items()},
        },
    }
    if out_dir is not None:
        from smis_layers.presets import save_preset

        # An uncompiled copy: the preset's config then holds no optimizer or loss.
        export = ShapesSegmenter.from_config(segmenter.get_config())
        export.set_weights(segmenter.get_weights())
        save_preset(export, Path(out_dir), metadata=metadata, overwrite=overwrite)
    return segmenter, metadata
