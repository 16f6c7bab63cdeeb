"""The demo page: a gradio `Blocks` app around a `DemoEngine`.

Gradio is an optional dependency (`pip install "smis-layers[demo]"`); it is imported when a page
is built, never when `smis_layers` is imported.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from smis_layers.model_card import training_length
from smis_layers.presets import DEFAULT_PRESET
from smis_layers.serve.defaults import DEFAULT_PORT
from smis_layers.serve.engine import (
    DemoEngine,
    DemoState,
    hex_colour,
    image_to_model,
    labels_from_editor,
    labels_from_upload,
)
from smis_layers.utils.images import to_uint8

INSTALL_HINT = 'pip install "smis-layers[demo]"'
ALL_SHARED = -1  # the "class to copy" choice that copies every shared class

INTRO = """\
# GroupDNet: semantically multi-modal image synthesis

GroupDNet turns a **semantic mask** into an image, with **one latent code per class**: change the
code of one class and only that class's region changes appearance, the rest stays. Every button
below edits the codes of one class and re-draws the image.

1. **Mask**: pick an example, or paint classes with the brush (each colour is a class, see the
   legend) and press *Use painted mask*. Editing the mask keeps every class's style.
2. **Styles per class**: *New style* resamples that class's code only. *Morph* blends that class
   between its current style (A, left) and another style (B, right).
3. **Copy an appearance**: encode a reference image with its mask and give one class (or all) the
   reference's code for that class.
4. **Seed / Reset styles**: start again from the codes drawn with that seed.
"""


def import_gradio():
    """gradio, or an ImportError that says how to install it."""
    try:
        import gradio
    except ImportError as error:
        raise ImportError(
            f"The demo page needs gradio, which is not installed ({error}). Install it with: "
            f"{INSTALL_HINT}"
        ) from error
    return gradio


def _gradio_major(gr) -> int:
    try:
        return int(gr.__version__.split(".")[0])
    except (AttributeError, ValueError):
        return 0


def load_model(preset) -> tuple[Any, dict, str]:
    """(model, metadata, label) of a preset name, a preset folder, or an already built model."""
    if hasattr(preset, "decode") and hasattr(preset, "num_classes"):
        return preset, {}, getattr(preset, "name", type(preset).__name__)
    from smis_layers.models import GroupDNet
    from smis_layers.presets import METADATA_FILE, resolve_preset

    try:
        directory = resolve_preset(preset)
    except ValueError as error:
        raise ValueError(
            f"{error}. Pass --preset with the path of a preset folder (for example the "
            "`preset` folder that `smis train --out OUT` writes)"
        ) from None
    model = GroupDNet.from_preset(directory)
    try:
        metadata = json.loads((directory / METADATA_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        metadata = {}
    return model, metadata, Path(str(preset)).name


def _describe(model, metadata: dict, label: str) -> str:
    height, width = model.image_size
    training = metadata.get("training") or {}
    parts = [
        f"**Model** `{label}`: {type(model).__name__}, {model.num_classes} classes, "
        f"{height}x{width} images, {int(model.count_params()):,} parameters"
    ]
    if training.get("completed_steps"):
        parts.append(
            f"trained on `{training.get('data', '?')}` data for {training_length(training)}"
        )
    return "; ".join(parts) + "."


def _legend(engine: DemoEngine) -> str:
    items = []
    for c, (name, rgb) in enumerate(zip(engine.class_names, engine.palette, strict=True)):
        items.append(
            f'<span style="display:inline-flex;align-items:center;margin:2px 10px 2px 0">'
            f'<span style="width:14px;height:14px;border:1px solid #888;margin-right:4px;'
            f'background:{hex_colour(rgb)}"></span>{c} {name}</span>'
        )
    return '<div id="class-legend">' + "".join(items) + "</div>"


def _swatch(engine: DemoEngine, c: int) -> str:
    colour = hex_colour(engine.palette[c])
    return (
        f'<div style="display:flex;align-items:center;height:100%">'
        f'<span style="width:18px;height:18px;border:1px solid #888;margin-right:6px;'
        f'background:{colour}"></span><b>{c}&nbsp;{engine.class_names[c]}</b></div>'
    )


class DemoCallbacks:
    """The page's event handlers, as plain functions of widget values (testable without a
    browser). Each returns the new `DemoState`, the displayed image (uint8, upscaled) and a
    status line, plus widget updates where the action changes other widgets.

    Args:
        engine: the loaded model and its actions.
    """

    def __init__(self, engine: DemoEngine):
        self.engine = engine

    def _result(self, state: DemoState, action: str, start: float) -> tuple:
        image = self.engine.display(self.engine.render(state))
        elapsed = (time.perf_counter() - start) * 1000
        return state, image, f"{action} · {elapsed:.0f} ms"

    # -------------------------------------------------------------- masks
    def editor_value(self, mask) -> dict:
        """The mask editor's value for a label map (its colours, upscaled)."""
        colours = self.engine.display(self.engine.label_colours(mask))
        return {"background": colours, "layers": [], "composite": colours}

    def initial(self, seed: int = 0, example_index: int = 0) -> tuple[DemoState, np.ndarray, str]:
        """A new session's state, image and status."""
        start = time.perf_counter()
        return self._result(self.engine.start(seed, example_index), "Ready", start)

    def choose_example(self, state: DemoState, example_index: int) -> tuple:
        """Switches to example mask `example_index`, every class keeping its codes.

        Returns (state, image, status, editor value, present classes)."""
        start = time.perf_counter()
        index = self.engine.check_example(example_index)
        state = self.engine.set_labels(state, self.engine.examples["masks"][index])
        state, image, status = self._result(state, f"Example {index + 1}", start)
        return state, image, status, self.editor_value(state.labels), self.present(state)

    def use_painted_mask(self, state: DemoState, editor_value) -> tuple:
        """Generates from the painted mask, every class keeping its codes.

        Returns (state, image, status, present classes)."""
        start = time.perf_counter()
        labels = labels_from_editor(editor_value, self.engine.num_classes, self.engine.image_size)
        state = self.engine.set_labels(state, labels)
        state, image, status = self._result(state, "Painted mask", start)
        return state, image, status, self.present(state)

    def present(self, state: DemoState) -> list[int]:
        return self.engine.present_classes(state.labels)

    # -------------------------------------------------------------- styles
    def new_style(self, state: DemoState, class_index: int) -> tuple:
        """Resamples one class. Returns (state, image, status, morph position 0)."""
        start = time.perf_counter()
        state = self.engine.new_style(state, class_index)
        name = self.engine.class_names[class_index]
        return (*self._result(state, f"New style for {class_index} {name}", start), 0.0)

    def morph(self, state: DemoState, class_index: int, position: float) -> tuple:
        """Morphs one class. Returns (state, image, status)."""
        start = time.perf_counter()
        state = self.engine.morph(state, class_index, position)
        name = self.engine.class_names[class_index]
        return self._result(state, f"Morph {class_index} {name} to {float(position):.2f}", start)

    def reset(self, state: DemoState, seed) -> tuple:
        """Every class back to the seed's codes. Returns (state, image, status, seed)."""
        start = time.perf_counter()
        state = self.engine.reset(state, seed)
        return (*self._result(state, f"Reset to seed {state.seed}", start), state.seed)

    # -------------------------------------------------------------- appearance mixture
    def reference_example(self, example_index: int) -> tuple[np.ndarray, np.ndarray]:
        """(image, colour mask) of example `example_index`, upscaled, for the reference inputs."""
        index = self.engine.check_example(example_index)
        image = to_uint8(self.engine.examples["images"][index])
        mask = self.engine.label_colours(self.engine.examples["masks"][index])
        return self.engine.display(image), self.engine.display(mask)

    def copy_appearance(self, state: DemoState, class_choice, ref_image, ref_mask) -> tuple:
        """Gives a class (or, with `ALL_SHARED`, every shared class) the reference's code.

        Returns (state, image, status, morph positions of every class)."""
        start = time.perf_counter()
        if ref_image is None or ref_mask is None:
            raise ValueError("Upload a reference image and its mask (or pick a reference example)")
        size = self.engine.image_size
        image = image_to_model(ref_image, size)
        labels = labels_from_upload(
            ref_mask, self.engine.num_classes, size, self.engine.label_convention
        )
        class_index = None if class_choice in (None, ALL_SHARED) else int(class_choice)
        state = self.engine.copy_appearance(state, class_index, image, labels)
        what = (
            "all shared classes"
            if class_index is None
            else (f"{class_index} {self.engine.class_names[class_index]}")
        )
        result = self._result(state, f"Copied the reference's appearance for {what}", start)
        return (*result, [float(t) for t in state.t])


def _user_errors(gr, fn: Callable) -> Callable:
    """Shows ValueErrors on the page (gradio.Error) instead of failing the event."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as error:
            raise gr.Error(str(error)) from None

    return wrapper


def build_app(
    preset=DEFAULT_PRESET,
    *,
    num_examples: int = 6,
    class_names: list[str] | None = None,
    title: str = "GroupDNet demo",
    shared_codes: bool = False,
):
    """The demo page for a preset.

    Args:
        preset: a zoo name, a preset folder, a built GroupDNet (or baseline) model, or a
            `DemoEngine` (then `num_examples`, `class_names` and `shared_codes` are the
            engine's).
        num_examples: built-in example masks (SyntheticShapes scenes, seeded).
        class_names: one name per class; default the synthetic benchmark's class names.
        title: the browser tab's title.
        shared_codes: one code per class over the latent grid (`DemoEngine`'s option).

    Returns:
        a `gradio.Blocks`; its `.callbacks` attribute holds the `DemoCallbacks` it uses and its
        `.engine` the `DemoEngine`.

    Raises:
        ImportError: gradio is not installed (the message says how to install it).
        ValueError: unknown preset.
    """
    gr = import_gradio()
    if isinstance(preset, DemoEngine):
        engine = preset
        model, metadata, label = engine.model, {}, getattr(engine.model, "name", "model")
        num_examples = len(engine.examples["masks"])
    else:
        model, metadata, label = load_model(preset)
        engine = DemoEngine(
            model, class_names=class_names, num_examples=num_examples, shared_codes=shared_codes
        )
    callbacks = DemoCallbacks(engine)
    errors = functools.partial(_user_errors, gr)
    c_count = engine.num_classes
    height, width = engine.image_size
    display = (height * engine.scale, width * engine.scale)
    hexes = [hex_colour(rgb) for rgb in engine.palette]
    first_state, first_image, first_status = callbacks.initial(0, 0)
    present = set(callbacks.present(first_state))
    example_choices = [(f"Example {i + 1}", i) for i in range(num_examples)]

    def class_choices(classes) -> list[tuple[str, int]]:
        return [("all shared classes", ALL_SHARED)] + [
            (f"{c} {engine.class_names[c]}", c) for c in classes
        ]

    with gr.Blocks(title=title, analytics_enabled=False) as app:
        state = gr.State(first_state)
        gr.Markdown(INTRO)
        gr.Markdown(_describe(model, metadata, label), elem_id="model-info")
        with gr.Row():
            with gr.Column(scale=1):
                gr.Markdown("### 1 · Mask")
                example = gr.Dropdown(
                    choices=example_choices,
                    value=0,
                    label="Example mask",
                    info="A seeded scene of the synthetic benchmark",
                    elem_id="example",
                )
                editor = gr.ImageEditor(
                    value=callbacks.editor_value(first_state.labels),
                    label="Mask (paint with the class colours)",
                    type="numpy",
                    image_mode="RGBA",
                    sources=["upload", "clipboard"],
                    brush=gr.Brush(
                        colors=hexes,
                        default_color=hexes[min(1, c_count - 1)],
                        color_mode="fixed",
                        default_size=12,
                    ),
                    canvas_size=(display[1], display[0]),
                    fixed_canvas=True,
                    transforms=[],
                    layers=False,
                    elem_id="mask-editor",
                )
                apply_mask = gr.Button("Use painted mask", elem_id="apply-mask")
                gr.HTML(_legend(engine))
            with gr.Column(scale=1):
                gr.Markdown("### Generated image")
                output = gr.Image(
                    value=first_image,
                    label="Generated image",
                    type="numpy",
                    format="png",
                    interactive=False,
                    height=display[0] + 40,
                    elem_id="output-image",
                )
                status = gr.Markdown(first_status, elem_id="status")
                with gr.Row():
                    seed = gr.Number(
                        value=0,
                        precision=0,
                        minimum=0,
                        label="Seed",
                        info="Press Enter or Reset styles to apply",
                        elem_id="seed",
                    )
                    reset = gr.Button("Reset styles", elem_id="reset")
            with gr.Column(scale=1):
                gr.Markdown(
                    "### 2 · Styles per class\n*New style*: resample this class only. "
                    "*Morph*: 0 = style A, 1 = style B."
                )
                rows, sliders, buttons = [], [], []
                for c in range(c_count):
                    with gr.Row(
                        visible=c in present, equal_height=True, elem_id=f"class-row-{c}"
                    ) as row:
                        with gr.Column(scale=2, min_width=120):
                            gr.HTML(_swatch(engine, c))
                            button = gr.Button("New style", size="sm", elem_id=f"new-style-{c}")
                        slider = gr.Slider(
                            0.0,
                            1.0,
                            value=0.0,
                            step=0.05,
                            label="Morph A → B",
                            scale=3,
                            min_width=140,
                            elem_id=f"morph-{c}",
                        )
                    rows.append(row)
                    buttons.append(button)
                    sliders.append(slider)
        gr.Markdown(
            "### 3 · Copy an appearance from a reference\nThe encoder reads the reference image "
            "with its mask; the chosen class takes the reference's code for that class "
            "(appearance mixture). The mask may be a label map (palette or greyscale PNG) or "
            "painted with the legend's colours."
        )
        with gr.Row():
            reference_example = gr.Dropdown(
                choices=example_choices,
                value=1 % num_examples,
                label="Reference example",
                info="Fills the reference image and mask",
                elem_id="reference-example",
                scale=1,
            )
            first_ref_image, first_ref_mask = callbacks.reference_example(1 % num_examples)
            ref_image = gr.Image(
                value=first_ref_image,
                label="Reference image",
                type="numpy",
                format="png",
                image_mode="RGB",
                sources=["upload", "clipboard"],
                height=display[0] // 2 + 60,
                elem_id="reference-image",
                scale=1,
            )
            ref_mask = gr.Image(
                value=first_ref_mask,
                label="Reference mask",
                type="pil",
                image_mode=None,
                format="png",
                sources=["upload", "clipboard"],
                height=display[0] // 2 + 60,
                elem_id="reference-mask",
                scale=1,
            )
            with gr.Column(scale=1):
                class_choice = gr.Dropdown(
                    choices=class_choices(sorted(present)),
                    value=ALL_SHARED,
                    label="Class to copy",
                    elem_id="class-choice",
                )
                copy = gr.Button("Copy appearance", variant="primary", elem_id="copy-appearance")

        fast = {"show_progress": "hidden"}

        def visibility(classes):
            shown = set(classes)
            return [gr.update(visible=c in shown) for c in range(c_count)]

        def class_choice_update(classes, current):
            value = current if current in (ALL_SHARED, *classes) else ALL_SHARED
            return gr.update(choices=class_choices(classes), value=value)

        def on_example(state_value, index, current_choice):
            new_state, image, text, editor_value, classes = callbacks.choose_example(
                state_value, index
            )
            return (
                new_state,
                image,
                text,
                editor_value,
                class_choice_update(classes, current_choice),
                *visibility(classes),
            )

        example.change(
            errors(on_example),
            [state, example, class_choice],
            [state, output, status, editor, class_choice, *rows],
            **fast,
        )

        def on_apply(state_value, editor_value, current_choice):
            new_state, image, text, classes = callbacks.use_painted_mask(state_value, editor_value)
            return (
                new_state,
                image,
                text,
                class_choice_update(classes, current_choice),
                *visibility(classes),
            )

        apply_mask.click(
            errors(on_apply),
            [state, editor, class_choice],
            [state, output, status, class_choice, *rows],
            **fast,
        )

        def on_reset(state_value, seed_value):
            new_state, image, text, seed_out = callbacks.reset(state_value, seed_value)
            return (new_state, image, text, seed_out, *([0.0] * c_count))

        for trigger in (reset.click, seed.submit):
            trigger(
                errors(on_reset), [state, seed], [state, output, status, seed, *sliders], **fast
            )

        for c in range(c_count):
            buttons[c].click(
                errors(functools.partial(_class_action, callbacks.new_style, c)),
                [state],
                [state, output, status, sliders[c]],
                **fast,
            )
            sliders[c].input(
                errors(functools.partial(_class_action, callbacks.morph, c)),
                [state, sliders[c]],
                [state, output, status],
                trigger_mode="always_last",
                **fast,
            )

        reference_example.change(
            errors(callbacks.reference_example),
            [reference_example],
            [ref_image, ref_mask],
            **fast,
        )

        def on_copy(state_value, choice, image, mask):
            new_state, out, text, positions = callbacks.copy_appearance(
                state_value, choice, image, mask
            )
            return (new_state, out, text, *positions)

        copy.click(
            errors(on_copy),
            [state, class_choice, ref_image, ref_mask],
            [state, output, status, *sliders],
            **fast,
        )

        # A first event when the page opens: the browser's connection to the event queue is
        # set up now rather than on the user's first click.
        app.load(lambda: first_status, None, [status], **fast)

    app.callbacks = callbacks
    app.engine = engine
    return app


def _class_action(action: Callable, class_index: int, state: DemoState, *args):
    return action(state, class_index, *args)


def launch(
    preset=DEFAULT_PRESET,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    share: bool = False,
    block: bool = True,
    shared_codes: bool = False,
    **launch_kwargs,
):
    """Builds the page for `preset` and serves it at http://host:port.

    Args:
        preset: a zoo name, a preset folder, a built model or a `DemoEngine`.
        host: the interface to listen on ("0.0.0.0" for every interface).
        port: the TCP port.
        share: ask gradio for a public *.gradio.live link (needs internet access).
        block: wait until the server stops (Ctrl-C); False returns once it is up.
        shared_codes: one code per class over the latent grid (`DemoEngine`'s option).
        **launch_kwargs: more `gradio.Blocks.launch` arguments.

    Returns:
        the running `gradio.Blocks` (call `.close()` to stop it when `block=False`).
    """
    gr = import_gradio()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    app = build_app(preset, shared_codes=shared_codes)
    options: dict[str, Any] = {
        "server_name": host,
        "server_port": int(port),
        "share": share,
        "prevent_thread_lock": not block,
        "show_error": True,
        **launch_kwargs,
    }
    if _gradio_major(gr) >= 5:
        options.setdefault("ssr_mode", False)
    app.queue(default_concurrency_limit=1).launch(**options)
    return app
