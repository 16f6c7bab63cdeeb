"""Statements of the documentation that the code decides, checked against the code, so that the
next change of the code cannot leave the docs contradicting it."""

from pathlib import Path

from smis_layers.training.trainer import TRAINING_BACKENDS

ROOT = Path(__file__).resolve().parent.parent
BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}


def _table(text: str, first_header_cell: str) -> list[list[str]]:
    """The rows (cells stripped) of the Markdown table whose header starts with the given cell."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_header_cell:
            rows = [cells]
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
            return rows
    raise AssertionError(f"no table with header cell {first_header_cell!r}")


def test_installation_table_says_where_training_runs():
    header, *rows = _table((ROOT / "docs" / "installation.md").read_text(), "")
    training = next(row for row in rows if "`smis train`" in row[0])
    documented = {
        backend
        for backend, title in BACKEND_NAMES.items()
        if training[header.index(title)].startswith("yes")
    }
    assert documented == set(TRAINING_BACKENDS), (
        "docs/installation.md's 'What runs where' table disagrees with "
        f"smis_layers.training.trainer.TRAINING_BACKENDS {TRAINING_BACKENDS}"
    )


def test_readme_names_the_training_backends():
    readme = " ".join((ROOT / "README.md").read_text().split())
    titles = [BACKEND_NAMES[b] for b in TRAINING_BACKENDS]
    names = " or ".join([", ".join(titles[:-1]), titles[-1]]) if len(titles) > 1 else titles[0]
    assert f"(training: {names})" in readme, (
        f"README.md must say '(training: {names})' (smis_layers.training.trainer.TRAINING_BACKENDS)"
    )
