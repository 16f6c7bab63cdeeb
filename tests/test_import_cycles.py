"""No import cycle between the package's modules.

The graph: an edge A -> B for every `import smis_layers.B` / `from smis_layers.B import x` /
`from smis_layers import B` (B a submodule) written in module A, parsed with `ast` (nothing is
imported). Function-local imports count like module-level ones: an import placed inside a
function to dodge a cycle still ties the two modules in both directions, so it is reported too.
Two kinds of import are not edges:

- those under `if TYPE_CHECKING:` (they never run);
- those inside a module-level `__getattr__`: the lazy re-exports of a package's `__init__`
  (`smis_layers/__init__.py`, `smis_layers/serve/__init__.py`: a package naming its submodules
  is its table of contents, not a dependency) and the deprecated aliases of a module that moved
  names out (`smis_layers.presets.write_model_card`: the alias points at the name's new home,
  and goes with the next release).

Importing `smis_layers.a.b` also runs `smis_layers/a/__init__.py`; that implicit parent edge is
not counted (as in import-linter), or every module would depend on `smis_layers/__init__.py`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import smis_layers

PACKAGE = Path(smis_layers.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "zoo" not in p.parts}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """The smis_layers modules that `tree` imports, outside TYPE_CHECKING blocks and the
    module-level `__getattr__`."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Module):
            for child in node.body:
                if not (isinstance(child, ast.FunctionDef) and child.name == "__getattr__"):
                    visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            for alias in node.names:  # a submodule if there is one, else the module itself
                submodule = f"{name}.{alias.name}"
                found.add(submodule if submodule in modules else name)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        imported = _imports(tree, name, path.name == "__init__.py", set(modules))
        graph[name] = {m for m in imported if m in modules and m != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def test_graph_sees_the_package():
    graph = import_graph()
    assert "smis_layers.presets" in graph
    assert "smis_layers.layers.cg_norm" in graph["smis_layers.layers.cg_block"]


def test_what_counts_as_an_import():
    source = """
from typing import TYPE_CHECKING
import smis_layers.presets
from smis_layers.utils import io
from smis_layers.models.segmaps import prepare_segmap
from . import cli
if TYPE_CHECKING:
    from smis_layers.serve import app
def f():
    from smis_layers.model_card import write_model_card
def __getattr__(name):
    from smis_layers.data import labels
"""
    modules = set(_modules())
    found = _imports(ast.parse(source), "smis_layers.applications", False, modules)
    assert found & modules == {
        "smis_layers.presets",
        "smis_layers.utils.io",  # a submodule named in `from package import submodule`
        "smis_layers.models.segmaps",
        "smis_layers.cli",  # relative
        "smis_layers.model_card",  # function-local imports count
    }


def test_find_cycles_reports_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "Import cycles between smis_layers modules:\n" + "\n".join(
        " <-> ".join(cycle) for cycle in cycles
    )
