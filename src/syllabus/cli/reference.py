"""Render the CLI reference (``docs/cli.md``) from the commands' own ``--help``.

``python -m syllabus.cli.reference > docs/cli.md`` regenerates it; a test fails when the
file and the commands disagree.
"""

from __future__ import annotations

from collections.abc import Iterator

import click

from syllabus.cli.main import cli

__all__ = ["iter_commands", "render_reference"]

_HEADER = """\
# CLI reference

Generated from `syllabus ... --help` by `python -m syllabus.cli.reference > docs/cli.md`;
a test fails when this file is out of date. Every command takes `-h/--help`.
"""


def iter_commands(
    command: click.Command = cli, path: tuple[str, ...] = ("syllabus",)
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command and group, depth first, with its full name."""
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path[-1])
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from iter_commands(sub, (*path, name))


_HELP_NAMES = ["-h", "--help"]
_WIDTH = 88


def _help(path: tuple[str, ...], command: click.Command) -> str:
    parent: click.Context | None = None
    for name in path[:-1]:
        parent = click.Context(cli, info_name=name, parent=parent, help_option_names=_HELP_NAMES)
    ctx = click.Context(
        command,
        info_name=path[-1],
        parent=parent,
        help_option_names=_HELP_NAMES,
        terminal_width=_WIDTH,
        max_content_width=_WIDTH,
    )
    return command.get_help(ctx)


def render_reference() -> str:
    parts = [_HEADER]
    for path, command in iter_commands():
        parts.append(f"\n## `{' '.join(path)}`\n\n```text\n{_help(path, command)}\n```\n")
    return "".join(parts)


if __name__ == "__main__":
    click.echo(render_reference(), nl=False)
