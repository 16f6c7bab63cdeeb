"""The demo server's defaults, read by both `smis serve` (serve/cli.py, light: no gradio, no
TensorFlow) and the app (serve/app.py)."""

#: The TCP port `smis serve` and `launch` listen on by default (gradio's).
DEFAULT_PORT = 7860
