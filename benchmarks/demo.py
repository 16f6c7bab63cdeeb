"""The demo page's responsiveness: milliseconds per action of `smis demo`'s event handlers.

Usage:

    python -m benchmarks demo                            # the shapes64 models
    python -m benchmarks.demo --models groupdnet_shapes64 --repeats 9
    python -m benchmarks demo --tiny                     # seconds (tests)

Each model gets a `DemoEngine` (decoder and encoder traced and warmed up at batch 1, as
`smis demo` does) and its page handlers (`DemoCallbacks`), called as the page calls them:
the median and the slowest wall time of each action over `--repeats` calls after one warm-up,
including rendering the upscaled image. The weights are random (the architecture, not a
preset's values, sets the time). The browser's round trip is not included.
"""

from __future__ import annotations

import argparse
import statistics

from benchmarks import common

DEFAULT_MODELS = common.SHAPES64
ACTIONS = ("example", "painted mask", "new style", "morph", "copy appearance", "reset")
COLUMNS = ["model", "size", *(f"{action} ms" for action in ACTIONS), "slowest ms"]


def _actions(callbacks, engine) -> dict:
    """One zero-argument function per page action; each call starts from the state the previous
    call of any action left, and alternates its argument where repeating it would do nothing."""
    from PIL import Image

    from smis_layers.serve.app import ALL_SHARED

    example = engine.examples["masks"][1]
    editor = callbacks.editor_value(example)
    ref_image, ref_mask = callbacks.reference_example(2)
    ref_mask = Image.fromarray(ref_mask)
    cls = engine.present_classes(example)[-1]
    state = [callbacks.initial(0, 0)[0]]
    calls = [0]

    def act(fn):
        def call():
            calls[0] += 1
            state[0] = fn(state[0], calls[0])[0]

        return call

    return {
        "example": act(lambda s, n: callbacks.choose_example(s, n % 2)),
        "painted mask": act(lambda s, n: callbacks.use_painted_mask(s, editor)),
        "new style": act(lambda s, n: callbacks.new_style(s, cls)),
        "morph": act(lambda s, n: callbacks.morph(s, cls, (n % 10) / 10)),
        "copy appearance": act(
            lambda s, n: callbacks.copy_appearance(s, ALL_SHARED, ref_image, ref_mask)
        ),
        "reset": act(lambda s, n: callbacks.reset(s, n)),
    }


def measure(name: str, repeats: int) -> dict:
    """One model, in this process: {action: [median seconds, slowest seconds]}."""
    import keras

    from smis_layers.serve.app import DemoCallbacks
    from smis_layers.serve.engine import DemoEngine

    keras.backend.clear_session()
    generator, _ = common.build_models(name)
    engine = DemoEngine(generator)
    result = {"size": "x".join(str(d) for d in engine.image_size)}
    for action, call in _actions(DemoCallbacks(engine), engine).items():
        seconds, _ = common.timed_calls(call, repeats, warmup=1)
        result[action] = [statistics.median(seconds), max(seconds)]
    return result


def run(models, repeats: int = 7, isolate: bool = True, timeout: float | None = None):
    """The demo table: one row per model, the median ms of each action and the slowest call."""
    table = common.Table("Demo page: ms per action (DemoCallbacks, batch 1)", COLUMNS)
    for name in models:
        config = {"name": name, "repeats": repeats}
        if isolate:
            result = common.run_isolated("benchmarks.demo", config, timeout)
        else:
            result = measure(**config)
        if "error" in result:
            table.add(model=name)
            table.notes.append(f"{name}: {result['error']}")
            continue
        table.add(
            model=name,
            size=result["size"],
            **{f"{action} ms": result[action][0] * 1000 for action in ACTIONS},
            **{"slowest ms": max(result[action][1] for action in ACTIONS) * 1000},
        )
    table.notes.append(
        f"Median of {repeats} calls after one warm-up; 'slowest ms' is the slowest single call "
        "of any action."
    )
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options of this part."""
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per action")
    common.add_isolate_argument(parser)
    parser.add_argument("--config-timeout", type=float, default=600)


def run_from_args(args: argparse.Namespace) -> common.Table:
    """Runs this part from parsed arguments (`--tiny`: MulNet at 64x64, 2 calls per action)."""
    tiny = getattr(args, "tiny", False)
    models = args.models or (["mulnet_shapes64"] if tiny else DEFAULT_MODELS)
    table = run(
        models,
        repeats=2 if tiny else args.repeats,
        isolate=common.isolation_wanted(args.isolate, tiny),
        timeout=args.config_timeout,
    )
    table.print()
    return table


def main(argv=None) -> int:
    """`python -m benchmarks.demo [options]`; returns the exit status."""
    return common.part_main(
        argv, __doc__, "one small model (tests)", add_arguments, measure, run_from_args
    )


if __name__ == "__main__":
    raise SystemExit(main())
