import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# JAX's persistent compilation cache, shared with the subprocesses the tests start: the JAX
# training tests compile the same tiny train step in several processes (a killed run and its
# resumption), and XLA's CPU compile of a GAN step takes tens of seconds.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "smis-layers-jax-cache")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import keras
import numpy as np
import pytest


def _machine_lines() -> list[str]:
    from smis_layers.ops.grouped_conv import resolve_lowering
    from smis_layers.utils.machine import cpu_description

    lowerings = ", ".join(
        f"{dtype} {resolve_lowering('auto', groups=4, dtype=dtype)}"
        for dtype in ("float32", "bfloat16", "float16")
    )
    return [
        f"cpu: {cpu_description()}",
        f"keras backend {keras.backend.backend()}; GroupConv2D lowering='auto': {lowerings}",
    ]


def pytest_report_header(config) -> list[str]:
    """The CPU and the grouped-convolution lowerings it gets: which kernels work, and so which
    lowering "auto" picks, differ between Intel and AMD CPUs, with AMX or without."""
    return _machine_lines()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    # `-q` (the README's test command) hides the header: say it at the end too.
    if config.get_verbosity() < 0:
        terminalreporter.write_line(" | ".join(_machine_lines()))


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


@pytest.fixture
def failing_native_kernel(monkeypatch):
    """The backend's grouped kernel (not the dense one) raises in float16, as TensorFlow's
    oneDNN kernel does on AMD CPUs; the probe cache is cleared before and after."""
    from smis_layers.ops import grouped_conv

    native = grouped_conv._native_conv

    def native_conv(inputs, kernel, strides, padding):
        grouped = kernel.shape[2] != inputs.shape[-1]
        if grouped and keras.backend.standardize_dtype(inputs.dtype) == "float16":
            raise RuntimeError("filter_size does not have enough elements (simulated)")
        return native(inputs, kernel, strides, padding)

    grouped_conv._probe_cached.cache_clear()
    monkeypatch.setattr(grouped_conv, "_native_conv", native_conv)
    yield
    grouped_conv._probe_cached.cache_clear()
