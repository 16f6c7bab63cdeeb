"""MkDocs hooks of the documentation site (mkdocs.yml `hooks:`).

Pages filled in at build time, so that they cannot drift from the code:

- `<!-- smis-cli-help -->` (docs/api/cli.md) becomes the `--help` text of every `smis` command,
  taken from the parser itself (`smis_layers.cli.build_parser`; building it does not import
  TensorFlow);
- `<!-- smis-examples -->` (docs/examples.md) becomes one section per script of `examples/`,
  made of its module docstring;
- `zoo.md`, while docs/zoo.md does not exist (`smis evaluate --zoo-page` writes it), is
  generated from the model cards of `zoo/` (each preset's README.md and the pictures it shows).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
CLI_MARKER = "<!-- smis-cli-help -->"
EXAMPLES_MARKER = "<!-- smis-examples -->"
REPOSITORY_EXAMPLES = "examples"
ZOO = ROOT / "zoo"
ZOO_PAGE = "zoo.md"
_LOCAL_LINK = re.compile(r"(!?\[[^\]]*\])\(([^):/#]+)\)")


def _subcommands(parser: argparse.ArgumentParser):
    for action in parser._actions:  # argparse has no public accessor for sub-parsers
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def cli_help_markdown() -> str:
    """`smis --help` and `smis COMMAND --help` for every command, as Markdown sections."""
    from smis_layers.cli import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"  # argparse wraps to the terminal's width
    try:
        parser = build_parser()
        sections = [f"## `smis`\n\n```text\n{parser.format_help().rstrip()}\n```\n"]
        for name, sub in _subcommands(parser):
            nested = list(_subcommands(sub))
            sections.append(f"## `smis {name}`\n\n```text\n{sub.format_help().rstrip()}\n```\n")
            for nested_name, nested_parser in nested:
                sections.append(
                    f"## `smis {name} {nested_name}`\n\n"
                    f"```text\n{nested_parser.format_help().rstrip()}\n```\n"
                )
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous
    return "\n".join(sections)


def examples_markdown() -> str:
    """One section per `examples/NN_*.py`: its title, its docstring and how to run it."""
    sections = []
    for path in sorted((ROOT / REPOSITORY_EXAMPLES).glob("[0-9][0-9]_*.py")):
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        title, _, body = docstring.partition("\n")
        sections.append(
            f"## {path.stem[:2]}: {title.rstrip('.')}\n\n"
            f"`{REPOSITORY_EXAMPLES}/{path.name}`\n\n{body.strip()}\n"
        )
    return "\n".join(sections)


def _zoo_presets() -> list[Path]:
    return sorted(p for p in ZOO.iterdir() if (p / "metadata.json").is_file())


def zoo_stub_markdown() -> tuple[str, list[tuple[str, Path]]]:
    """The stand-in zoo page and the (site path, file) pairs of the pictures it shows."""
    lines = [
        "# Model zoo",
        "",
        "The presets shipped with the library (`smis zoo list`; load one with",
        '`smis_layers.models.from_preset("NAME")`). This page is assembled from their model',
        "cards when the site is built; `smis evaluate --zoo-page docs/zoo.md` replaces it with the",
        "measured comparison table (see [Evaluation](evaluation.md)).",
        "",
        "| preset | class | description | parameters | files |",
        "|---|---|---|---|---|",
    ]
    pictures, cards = [], []
    for preset in _zoo_presets():
        meta = json.loads((preset / "metadata.json").read_text())
        size = sum(f.stat().st_size for f in preset.iterdir() if f.is_file()) / 1e6
        lines.append(
            f"| [{preset.name}](#{preset.name}) | `{meta.get('class_name')}` "
            f"| {meta.get('description', meta.get('task', ''))} "
            f"| {meta.get('parameters', 0):,} | {size:.1f} MB |"
        )
        card = preset / "README.md"
        if not card.is_file():
            cards += ["", f"## {preset.name}", "", "No model card."]
            continue
        text = card.read_text()

        def relink(match: re.Match, preset: Path = preset) -> str:
            target = preset / match.group(2)
            if not target.is_file():
                return match.group(1)  # a link to a file outside the card's folder: text only
            uri = f"zoo/{preset.name}/{match.group(2)}"
            pictures.append((uri, target))
            return f"{match.group(1)}({uri})"

        text = _LOCAL_LINK.sub(relink, text)
        text = re.sub(r"^(#+) ", r"#\1 ", text, flags=re.MULTILINE)  # one level down
        cards += ["", text.strip()]
    return "\n".join(lines + cards) + "\n", pictures


def on_files(files, config):
    """Adds the stand-in zoo page (and its pictures) while docs/zoo.md does not exist."""
    if files.get_file_from_path(ZOO_PAGE) is not None:
        return files
    markdown, pictures = zoo_stub_markdown()
    files.append(File.generated(config, ZOO_PAGE, content=markdown))
    for uri, path in pictures:
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_help_markdown())
    if EXAMPLES_MARKER in markdown:
        markdown = markdown.replace(EXAMPLES_MARKER, examples_markdown())
    return markdown
