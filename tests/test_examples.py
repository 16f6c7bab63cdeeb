"""Every script of `examples/` runs in its smoke mode (`--smoke`), so no example can rot.

The examples run in subprocesses, never in the pytest process. Most of a smoke run is importing
TensorFlow, so examples that leave no global state share an interpreter
(`tests/run_examples.py` runs them one after the other, each as `python EXAMPLE --smoke` would):
the zoo applications and the metrics in one, the training and conversion examples in another,
and example 09 alone (it configures TensorFlow's logical devices before TensorFlow starts).
The groups run concurrently. `SMIS_EXAMPLES_ISOLATED=1` gives every example its own
interpreter instead.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("[0-9][0-9]_*.py"))
RUNNER = Path(__file__).with_name("run_examples.py")
TIMEOUT_S = 300  # per example
# Examples sharing one interpreter; an example not listed runs alone.
GROUPS = (("02", "03", "04", "05", "06", "10"), ("01", "07", "08", "11"))
# What each example must have written to its --out folder.
OUTPUTS = {
    "01": ["reconstructions.png"],
    "02": ["samples.png", "labels_0.npy"],
    "03": ["per_class_resampling.png"],
    "04": ["mixture.png"],
    "05": ["manipulation.png"],
    "06": ["morph.png", "morph.gif"],
    "07": ["samples.png", "preset/config.json", "preset/model.weights.h5"],
    "08": ["fake_deepfashion/train/000000.jpg", "preset/model.weights.h5"],
    "09": ["preset/model.weights.h5"],
    "10": ["evaluation.md"],
    # Without PyTorch, example 11 says that it needs it and stops.
    "11": ["preset/model.weights.h5", "samples.png"] if importlib.util.find_spec("torch") else [],
}


def _number(path: Path) -> str:
    return path.name[:2]


def _groups(numbers: list[str]) -> list[list[str]]:
    if os.environ.get("SMIS_EXAMPLES_ISOLATED") == "1":
        return [[n] for n in numbers]
    grouped = {n for group in GROUPS for n in group}
    groups = [[n for n in group if n in numbers] for group in GROUPS]
    return [g for g in groups if g] + [[n] for n in numbers if n not in grouped]


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


def _run_group(numbers: list[str], out_root: Path) -> dict[str, dict]:
    """Runs the examples `numbers` in one subprocess: {number: result}."""
    paths = [str(e) for n in numbers for e in EXAMPLES if _number(e) == n]
    results_path = out_root / f"results_{'_'.join(numbers)}.json"
    env = {
        **os.environ,
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    command = [sys.executable, str(RUNNER), str(results_path), str(out_root), *paths]
    start = time.perf_counter()
    try:
        process = subprocess.run(
            command,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S * len(numbers),
        )
        output = process.stdout + process.stderr
    except subprocess.TimeoutExpired as error:
        output = _text(error.stdout) + _text(error.stderr) + "\n(timed out)"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    unfinished = {"code": None, "seconds": time.perf_counter() - start, "traceback": None}
    return {
        n: {**results.get(n, unfinished), "output": output, "out": out_root / n} for n in numbers
    }


@pytest.fixture(scope="module")
def smoke_runs(request, tmp_path_factory) -> dict[str, dict]:
    """{example number: result} of the examples whose tests were selected."""
    selected = [
        _number(item.callspec.params["example"])
        for item in request.session.items
        if item.module is request.module
        and hasattr(item, "callspec")
        and "example" in item.callspec.params
    ]
    out_root = tmp_path_factory.mktemp("examples")
    groups = _groups(selected)
    results = {}
    with ThreadPoolExecutor(max(1, len(groups))) as pool:
        for group_results in pool.map(lambda group: _run_group(group, out_root), groups):
            results.update(group_results)
    return results


def test_examples_are_numbered_and_documented():
    numbers = [_number(e) for e in EXAMPLES]
    assert numbers == [f"{i:02d}" for i in range(1, len(EXAMPLES) + 1)], numbers
    assert set(numbers) == set(OUTPUTS), "every example needs its expected outputs in OUTPUTS"
    for example in EXAMPLES:
        source = example.read_text()
        docstring = ast.get_docstring(ast.parse(source))
        assert docstring, f"{example.name} has no docstring"
        assert re.search(r"^Takes ", docstring, re.MULTILINE), f"{example.name}: how long?"
        assert f"python examples/{example.name}" in docstring, f"{example.name}: how to run?"
        assert '"--smoke"' in source, f"{example.name} has no --smoke flag"


@pytest.mark.parametrize("example", EXAMPLES, ids=_number)
def test_example_runs_in_smoke_mode(example, smoke_runs):
    result = smoke_runs[_number(example)]
    log = f"{result['traceback'] or ''}\n--- its interpreter's output:\n{result['output'][-3000:]}"
    assert result["code"] is not None, f"{example.name} --smoke did not finish:\n{log}"
    assert result["code"] == 0, f"{example.name} --smoke failed ({result['seconds']:.0f} s):\n{log}"
    missing = [name for name in OUTPUTS[_number(example)] if not (result["out"] / name).is_file()]
    assert not missing, f"{example.name} did not write {missing}:\n{log}"
