"""``syllabus ui``: the web UI on the nearest workspace, for its owner (no sign-in)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import click

from syllabus.cli.output import note

__all__ = ["ui_command"]


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=5100,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write {pid, host, port, url} JSON here once the UI listens.",
)
def ui_command(host: str, port: int, ready_file: Path | None) -> None:
    """Serve the web UI on the nearest workspace: runs, datasets, models and more.

    Pages show experiments and runs (filter, sort, compare), datasets (schema, statistics,
    diffs), models (board by stage, gates, approvals, audit, lineage), deployments
    (health, traffic, rollback), monitoring (drift over time, alerts), pipelines (DAG,
    cache hits) and the maturity checklist. Everything is served from this machine
    (plotly.js comes from the installed package). There is no sign-in: it is your
    workspace; use `syllabus server` to share one with a team. Ctrl+C stops.

    \b
    Example:
      syllabus ui --port 0 --ready-file ui.json
    """
    import uvicorn

    from syllabus.client import Client
    from syllabus.server.ui import create_ui_app

    client = Client(create=False)
    client.open()  # a missing or outdated workspace fails here, in one line
    app = create_ui_app(client)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)  # connections wait in the backlog until the server accepts them
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    url = f"http://{shown}:{bound}/"
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    note(f"Syllabus UI on {url} for {client.settings.workspace} (Ctrl+C stops)")
    if ready_file is not None:  # written whole, then renamed: a reader never sees half
        tmp = ready_file.with_name(f".{ready_file.name}.{os.getpid()}.tmp")
        tmp.write_text(
            json.dumps({"pid": os.getpid(), "host": host, "port": bound, "url": url}) + "\n"
        )
        tmp.replace(ready_file)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        client.close()
