"""`smis train` warns before a 16-bit run on a CPU that emulates 16-bit arithmetic."""

from __future__ import annotations

import pytest

from smis_layers.training import run as run_module
from smis_layers.utils import machine

AVX2_EPYC = ("AMD EPYC", {"fpu", "sse4_2", "avx", "avx2", "fma"})
BF16_EPYC = ("AMD EPYC", {"avx2", "avx512f", "avx512_bf16"})
AMX_XEON = ("Intel Xeon", {"avx2", "avx512f", "amx_bf16", "amx_tile"})


@pytest.mark.parametrize(
    ("cpu", "lacks"),
    [(AVX2_EPYC, True), (BF16_EPYC, False), (AMX_XEON, False), (("", set()), False)],
)
def test_cpu_lacks_16bit_kernels_reads_the_flags(monkeypatch, cpu, lacks):
    monkeypatch.setattr(machine, "_cpuinfo", lambda: cpu)
    assert machine.cpu_lacks_16bit_kernels() is lacks


def test_a_16bit_policy_on_an_emulating_cpu_is_warned_of(monkeypatch):
    monkeypatch.setattr(machine, "_cpuinfo", lambda: AVX2_EPYC)
    monkeypatch.setattr(
        run_module, "training_device", lambda: "CPU: AMD EPYC (no AVX-512; no AMX), 2 logical cores"
    )
    warning = run_module._dtype_policy_warning("mixed_bfloat16")
    assert "--dtype-policy mixed_bfloat16 on AMD EPYC (no AVX-512; no AMX)" in warning
    assert "Train in float32" in warning
    assert run_module._dtype_policy_warning("float32") is None
    monkeypatch.setattr(run_module, "training_device", lambda: "NVIDIA H100 80GB HBM3")
    assert run_module._dtype_policy_warning("mixed_bfloat16") is None  # a GPU run
    monkeypatch.setattr(run_module, "training_device", lambda: "CPU: Intel Xeon, 2 logical cores")
    monkeypatch.setattr(machine, "_cpuinfo", lambda: AMX_XEON)
    assert run_module._dtype_policy_warning("mixed_bfloat16") is None
