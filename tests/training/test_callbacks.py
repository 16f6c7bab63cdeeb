import warnings

import numpy as np
import pytest

from smis_layers.data import SyntheticShapes, synthetic_tf_dataset
from smis_layers.training.callbacks import ImageGridLogger, progress_grid
from tests.helpers import BACKEND
from tests.training.test_trainer import tiny_trainer

pytestmark = pytest.mark.skipif(BACKEND != "tensorflow", reason="the trainer needs TensorFlow")


def test_image_grid_logger_writes_scalars_and_images(tmp_path):
    import tensorflow as tf

    trainer = tiny_trainer()
    trainer.compile()
    batch = SyntheticShapes(64, seed=5).batch(np.arange(3))
    grid = progress_grid(trainer.generator, batch["images"], batch["masks"], resample_class=1)
    assert grid.shape == (5 * 66 + 2, 3 * 66 + 2, 3) and grid.dtype == np.uint8
    logger = ImageGridLogger(tmp_path, batch["images"], batch["masks"], every_n_steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(
            synthetic_tf_dataset(SyntheticShapes(64, seed=0), 2),
            epochs=1,
            steps_per_epoch=2,
            verbose=0,
            callbacks=[logger],
        )
    tags = set()
    for event_file in tmp_path.glob("events.out.tfevents.*"):
        for record in tf.compat.v1.train.summary_iterator(str(event_file)):
            tags |= {value.tag for value in record.summary.value}
    assert {"g_loss", "d_loss"} <= tags
    assert any(tag.startswith("labels|real") for tag in tags)
