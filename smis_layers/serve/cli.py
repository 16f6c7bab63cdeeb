"""The `smis serve` subcommand: the interactive demo page.

Light on purpose (no TensorFlow, no gradio at import): `smis --help` imports it.
"""

from __future__ import annotations

import argparse
import sys

from smis_layers.presets import DEFAULT_PRESET
from smis_layers.serve.defaults import DEFAULT_PORT


def serve(args: argparse.Namespace) -> int:
    """Serves the demo page for `args.preset` until interrupted; 1 with a message on errors."""
    from smis_layers.serve.app import import_gradio, launch

    try:
        import_gradio()  # fail before loading the model
        print(f"smis serve: loading {args.preset} ...", flush=True)
        launch(
            args.preset,
            host=args.host,
            port=args.port,
            share=args.share,
            shared_codes=args.shared_codes,
        )
    except (ImportError, ValueError, OSError) as error:
        print(f"smis serve: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Registers `smis serve` on the `add_subparsers()` object of the `smis` parser."""
    parser = subparsers.add_parser(
        "serve",
        help='interactive demo page in the browser (needs pip install "smis-layers[demo]")',
        description="Serve a web page to generate images from label maps and edit one class's "
        "style at a time (new style, morph, copy from a reference).",
    )
    parser.add_argument(
        "--preset",
        default=DEFAULT_PRESET,
        help=f"zoo preset name or preset folder (default {DEFAULT_PRESET})",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to listen on (default 127.0.0.1; 0.0.0.0 exposes it to the network)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (default 7860)")
    parser.add_argument(
        "--share", action="store_true", help="also ask gradio for a public link (needs internet)"
    )
    parser.add_argument(
        "--shared-codes",
        action="store_true",
        help="draw one code per class over the whole latent grid (cleaner images from briefly "
        "trained models such as the zoo's; docs/zoo.md)",
    )
    parser.set_defaults(handler=serve)
    return parser
