from __future__ import annotations

import keras
from keras import ops

from smis_layers.utils.validation import require_positive_int


@keras.saving.register_keras_serializable(package="smis_layers")
class ConstantThenLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate constant for `constant_steps`, then linearly decayed to 0 over
    `decay_steps` (the official `niter` / `niter_decay` schedule, in steps).

    Args:
        initial_learning_rate: the constant rate.
        constant_steps: steps at the constant rate.
        decay_steps: steps of the linear decay to 0.

    Examples:
        >>> schedule = ConstantThenLinearDecay(1e-4, constant_steps=1000, decay_steps=1000)
        >>> optimizer = keras.optimizers.Adam(schedule, beta_1=0.0, beta_2=0.9)
    """

    def __init__(self, initial_learning_rate: float, constant_steps: int, decay_steps: int):
        self.initial_learning_rate = float(initial_learning_rate)
        self.constant_steps = int(constant_steps)
        self.decay_steps = require_positive_int("decay_steps", int(decay_steps))
        if self.constant_steps < 0:
            raise ValueError(f"`constant_steps` must be >= 0; received {constant_steps}")

    def __call__(self, step):
        step = ops.cast(step, "float32")
        progress = (step - self.constant_steps) / float(self.decay_steps)
        factor = ops.clip(1.0 - progress, 0.0, 1.0)
        return self.initial_learning_rate * factor

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "constant_steps": self.constant_steps,
            "decay_steps": self.decay_steps,
        }
