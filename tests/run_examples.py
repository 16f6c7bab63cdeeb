"""Runs example scripts in smoke mode, one after the other, in this interpreter.

    python tests/run_examples.py RESULTS.json OUT_ROOT examples/02_*.py examples/03_*.py ...

Each example runs as `python EXAMPLE --smoke --out OUT_ROOT/NN` would run it (`runpy` with
`__name__ == "__main__"` and its own `sys.argv`); the results (exit status, seconds, traceback)
are written to RESULTS.json after each example. tests/test_examples.py uses it so that several
examples share one TensorFlow import, the largest part of a smoke run.
"""

from __future__ import annotations

import json
import runpy
import sys
import time
import traceback
from pathlib import Path


def run(example: Path, out: Path) -> dict:
    saved_argv = sys.argv
    sys.argv = [str(example), "--smoke", "--out", str(out)]
    start = time.perf_counter()
    code, error = 0, None
    try:
        runpy.run_path(str(example), run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:
        code, error = 1, traceback.format_exc()
    finally:
        sys.argv = saved_argv
    sys.stdout.flush()
    return {"code": code, "seconds": time.perf_counter() - start, "traceback": error}


def main(argv: list[str]) -> int:
    results_path, out_root, examples = Path(argv[1]), Path(argv[2]), [Path(a) for a in argv[3:]]
    results = {}
    for example in examples:
        print(f"===== {example.name} --smoke", flush=True)
        results[example.name[:2]] = run(example, out_root / example.name[:2])
        results_path.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
