import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    np.random.seed(1234)


@pytest.fixture
def tiny_runs(monkeypatch):
    """Registers tests.helpers.TINY and makes `train_run` build eager trainers (undone after
    the test)."""
    from smis_layers.models import architectures
    from smis_layers.training import run as run_module
    from tests.helpers import TINY_SETUP

    monkeypatch.setattr(architectures, "ARCHITECTURES", dict(architectures.ARCHITECTURES))
    monkeypatch.setattr(run_module, "_build_trainer", run_module._build_trainer)
    run_module._architecture.cache_clear()
    exec(TINY_SETUP, {})
    yield
    run_module._architecture.cache_clear()
