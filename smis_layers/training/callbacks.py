"""Training callbacks: TensorBoard image grids of the generator's progress."""

from __future__ import annotations

import keras
import numpy as np

from smis_layers.utils.deprecation import renamed_keywords
from smis_layers.utils.images import colourize, image_grid, to_uint8


@renamed_keywords(masks="labels")
def progress_grid(generator, images, labels, resample_class: int, seed: int = 0) -> np.ndarray:
    """One uint8 sheet: labels | real | reconstruction (real image's codes) | random sample |
    the reconstruction with only `resample_class`'s code redrawn."""
    mu, _ = generator.encode(images, labels)
    random_z = generator.sample_z(len(images), seed=seed)
    lo, hi = generator.class_channels(resample_class)
    resampled = generator.with_class_code(mu, resample_class, random_z[..., lo:hi])
    rows = [
        colourize(np.asarray(labels)),
        to_uint8(images),
        to_uint8(generator.generate(labels, z=mu)),
        to_uint8(generator.generate(labels, z=random_z)),
        to_uint8(generator.generate(labels, z=resampled)),
    ]
    return image_grid(rows)


class ImageGridLogger(keras.callbacks.Callback):
    """Every `every_n_steps` steps, writes the training losses as TensorBoard scalars and the
    `progress_grid` of fixed samples as a TensorBoard image (TensorFlow backend).

    Args:
        log_dir: TensorBoard folder.
        images: (N, H, W, 3) fixed real images in [-1, 1].
        labels: (N, H, W) their label maps.
        every_n_steps: logging period in training steps.
        resample_class: the class whose code is redrawn in the last row.

    Examples:
        >>> batch = SyntheticShapes(64, seed=1).batch(np.arange(4))
        >>> logger = ImageGridLogger("runs/x/logs", batch["images"], batch["masks"],
        ...                          every_n_steps=100)
        >>> trainer.fit(dataset, epochs=1, steps_per_epoch=1000, callbacks=[logger])
    """

    @renamed_keywords(masks="labels")
    def __init__(self, log_dir, images, labels, every_n_steps: int = 100, resample_class: int = 1):
        super().__init__()
        try:
            import tensorboard  # noqa: F401
        except ImportError as error:
            raise ImportError(
                "ImageGridLogger writes TensorBoard summaries and needs the tensorboard package: "
                'pip install "smis-layers[tensorboard]"'
            ) from error
        try:
            import tensorflow  # noqa: F401
        except ImportError as error:
            raise ImportError(
                "ImageGridLogger writes its summaries with TensorFlow's tf.summary, which is not "
                "installed (training itself runs on any backend)"
            ) from error
        self.log_dir = str(log_dir)
        self.images = np.asarray(images, "float32")
        self.labels = np.asarray(labels)
        self.every_n_steps = every_n_steps
        self.resample_class = resample_class
        self._writer = None

    def _summary_writer(self):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        return self._writer

    def on_train_batch_end(self, batch, logs=None):
        import tensorflow as tf

        step = int(self.model.g_optimizer.iterations.numpy())
        if step % self.every_n_steps:
            return
        grid = progress_grid(self.model.generator, self.images, self.labels, self.resample_class)
        with self._summary_writer().as_default(step=step):
            for name, value in (logs or {}).items():
                tf.summary.scalar(name, float(value))
            tf.summary.image("labels|real|reconstruction|sample|class resampled", grid[None])
        self._writer.flush()
