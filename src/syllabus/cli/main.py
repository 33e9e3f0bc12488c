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

    def __init__(
        self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module_name, attr = self.lazy[cmd_name][0].rsplit(":", 1)
            module = __import__(module_name, fromlist=[attr])
            command: click.Command = getattr(module, attr)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List subcommands from the registry's short help: `--help` imports none of them."""
        rows = [(name, self.lazy[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


COMMANDS: dict[str, tuple[str, str]] = {
    # name: ("module:attribute", the command's short help, shown by `syllabus --help`
    # without importing the module; a test keeps it equal to the command's own)
    "init": (
        "syllabus.cli.workspace:init_command",
        "Create a workspace (.syllabus/) in FOLDER (default: the current folder).",
    ),
    "info": (
        "syllabus.cli.workspace:info_command",
        "Show the workspace, backends and versions, schema revision, object counts and sizes.",
    ),
    "db": (
        "syllabus.cli.db:db",
        "Inspect and migrate the metadata database's schema.",
    ),
    "store": (
        "syllabus.cli.store:store",
        "Check, clean and measure the content-addressed blob store.",
    ),
    "demo": (
        "syllabus.cli.demo:demo",
        "Run the end-to-end demo on a fresh embedded workspace.",
    ),
    "data": (
        "syllabus.cli.data:data",
        (
            "Version datasets: files and folders, with chunk-level deduplication and tabular "
            "profiles (schema and column statistics)."
        ),
    ),
    "remote": (
        "syllabus.cli.remote:remote",
        "Name blob stores (a folder or s3://bucket/prefix) for `data push` and `data pull`.",
    ),
    "code": (
        "syllabus.cli.code:code",
        (
            "The code runs were started from: git commit, branch, remote, uncommitted patch and "
            "untracked files (or a snapshot of source files outside git), and the entry point."
        ),
    ),
    "env": (
        "syllabus.cli.env:env",
        (
            "Python environments of runs: interpreter, platform, packages, GPUs and allow-listed "
            "environment variables."
        ),
    ),
    "notebook": (
        "syllabus.cli.notebook:notebook",
        (
            "Checkpoint Jupyter notebooks (canonical: metadata noise makes no new checkpoint), "
            "compare checkpoints cell by cell, and restore them."
        ),
    ),
    "reproduce": (
        "syllabus.cli.reproduce:reproduce_command",
        "Re-run a run from its code and input data versions and compare its metrics.",
    ),
    "experiments": (
        "syllabus.cli.experiments:experiments",
        "Named groups of runs.",
    ),
    "runs": (
        "syllabus.cli.runs:runs",
        "Runs: their params, metrics, tags and artifacts.",
    ),
    "models": (
        "syllabus.cli.models:models",
        "Registered models: versions, aliases, stages with gates, approvals and audit.",
    ),
    "policy": (
        "syllabus.cli.policy:policy",
        "Promotion policies: which stages a version may enter from where, and its gates.",
    ),
    "deploy": (
        "syllabus.cli.deploy:deploy",
        "Deploy models: one spec for every environment, revisions, rollback, batch scoring.",
    ),
    "evaluate": (
        "syllabus.cli.evaluate:evaluate_command",
        "Evaluate a model version on labelled data, optionally against a champion.",
    ),
    "monitor": (
        "syllabus.cli.monitor:monitor",
        "Monitor drift, data quality and performance of data sets and deployed models.",
    ),
    "evaluations": (
        "syllabus.cli.evaluate:evaluations",
        "Stored evaluations: list them, show one, write its HTML report.",
    ),
    "pipeline": (
        "syllabus.cli.pipeline:pipeline",
        "Run cached pipelines; list them, their runs and their DAG.",
    ),
    "agent": (
        "syllabus.cli.agent:agent_command",
        "Check pipeline triggers and run the pipelines they fire.",
    ),
    "maturity": (
        "syllabus.cli.maturity:maturity_command",
        "Check the workspace against maturity levels 0-3 and say what is missing.",
    ),
    "ui": (
        "syllabus.cli.ui:ui_command",
        "Serve the web UI on the nearest workspace: runs, datasets, models and more.",
    ),
    "serve": (
        "syllabus.cli.serve:serve_command",
        "Serve a model over HTTP: Open Inference Protocol v2, /predict, /feedback, /metrics.",
    ),
    "server": (
        "syllabus.cli.server:server_command",
        "Serve the REST API (every component), the web UI and Prometheus metrics.",
    ),
    "admin": (
        "syllabus.cli.admin:admin",
        "Users, roles and API tokens of the team server.",
    ),
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
