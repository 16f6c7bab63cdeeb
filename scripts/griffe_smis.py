"""Griffe extension of the documentation site (mkdocs.yml, mkdocstrings `extensions:`).

The library's docstrings are Google style, with their examples in an indented `Examples:`
section, which Griffe renders as code. Older docstrings wrote them Keras-style: a singular
`Example:` heading followed, at the same indentation, by doctest lines (`>>> ...`), which Griffe
would render as Markdown text (where an output such as `[(1, 8)]` reads as a broken link). This
extension still rewrites such a section into Griffe's form when the docstrings are loaded, for
the modules not yet converted at the source (`smis_layers/training/`, `data/folders.py`,
`layers/group_decreasing_schedule.py`, edited in parallel by another change); once they are,
`indent_example_sections` goes.

It also joins a list of parameter names wrapped over two lines (`a, b, c,` / `d: as in ...`,
in `GroupConv2D`) into one `a, b, c, d: ...` item, which Griffe cannot read otherwise, and
renders the items of a `Call arguments:` section (shown as a note) as a bulleted list instead
of one run-on paragraph.
"""

from __future__ import annotations

import re

import griffe

_HEADING = re.compile(r"^Examples?:\s*$")
_NEXT_SECTION = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")
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


def indent_example_sections(text: str) -> str:
    """`Example:` + flush-left doctest lines -> `Examples:` + the lines indented by 4."""
    lines = text.split("\n")
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if not _HEADING.match(line):
            out.append(line)
            i += 1
            continue
        out.append("Examples:")
        i += 1
        while i < len(lines) and not lines[i].strip():  # the section must start at once
            i += 1
        while i < len(lines) and not _NEXT_SECTION.match(lines[i]):
            body = lines[i]
            flush_left = body and not body[0].isspace()
            out.append("    " + body if flush_left else body)
            i += 1
    return "\n".join(out)


class SingularExampleHeading(griffe.Extension):
    """Reads a docstring's flush-left `Example:` section as Griffe's `Examples:` section (and
    joins wrapped parameter-name lists)."""

    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            text = list_call_arguments(join_wrapped_parameter_names(obj.docstring.value))
            obj.docstring.value = indent_example_sections(text)
