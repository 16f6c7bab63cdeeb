"""Takes the screenshot of the demo page in docs/figures/demo.png.

Serves `smis serve`'s page for a preset on a free local port, drives Debian's Chromium with
Playwright (no Playwright browser download), resamples one class and morphs another so the
page shows its controls in use, and saves a full-page screenshot (palette-quantized if it would
exceed --max-kb).

    python scripts/demo_screenshot.py                      # zoo preset groupdnet_shapes64
    python scripts/demo_screenshot.py --preset runs/x/preset
    python scripts/demo_screenshot.py --untrained          # an untrained groupdnet_shapes64

Needs: pip install "smis-layers[demo]" playwright; apt-get install chromium.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import sys
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def save_png(png: bytes, path: Path, max_kb: int) -> int:
    """Writes the screenshot, quantized to 256 colours when it is larger than `max_kb`."""
    from PIL import Image

    if len(png) > max_kb * 1024:
        image = Image.open(io.BytesIO(png)).convert("RGB")
        buffer = io.BytesIO()
        image.quantize(256, method=Image.Quantize.MEDIANCUT).save(
            buffer, format="PNG", optimize=True
        )
        png = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return len(png)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="groupdnet_shapes64", help="zoo name or folder")
    parser.add_argument(
        "--untrained",
        action="store_true",
        help="screenshot an untrained groupdnet_shapes64 (when no trained preset exists yet)",
    )
    parser.add_argument("--out", default=str(ROOT / "docs" / "figures" / "demo.png"))
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--max-kb", type=int, default=290)
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from playwright.sync_api import sync_playwright

    from smis_layers.serve import launch

    preset = args.preset
    if args.untrained:
        from smis_layers.models import build_architecture

        preset = str(Path(tempfile.mkdtemp()) / "groupdnet_shapes64_untrained")
        build_architecture("groupdnet_shapes64").save_to_preset(preset)
    port = free_port()
    app = launch(preset, port=port, block=False, quiet=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": args.width, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#output-image img")
            present = [
                c
                for c in range(app.engine.num_classes)
                if page.locator(f"#new-style-{c}").is_visible()
            ]
            target = present[min(1, len(present) - 1)]
            before = page.get_attribute("#output-image img", "src")
            page.click(f"#new-style-{target}")
            page.wait_for_function(
                "s => document.querySelector('#output-image img').src !== s", arg=before
            )
            page.wait_for_timeout(500)
            png = page.screenshot(full_page=True)
            browser.close()
    finally:
        app.close()
    size = save_png(png, Path(args.out), args.max_kb)
    print(f"wrote {args.out} ({size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
