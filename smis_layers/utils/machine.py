"""What the machine's CPU is, for benchmark tables, test headers and `smis info`.

Speed ratios between float32, bfloat16 and float16, and which grouped-convolution kernels
work, depend on the CPU: Intel or AMD, AVX-512 or not, AMX or not.
"""

from __future__ import annotations

import contextlib
import platform

#: CPU flags that change which kernels TensorFlow's oneDNN uses, in the order they are listed.
KERNEL_FLAGS = ("avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_fp16")


#: CPU flags of native 16-bit arithmetic that oneDNN's bfloat16 / float16 kernels use.
NATIVE_16BIT_FLAGS = tuple(flag for flag in KERNEL_FLAGS if flag != "avx512f")


def _cpuinfo() -> tuple[str, set[str]]:
    """(model name, flags) of the first CPU in /proc/cpuinfo; ("", set()) where it is absent."""
    model, flags = "", set()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and not model:
                model = value.strip()
            elif key == "flags" and not flags:
                flags = set(value.split())
            if model and flags:
                break
    return model, flags


def cpu_lacks_16bit_kernels() -> bool:
    """True when /proc/cpuinfo lists none of `NATIVE_16BIT_FLAGS`: TensorFlow's CPU kernels
    then emulate bfloat16 and float16, and a mixed-precision training step runs several times
    slower than in float32 (docs/benchmarks.md). False where the flags cannot be read.

    Examples:
        >>> policy = "float32" if cpu_lacks_16bit_kernels() else "mixed_bfloat16"
    """
    _, flags = _cpuinfo()
    return bool(flags) and not flags.intersection(NATIVE_16BIT_FLAGS)


def cpu_description() -> str:
    """The CPU model and the kernel-relevant flags it has, e.g.
    "AMD EPYC (avx512f, avx512_bf16; no AMX)", read from /proc/cpuinfo where it exists."""
    model, flags = _cpuinfo()
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    present = [flag for flag in KERNEL_FLAGS if flag in flags]
    if not flags:
        return model
    amx = "" if any(flag.startswith("amx") for flag in present) else "no AMX"
    listed = ", ".join(present) or "no AVX-512"
    return f"{model} ({listed}{'; ' + amx if amx else ''})"
