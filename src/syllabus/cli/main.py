"""``syllabus``: the command-line skin over the library.

Commands are ``syllabus <noun> <verb>``; each is a thin call into :class:`syllabus.Client`.
Expected errors print one line ``Error: ...`` on stderr and exit 1 (usage errors exit 2);
``SYLLABUS_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from syllabus import __version__
from syllabus.errors import SyllabusError

__all__ = ["cli", "main"]


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when used (keeps ``--help`` fast)."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module_name, attr = self.lazy[cmd_name].rsplit(":", 1)
            module = __import__(module_name, fromlist=[attr])
            command: click.Command = getattr(module, attr)
            return command
        return super().get_command(ctx, cmd_name)


COMMANDS = {
    "init": "syllabus.cli.workspace:init_command",
    "info": "syllabus.cli.workspace:info_command",
    "db": "syllabus.cli.db:db",
    "store": "syllabus.cli.store:store",
    "demo": "syllabus.cli.demo:demo",
    "data": "syllabus.cli.data:data",
    "remote": "syllabus.cli.remote:remote",
    "code": "syllabus.cli.code:code",
    "env": "syllabus.cli.env:env",
    "notebook": "syllabus.cli.notebook:notebook",
    "experiments": "syllabus.cli.experiments:experiments",
    "runs": "syllabus.cli.runs:runs",
    "models": "syllabus.cli.models:models",
    "policy": "syllabus.cli.policy:policy",
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="syllabus")
def cli() -> None:
    """Syllabus: data and code versioning, experiment tracking, a model registry,
    evaluation, deployment and monitoring in one ledger.

    Commands find the nearest .syllabus workspace from the current folder upwards;
    SYLLABUS_URI and SYLLABUS_BLOBS point elsewhere.
    """


def _debug() -> bool:
    return os.environ.get("SYLLABUS_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    try:
        cli.main(args=argv, prog_name="syllabus", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SyllabusError as exc:
        if _debug():
            raise
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        click.echo(f"Error: {first_line}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    sys.exit(0)
