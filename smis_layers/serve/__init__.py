"""The interactive demo page (`smis serve`): generate images from label maps and edit one class's
style at a time in the browser.

Needs gradio: `pip install "smis-layers[demo]"`. `DemoEngine` (the page's logic) does not.
Names are imported on first use, so registering the `serve` subcommand (`add_parser`) does not
start TensorFlow.

Examples:
    >>> from smis_layers.serve import launch
    >>> launch("groupdnet_shapes64", port=7860)  # then open http://127.0.0.1:7860
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from smis_layers.presets import DEFAULT_PRESET
from smis_layers.serve.cli import add_parser, serve
from smis_layers.serve.defaults import DEFAULT_PORT

_LAZY_EXPORTS = {
    "DemoCallbacks": "smis_layers.serve.app",
    "build_app": "smis_layers.serve.app",
    "import_gradio": "smis_layers.serve.app",
    "launch": "smis_layers.serve.app",
    "DemoEngine": "smis_layers.serve.engine",
    "DemoState": "smis_layers.serve.engine",
}

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_PRESET",
    "DemoCallbacks",
    "DemoEngine",
    "DemoState",
    "add_parser",
    "build_app",
    "import_gradio",
    "launch",
    "serve",
]

if TYPE_CHECKING:
    from smis_layers.serve.app import DemoCallbacks, build_app, import_gradio, launch
    from smis_layers.serve.engine import DemoEngine, DemoState


def __getattr__(name: str):
    if name in _LAZY_EXPORTS:
        value = getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
