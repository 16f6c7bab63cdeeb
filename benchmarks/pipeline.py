"""Input pipeline: the training step fed from memory, from the synthetic `tf.data` pipeline and
from image files on disk.

Usage:

    python -m benchmarks pipeline                        # groupdnet_shapes64, batch 16
    python -m benchmarks pipeline --tiny                 # seconds (tests)

Sources (same model, same batch size):

- `in-memory`: one batch repeated (`tf.data.Dataset.from_tensors(batch).repeat()`): no input
  work per step; what the train-step part measures.
- `synthetic tf.data`: `smis_layers.data.synthetic_tf_dataset`, the procedural scenes drawn
  on the fly (NumPy in `tf.numpy_function`, parallel map, prefetch): what `smis train` uses.
- `folder (JPEG/PNG)`: the same scenes exported once in the official DeepFashion layout
  (`export_deepfashion_layout`: JPEG images, PNG label maps) and read back by
  `smis_layers.data.folder_dataset("deepfashion", ...)` (PIL decoding and resizing, shuffling,
  random flips): the real-data path.

For each: the pipeline alone (median ms per batch, iterating the dataset with no training) and
the training step fed by it (median s/step of `fit`). The input work shares the CPU cores with
the step, so a pipeline much faster than the step can still slow the step down.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import keras

from benchmarks import common
from benchmarks.train_step import in_memory_dataset, time_fit

COLUMNS = [
    "source",
    "pipeline ms/batch",
    "pipeline images/s",
    "pipeline CPU ms/batch",
    "step s",
    "step CPU s",
    "train images/s",
    "step / in-memory step",
]


def time_pipeline(dataset, batches: int) -> tuple[float, float]:
    """(wall, process CPU) seconds per batch of iterating `dataset` with no training: totals
    over `batches` batches (after a first one) divided by `batches`, so the work of tf.data's
    background threads is counted in the CPU time."""
    iterator = iter(dataset)
    next(iterator)
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        _ = next(iterator)["images"].numpy()
    return (time.perf_counter() - start) / batches, (time.process_time() - start_cpu) / batches


def make_sources(generator, batch_size: int, directory: str, num_files: int) -> dict:
    """{source name: dataset} for `generator` (writes the folder dataset into `directory`)."""
    from smis_layers.data import folder_dataset
    from smis_layers.data.synthetic import (
        SyntheticShapes,
        export_deepfashion_layout,
        synthetic_tf_dataset,
    )

    size = generator.image_size[0]
    shapes = SyntheticShapes(image_size=size, num_classes=generator.num_classes, seed=0)
    export_deepfashion_layout(shapes, directory, num_train=num_files)
    return {
        "in-memory": in_memory_dataset(common.make_batch(generator, batch_size)),
        "synthetic tf.data": synthetic_tf_dataset(shapes, batch_size),
        "folder (JPEG/PNG)": folder_dataset(
            "deepfashion", directory, "train", size, batch_size, flip=True
        ),
    }


def run(
    name: str = "groupdnet_shapes64",
    batch_size: int = 16,
    steps: int = 5,
    warmup: int = 2,
    batches: int = 10,
    num_files: int = 64,
) -> common.Table:
    """The input-pipeline table for one model (a DeepFashion-like C=8 model)."""
    table = common.Table(f"Input pipeline ({name}, batch {batch_size})", COLUMNS)
    keras.backend.clear_session()
    generator, discriminator = common.build_models(name)
    with tempfile.TemporaryDirectory(prefix="smis-bench-") as directory:
        sources = make_sources(generator, batch_size, directory, num_files)
        alone = {source: time_pipeline(ds, batches) for source, ds in sources.items()}
        trainer = common.make_trainer(generator, discriminator, jit=False)
        steps_by_source = {}
        for source, dataset in sources.items():
            steps_by_source[source] = time_fit(trainer, dataset, steps, warmup)
            print(f"  {source}: pipeline {alone[source]}, step {steps_by_source[source]}")
    reference = steps_by_source["in-memory"][0]
    for source in sources:
        (pipe_wall, pipe_cpu), (step_wall, step_cpu) = alone[source], steps_by_source[source]
        table.add(
            source=source,
            **{
                "pipeline ms/batch": pipe_wall * 1000,
                "pipeline images/s": batch_size / pipe_wall if pipe_wall > 0 else None,
                "pipeline CPU ms/batch": pipe_cpu * 1000,
                "step s": step_wall,
                "step CPU s": step_cpu,
                "train images/s": batch_size / step_wall,
                "step / in-memory step": step_wall / reference,
            },
        )
    table.notes.append(
        f"Folder source: {num_files} exported samples, shuffled, random flips. Pipeline: "
        f"{batches} batches after the first, wall and process CPU time (tf.data's threads "
        f"included) per batch; steps: medians over {steps} steps after {warmup}."
    )
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options of this part."""
    parser.add_argument("--pipeline-model", default=None, help="default groupdnet_shapes64")
    parser.add_argument("--pipeline-batch-size", type=int, default=16)
    parser.add_argument("--pipeline-steps", type=int, default=5)


def run_from_args(args: argparse.Namespace) -> common.Table:
    """Runs this part from parsed arguments (`--tiny`: batch 2, 1 step, 3 batches, 4 files;
    the model stays a 64x64 one, the smallest size the synthetic scenes have)."""
    tiny = getattr(args, "tiny", False)
    table = run(
        name=args.pipeline_model or "groupdnet_shapes64",
        batch_size=2 if tiny else args.pipeline_batch_size,
        steps=1 if tiny else args.pipeline_steps,
        warmup=1 if tiny else 2,
        batches=3 if tiny else 10,
        num_files=4 if tiny else 64,
    )
    table.print()
    return table


def main(argv=None) -> int:
    """`python -m benchmarks.pipeline [options]`; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny run (tests)")
    add_arguments(parser)
    run_from_args(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
