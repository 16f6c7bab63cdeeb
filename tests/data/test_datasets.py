"""The table of dataset facts (`smis_layers.data.datasets`) is the one place of every
per-dataset fact: no `dataset == "..."` branch and no per-dataset number elsewhere."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from smis_layers.data.datasets import DATASETS, dataset_facts, datasets_with_instances
from tests.models.official_reference import OFFICIAL_NUM_CLASSES

PACKAGE = Path(__file__).resolve().parents[2] / "smis_layers"
TABLE = PACKAGE / "data" / "datasets.py"


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path != TABLE:
            yield path, ast.parse(path.read_text(), str(path))


def _docstrings(tree: ast.AST) -> set[int]:
    nodes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, nodes)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def _parents(tree: ast.AST) -> dict[int, ast.AST]:
    return {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def test_dataset_names_appear_only_as_table_lookups():
    """Outside the table a dataset name is never compared with, branched on or used as a dict
    key: the only code that spells one is a lookup `dataset_facts("name")`."""
    found = []
    for path, tree in _sources():
        docstrings, parents = _docstrings(tree), _parents(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and node.value in DATASETS):
                continue
            if id(node) in docstrings:
                continue
            parent = parents[id(node)]
            lookup = (
                isinstance(parent, ast.Call)
                and getattr(parent.func, "id", getattr(parent.func, "attr", None))
                == "dataset_facts"
            )
            if not lookup:
                kind = type(parent).__name__
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {kind}")
    assert not found, f"dataset names outside the table (smis_layers/data/datasets.py): {found}"


def test_no_dataset_comparison_outside_the_table():
    """No `x == "cityscapes"` / `x in ("ade20k", ...)`: the differences are rows of the table."""
    found = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            operands = [node.left, *node.comparators]
            constants = [
                value
                for operand in operands
                for value in (
                    [operand] if isinstance(operand, ast.Constant) else getattr(operand, "elts", [])
                )
                if isinstance(value, ast.Constant)
            ]
            if any(c.value in DATASETS for c in constants):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert not found, found


@pytest.mark.parametrize("fact", ["num_classes", "ngf", "encoder_channels"])
def test_per_dataset_numbers_are_written_once(fact):
    """The class counts (35, 151) and the official widths (160, 280; 350, 604) are integer
    literals of the table only (8, 64 and 256 are too common a number to grep for)."""
    numbers = {getattr(row, fact) for row in DATASETS.values()} - {8, 64, 256}
    assert numbers
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.value}"
        for path, tree in _sources()
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value in numbers
    ]
    assert not found, f"{fact} literals outside the table: {found}"


def test_table_matches_the_independent_reference():
    assert {name: row.num_classes for name, row in DATASETS.items()} == OFFICIAL_NUM_CLASSES
    assert datasets_with_instances() == ("cityscapes",)
    for row in DATASETS.values():
        blocks = row.decoder
        lengths = {
            len(blocks.widths),
            len(blocks.groups),
            len(blocks.norm_hidden),
            len(blocks.norm_shared_groups),
            len(blocks.norm_groups),
        }
        assert lengths == {7}, row.name


def test_unknown_dataset_names_the_choices():
    with pytest.raises(ValueError, match=r"`dataset` must be one of .*received dataset='coco'"):
        dataset_facts("coco")


def test_every_consumer_reads_the_table():
    from smis_layers.cli import build_parser
    from smis_layers.data.folders import DATASET_CLASSES
    from smis_layers.data.labels import LABEL_CONVENTIONS
    from smis_layers.layers.group_decreasing_schedule import GroupDecreasingSchedule

    assert {name: row.num_classes for name, row in DATASETS.items()} == DATASET_CLASSES
    for name, row in DATASETS.items():
        assert LABEL_CONVENTIONS[name].classes == row.num_classes
        assert LABEL_CONVENTIONS[name].shift_other == row.shift_other
        schedule = GroupDecreasingSchedule.official(name)
        assert schedule.latent_size == row.latent_size
        assert schedule.blocks[-1].filters == row.ngf * row.decoder.widths[-1]
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    data = next(action for action in train._actions if action.dest == "data")
    assert tuple(data.choices) == ("synthetic", *DATASETS)


def test_the_table_imports_nothing_heavy():
    """A layer file and the CLI import the table: it must not start Keras or the loaders."""
    code = (
        "import sys, smis_layers.data.datasets; "
        "print(sorted(m for m in ('keras', 'numpy', 'smis_layers.data.folders') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
