"""Griffe extension of the documentation site (mkdocs.yml, mkdocstrings `extensions:`).

The library's docstrings are Google style, with their examples in an indented `Examples:`
section, which Griffe renders as code. This extension joins a list of parameter names wrapped
over two lines (`a, b, c,` / `d: as in ...`, in `GroupConv2D`) into one `a, b, c, d: ...` item,
which Griffe cannot read otherwise, and renders the items of a `Call arguments:` section (shown
as a note) as a bulleted list instead of one run-on paragraph.
"""

from __future__ import annotations

import re

import griffe

_WRAPPED_NAMES = re.compile(r"^(\s+)(\w+(?:, \w+)*,)\s*\n\1(?=\w)", re.MULTILINE)


def join_wrapped_parameter_names(text: str) -> str:
    """`    a, b,` + `    c: text` -> `    a, b, c: text`."""
    return _WRAPPED_NAMES.sub(lambda m: f"{m.group(1)}{m.group(2)} ", text)


_ITEM = re.compile(r"^    (\*{0,2}\w+):(.*)$")


def list_call_arguments(text: str) -> str:
    """`Call arguments:` items (`    name: text`, continued at 8 spaces) -> a Markdown list."""
    lines = text.split("\n")
    out, inside = [], False
    for line in lines:
        if line.strip() == "Call arguments:":
            inside = True
            out.append(line)
            continue
        if inside and line and not line[0].isspace():
            inside = False
        match = _ITEM.match(line) if inside else None
        if match:
            out.append(f"    - `{match.group(1)}`:{match.group(2)}")
        elif inside and line.startswith("        "):
            out.append("      " + line.lstrip())
        else:
            out.append(line)
    return "\n".join(out)


class ParameterLists(griffe.Extension):
    """Joins wrapped parameter-name lists and lists the items of `Call arguments:`."""

    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            text = join_wrapped_parameter_names(obj.docstring.value)
            obj.docstring.value = list_call_arguments(text)
