"""MkDocs hook: the pages that must follow the code are generated from it at build time.

`<!-- generated: cli -->` becomes the reference of every `hmr` command, found by walking the click
group the way `hmr --help` does (so the lazy subsystem commands and the `model` subgroup are there);
`<!-- generated: replica-env -->` becomes the table of the variables the replica client reads, taken
from the client's own declaration. Nothing here is written by hand, so the pages cannot drift.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import click

CLI_MARKER = "<!-- generated: cli -->"
ENV_MARKER = "<!-- generated: replica-env -->"
# help text is wrapped by click; a fixed width keeps the generated page the same on every machine
WIDTH = 100


def walk(command: click.Command, ctx: click.Context) -> Iterator[tuple[click.Context, click.Command]]:
    """Every command under `command` (itself first), depth first, each with its own context."""
    yield ctx, command
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None:
                continue
            yield from walk(sub, click.Context(sub, info_name=name, parent=ctx, max_content_width=WIDTH,
                                               terminal_width=WIDTH))


def root_context() -> tuple[click.Context, click.Command]:
    """The `hmr` group and a context named as the installed command is."""
    from builder.cli import main

    return click.Context(main, info_name="hmr", max_content_width=WIDTH, terminal_width=WIDTH), main


def cli_reference() -> str:
    """Markdown for every command: a heading with its full name, its summary, then its `--help`."""
    ctx, main = root_context()
    parts = []
    for sub_ctx, command in walk(main, ctx):
        path = sub_ctx.command_path
        level = "#" * min(2 + path.count(" "), 4)
        summary = (command.help or "").split("\n\n")[0].replace("\n", " ").strip()
        parts.append(f"{level} `{path}`\n\n{summary}\n\n```text\n{command.get_help(sub_ctx)}\n```\n")
    return "\n".join(parts)


def replica_env_vars() -> dict[str, tuple[str, str]]:
    """The client's variables: name -> (default, meaning), read from the code at build time."""
    from builder.replica import ReplicaConfig

    declared = getattr(ReplicaConfig, "ENV_VARS", None)
    if declared is None:  # declared beside the class, in the module that defines it
        declared = sys.modules[ReplicaConfig.__module__].ENV_VARS
    return dict(declared)


def env_table() -> str:
    """The replica client's variables as a Markdown table."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, (default, meaning) in replica_env_vars().items():
        cell = f"`{default}`" if default and not default.startswith(("(", "the ")) else default
        rows.append(f"| `{name}` | {cell} | {meaning.replace('|', '&#124;')} |")
    return "\n".join(rows) + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs event: fill the markers of the page being rendered."""
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    if ENV_MARKER in markdown:
        markdown = markdown.replace(ENV_MARKER, env_table())
    return markdown
