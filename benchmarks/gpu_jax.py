"""The JAX training step on one GPU, against the official-architecture PyTorch step, in rows run
in priority order under a time budget. Needs no TensorFlow (the GPU machine has none).

Usage (what `benchmarks/gpu_jax.sh` runs on the GPU machine, after installing the carried
wheels of Keras and its pure-Python dependencies):

    KERAS_BACKEND=jax python -m benchmarks.gpu_jax --out $OUT
    KERAS_BACKEND=jax python -m benchmarks.gpu_jax --tiny --out /tmp/t   # CPU, tiny (tests)

Rows, in this order; no row starts after `--budget-seconds` (default 300), and the rows left
are listed as skipped:

1. `matmul`: the bfloat16 and float32 peak of a large matmul (jnp.dot), the MFU reference.
2. `jax train` / `torch train`: the G + D training step (no perceptual term on either side),
   bfloat16 first at the best batch of each model, then float32, then the other batches:
   the official DeepFashion GroupDNet at 256x256 (batch 16, 8, 1) and groupdnet_shapes64
   (batch 256, 64, 16). JAX: `SMISTrainer.fit`, one jit-compiled step; columns step time
   (median), images/s, first-compile time (the first step), peak GPU memory and MFU
   (`train_step_flops` / step time / the matmul peak of the same dtype). PyTorch: the official
   architecture (`benchmarks.torch_official`), eager float32 (as the official code) or
   bfloat16 autocast, DeepFashion only.
3. `generate`: `GroupDNet.generate` throughput at the largest batch of each model.

Writes `gpu_jax.md` (the table) and `gpu_jax.json` (rows and skipped rows) to `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np

DEEPFASHION, SHAPES64 = "groupdnet_deepfashion", "groupdnet_shapes64"
COLUMNS = (
    "row",
    "model",
    "batch",
    "dtype",
    "step ms",
    "images/s",
    "compile s",
    "peak GiB",
    "TFLOP/s",
    "MFU",
)


def plan(tiny: bool) -> list[dict]:
    """The rows in priority order."""
    if tiny:
        return [
            {"row": "matmul", "dtype": "bfloat16"},
            {"row": "matmul", "dtype": "float32"},
            {"row": "jax train", "model": "tiny", "batch": 2, "dtype": "float32"},
            {"row": "torch train", "model": "tiny", "batch": 1, "dtype": "float32"},
            {"row": "generate", "model": "tiny", "batch": 2, "dtype": "float32"},
        ]
    rows = [{"row": "matmul", "dtype": d} for d in ("bfloat16", "float32")]
    for dtype in ("bfloat16", "float32"):
        torch_dtype = "bfloat16 autocast" if dtype == "bfloat16" else "float32"
        rows += [
            {"row": "jax train", "model": DEEPFASHION, "batch": 16, "dtype": dtype},
            {"row": "torch train", "model": DEEPFASHION, "batch": 16, "dtype": torch_dtype},
            {"row": "jax train", "model": SHAPES64, "batch": 256, "dtype": dtype},
        ]
    rows += [
        {"row": "generate", "model": m, "batch": b, "dtype": "bfloat16"}
        for m, b in ((DEEPFASHION, 16), (SHAPES64, 256))
    ]
    for dtype in ("bfloat16", "float32"):
        torch_dtype = "bfloat16 autocast" if dtype == "bfloat16" else "float32"
        for batch in (8, 1):
            rows += [
                {"row": "jax train", "model": DEEPFASHION, "batch": batch, "dtype": dtype},
                {"row": "torch train", "model": DEEPFASHION, "batch": batch, "dtype": torch_dtype},
            ]
        rows += [
            {"row": "jax train", "model": SHAPES64, "batch": b, "dtype": dtype} for b in (64, 16)
        ]
    return rows


def _policy(dtype: str) -> str:
    return "mixed_bfloat16" if dtype.startswith("bfloat16") else "float32"


def _block(values) -> None:
    import jax

    jax.block_until_ready(values)


def peak_memory_gib() -> float | None:
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else peak / 2**30


def matmul_tflops(dtype: str, tiny: bool) -> float:
    import jax
    import jax.numpy as jnp

    n = 256 if tiny else 8192
    a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n)), dtype)
    f = jax.jit(lambda x: x @ x)
    _block(f(a))
    times = []
    for _ in range(3 if tiny else 10):
        start = time.perf_counter()
        _block(f(a))
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e12


def _models(name: str):
    from benchmarks.common import build_models

    if name != "tiny":
        return build_models(name)
    from smis_layers.models import MultiScaleDiscriminator

    # The suite's tiny GroupDNet with the native grouped kernel ("auto" on GPUs), which XLA's
    # CPU backend compiles fastest.
    generator, _ = build_models("groupdnet_tiny")
    config = {**generator.get_config(), "lowering": "native"}
    generator = type(generator).from_config(config)
    return generator, MultiScaleDiscriminator(num_layers=2, base_filters=8, lowering="native")


def jax_train(model: str, batch: int, dtype: str, steps: int, peak: float) -> dict:
    from benchmarks.common import make_batch, make_trainer
    from smis_layers.metrics.flops import train_step_flops
    from smis_layers.training.run import global_dtype_policy

    with global_dtype_policy(_policy(dtype)):
        generator, discriminator = _models(model)
        trainer = make_trainer(generator, discriminator, jit=True)
    data = make_batch(generator, batch)

    def batches():
        while True:
            yield (data,)

    stream = batches()
    start = time.perf_counter()
    trainer.fit(stream, epochs=1, steps_per_epoch=1, verbose=0)
    _block([v.value for v in trainer.trainable_variables])
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.fit(stream, epochs=1, steps_per_epoch=1, verbose=0)
        _block([v.value for v in trainer.trainable_variables])
        times.append(time.perf_counter() - start)
    step = statistics.median(times)
    flops = train_step_flops(generator, discriminator, batch)["total"]
    return {
        "step ms": 1e3 * step,
        "images/s": batch / step,
        "compile s": compile_s,
        "peak GiB": peak_memory_gib(),
        "TFLOP/s": flops / step / 1e12,
        "MFU": flops / step / 1e12 / peak,
    }


def torch_train(model: str, batch: int, dtype: str, steps: int, peak: float) -> dict:
    import torch

    from benchmarks.torch_official import OfficialStep
    from smis_layers.metrics.flops import train_step_flops

    device = "cuda" if torch.cuda.is_available() else "cpu"
    bf16 = dtype.startswith("bfloat16")
    tiny = {"ngf": 2, "encoder_ndf": 8, "size": 256, "discriminator_filters": 4}
    official = OfficialStep(device, bf16, **(tiny if model == "tiny" else {}))
    one_hot, images = official.batch(batch)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    official.step(one_hot, images)
    first_s = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        official.step(one_hot, images)  # its float() of the loss waits for the GPU
        times.append(time.perf_counter() - start)
    step = statistics.median(times)
    row = {"step ms": 1e3 * step, "images/s": batch / step, "compile s": first_s}
    if device == "cuda":
        row["peak GiB"] = torch.cuda.max_memory_allocated() / 2**30
    if model != "tiny":
        generator, discriminator = _models(model)
        flops = train_step_flops(generator, discriminator, batch)["total"]
        row.update({"TFLOP/s": flops / step / 1e12, "MFU": flops / step / 1e12 / peak})
    return row


def generate(model: str, batch: int, dtype: str, steps: int) -> dict:
    from benchmarks.common import make_batch
    from smis_layers.training.run import global_dtype_policy

    with global_dtype_policy(_policy(dtype)):
        generator, _ = _models(model)
    masks = make_batch(generator, batch)["masks"]
    z = generator.sample_z(batch, seed=0)
    start = time.perf_counter()
    generator.generate(masks, z=z)
    first_s = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        np.asarray(generator.generate(masks, z=z))
        times.append(time.perf_counter() - start)
    step = statistics.median(times)
    return {"step ms": 1e3 * step, "images/s": batch / step, "compile s": first_s}


def _cell(column: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1%}" if column == "MFU" else f"{value:.4g}"
    return str(value)


def run(out: Path, budget_seconds: float = 300.0, tiny: bool = False, steps: int = 5) -> dict:
    """Measures the rows of `plan` until the budget is spent; writes and returns the results."""
    import jax

    start = time.perf_counter()
    peaks: dict[str, float] = {}
    done, skipped = [], []
    for row in plan(tiny):
        if time.perf_counter() - start > budget_seconds:
            skipped.append(row)
            continue
        base = "bfloat16" if row["dtype"].startswith("bfloat16") else "float32"
        try:
            if row["row"] == "matmul":
                peaks[row["dtype"]] = matmul_tflops(row["dtype"], tiny)
                result = {"TFLOP/s": peaks[row["dtype"]]}
            elif row["row"] == "jax train":
                result = jax_train(row["model"], row["batch"], row["dtype"], steps, peaks[base])
            elif row["row"] == "torch train":
                result = torch_train(row["model"], row["batch"], row["dtype"], steps, peaks[base])
            else:
                result = generate(row["model"], row["batch"], row["dtype"], steps)
        except Exception as error:  # out of memory and the like: reported, the run goes on
            result = {"step ms": f"{type(error).__name__}: {str(error)[:120]}"}
        keras.backend.clear_session()
        done.append({**row, **result})
        print(json.dumps(done[-1]), flush=True)
    device = jax.devices()[0]
    header = (
        f"JAX {jax.__version__} on {device.device_kind} ({jax.default_backend()}), Keras "
        f"{keras.__version__}; budget {budget_seconds:.0f} s, {steps} timed steps per row"
    )
    lines = [header, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in done:
        cells = [_cell(column, row.get(column)) for column in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    if skipped:
        lines += ["", "Skipped (budget): " + "; ".join(json.dumps(r) for r in skipped)]
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_jax.md").write_text("\n".join(lines) + "\n")
    results = {"header": header, "rows": done, "skipped": skipped}
    (out / "gpu_jax.json").write_text(json.dumps(results, indent=2))
    print("\n".join(lines))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_jax_out")))
    parser.add_argument("--budget-seconds", type=float, default=300.0)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="tiny models on the CPU (tests)")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(args.out, args.budget_seconds, args.tiny, 1 if args.tiny else args.steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
