"""The demo page in a real browser: Debian's headless Chromium driven by Playwright clicks the
page's controls and the images the server returns are compared pixel-wise with the mask.

Skipped (with the reason) when gradio, playwright or /usr/bin/chromium is missing; the page's
logic is tested without a browser in test_engine.py.
"""

import argparse
import io
import os
import shutil
import socket
import sys
import time

import numpy as np
import pytest
from PIL import Image

from smis_layers.serve import add_parser
from smis_layers.serve.app import INSTALL_HINT, import_gradio
from smis_layers.utils.images import colourize

CHROMIUM = os.environ.get("SMIS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing() -> str | None:
    try:
        import gradio  # noqa: F401
    except ImportError:
        return f"gradio is not installed ({INSTALL_HINT})"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set SMIS_CHROMIUM)"
    return None


needs_browser = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def browser():
    if _missing():
        pytest.skip(_missing())
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def serve(preset):
    from smis_layers.serve import launch

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    port = free_port()
    app = launch(preset, port=port, block=False, quiet=True)
    return app, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def mulnet_server(mulnet_preset):
    if _missing():
        pytest.skip(_missing())
    app, url = serve(str(mulnet_preset))  # from the preset folder, as `smis serve` does
    yield app, url
    app.close()


@pytest.fixture(scope="module")
def groupdnet_server(groupdnet_engine):
    if _missing():
        pytest.skip(_missing())
    app, url = serve(groupdnet_engine)  # the already loaded engine (saves a load)
    yield app, url
    app.close()


class Page:
    """A browser tab on the demo page, reading the generated image at the model's size."""

    def __init__(self, browser, url, scale):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.goto(url)
        self.page.wait_for_selector("#output-image img")
        self.scale = scale
        self.server_ms: list[float] = []

    def src(self) -> str:
        return self.page.get_attribute("#output-image img", "src")

    def image(self) -> np.ndarray:
        body = self.page.request.get(self.src()).body()
        image = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))
        return image[:: self.scale, :: self.scale]

    def act(self, action) -> tuple[np.ndarray, float]:
        """Runs `action` (a click, ...) and waits for a new image: (image, seconds from the
        action to the new image in the page). Records the server's time for the action (the
        status line's "... · N ms") in `server_ms`."""
        before = self.src()
        start = time.perf_counter()
        action()
        self.page.wait_for_function(
            "s => document.querySelector('#output-image img').src !== s", arg=before
        )
        seconds = time.perf_counter() - start
        self.server_ms.append(float(self.status().rsplit("·", 1)[-1].split()[0]))
        return self.image(), seconds

    def status(self) -> str:
        return self.page.inner_text("#status")

    def close(self):
        self.page.close()


def change_map(before, after):
    return np.abs(after.astype("int32") - before.astype("int32")).sum(-1)


# ---------------------------------------------------------------------- tests
@needs_browser
def test_new_style_in_the_browser_changes_only_that_class_mulnet(browser, mulnet_server):
    app, url = mulnet_server
    engine = app.engine
    page = Page(browser, url, engine.scale)
    state = engine.start(0, 0)  # what a new session shows
    mask = state.labels
    before = page.image()
    np.testing.assert_array_equal(before, engine.render(state))
    timings = {}
    for c in engine.present_classes(mask)[1:3]:
        after, timings[f"new style {c}"] = page.act(lambda c=c: page.page.click(f"#new-style-{c}"))
        change = change_map(before, after)
        inside, outside = change[mask == c], change[mask != c]
        assert inside.mean() > 0.5, (c, inside.mean())
        assert outside.max() == 0, f"class {c}: pixels of other classes changed"
        state = engine.new_style(state, c)
        np.testing.assert_array_equal(after, engine.render(state))
        assert f"New style for {c}" in page.status()
        before = after

    # Morph the last class to B through its slider's number box (fires the slider's input).
    c = engine.present_classes(mask)[2]

    def morph():
        box = page.page.locator(f"#morph-{c} input[type=number]")
        box.fill("1")
        box.press("Enter")

    after, timings["morph"] = page.act(morph)
    change = change_map(before, after)
    assert change[mask != c].max() == 0
    np.testing.assert_array_equal(after, engine.render(engine.morph(state, c, 1.0)))

    # Reset: back to the seed's image.
    _, timings["reset"] = page.act(lambda: page.page.click("#reset"))
    np.testing.assert_array_equal(page.image(), engine.render(engine.start(0, 0)))

    # Appearance mixture from the pre-filled reference example, every shared class.
    _, timings["copy"] = page.act(lambda: page.page.click("#copy-appearance"))
    assert "Copied" in page.status()

    # Semantic manipulation: paint a stroke with the brush (class 1's colour by default) and
    # generate from the painted mask; the codes stay, so the change is around the stroke only.
    before = page.image()
    box = page.page.locator("#mask-editor canvas").last.bounding_box()
    mouse, y = page.page.mouse, box["y"] + box["height"] * 0.12
    mouse.move(box["x"] + box["width"] * 0.3, y)
    mouse.down()
    for fraction in np.linspace(0.3, 0.7, 10):
        mouse.move(box["x"] + box["width"] * fraction, y)
    mouse.up()
    page.page.wait_for_timeout(200)
    after, timings["painted mask"] = page.act(lambda: page.page.click("#apply-mask"))
    assert "Painted mask" in page.status()
    changed_rows = change_map(before, after).sum(1) > 0
    assert changed_rows.any() and not changed_rows.all()
    assert page.page.locator("#new-style-1").is_visible()

    print("browser seconds per action (click to new image):", timings)
    print("server milliseconds per action:", page.server_ms)
    # Every action's status line reports the server's time; how fast the handlers answer is
    # measured by `python -m benchmarks demo` (docs/benchmarks.md), not asserted here.
    assert len(page.server_ms) == len(timings) and min(page.server_ms) > 0, page.server_ms
    page.close()


@needs_browser
def test_new_style_and_upload_in_the_browser_groupdnet(browser, groupdnet_server, tmp_path):
    """GroupDNet: the page resamples exactly class c's code (the image equals the model's for
    the codes with only class c's channels replaced); then an uploaded label map drives an
    appearance mixture. The untrained model is not disentangled, so the inside/outside change
    ratio is only reported."""
    app, url = groupdnet_server
    engine = app.engine
    page = Page(browser, url, engine.scale)
    state = engine.start(0, 0)
    before = page.image()
    c = engine.present_classes(state.labels)[1]
    after, seconds = page.act(lambda: page.page.click(f"#new-style-{c}"))
    expected = engine.new_style(state, c)
    lo, hi = engine.model.class_channels(c)
    changed = np.any(engine.z(expected) != engine.z(state), axis=(0, 1, 2))
    assert np.flatnonzero(changed).tolist() == list(range(lo, hi))
    np.testing.assert_array_equal(after, engine.render(expected))
    change = change_map(before, after)
    inside, outside = change[state.labels == c].mean(), change[state.labels != c].mean()
    assert inside > 0

    # Appearance mixture from an uploaded palette-PNG label map (example 2's labels, matching
    # the pre-filled reference image), for one class chosen in the dropdown.
    labels = engine.examples["masks"][1].astype("uint8")
    shared = set(engine.present_classes(labels)) & set(engine.present_classes(state.labels))
    k = max(shared)
    path = tmp_path / "reference_mask.png"
    image = Image.fromarray(labels)
    image.putpalette(colourize(np.arange(256)).reshape(-1).tolist())  # L -> P, same indices
    image.save(path)
    old_mask = page.page.get_attribute("#reference-mask img", "src")
    page.page.set_input_files("#reference-mask input[type=file]", str(path))
    page.page.wait_for_function(
        "s => { const i = document.querySelector('#reference-mask img'); return i && i.src !== s }",
        arg=old_mask,
    )
    page.page.click("#class-choice input")
    page.page.click(f'#class-choice [role=option][aria-label="{k} {engine.class_names[k]}"]')
    mixed, _ = page.act(lambda: page.page.click("#copy-appearance"))
    assert f"for {k} " in page.status()
    reference_image, _ = app.callbacks.reference_example(1)
    _, shown, _, _ = app.callbacks.copy_appearance(expected, k, reference_image, Image.open(path))
    np.testing.assert_array_equal(mixed, shown[:: engine.scale, :: engine.scale])
    print(
        f"untrained GroupDNet, class {c}: mean change inside {inside:.1f}, outside "
        f"{outside:.1f} (ratio {inside / max(outside, 1e-9):.2f}); {seconds:.3f} s"
    )
    page.close()


# ---------------------------------------------------------------------- CLI and install hint
def test_serve_subcommand_parses():
    parser = argparse.ArgumentParser(prog="smis")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--preset", "p", "--port", "8123", "--host", "0.0.0.0"])
    assert (args.preset, args.port, args.host, args.share) == ("p", 8123, "0.0.0.0", False)
    defaults = parser.parse_args(["serve"])
    assert (defaults.preset, defaults.host) == ("groupdnet_shapes64", "127.0.0.1")
    assert callable(defaults.handler)


def test_missing_gradio_tells_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)
    with pytest.raises(ImportError, match=r'pip install "smis-layers\[demo\]"'):
        import_gradio()
    parser = argparse.ArgumentParser(prog="smis")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--preset", "anything"])
    assert args.handler(args) == 1
    assert 'pip install "smis-layers[demo]"' in capsys.readouterr().err


def test_unknown_preset_is_a_clear_error(capsys):
    if _missing() and "gradio" in _missing():
        pytest.skip(_missing())
    parser = argparse.ArgumentParser(prog="smis")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--preset", "no_such_preset_xyz"])
    assert args.handler(args) == 1
    err = capsys.readouterr().err
    assert "no_such_preset_xyz" in err and "--preset" in err


def test_registering_the_subcommand_starts_neither_tensorflow_nor_gradio():
    import subprocess

    code = (
        "import argparse, sys\n"
        "from smis_layers.serve import add_parser\n"
        "add_parser(argparse.ArgumentParser().add_subparsers())\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'gradio') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
