"""``syllabus server``: the team server (REST API, web UI, metrics) over a database and a
blob store."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

import click

from syllabus.cli.output import note
from syllabus.errors import ConfigError

__all__ = ["server_command"]

log = logging.getLogger("syllabus.server")

_REUSEPORT: int | None = getattr(socket, "SO_REUSEPORT", None)
"""Where the platform has it, each forked worker listens on a socket of its own bound to
the server's port, and the kernel spreads new connections evenly over them; one socket
shared by every worker lets whichever worker wakes first accept most of them (long-lived
keep-alive clients then load one worker while the others idle)."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _workspaces(
    db: str | None, blobs: str | None, extra: tuple[str, ...]
) -> dict[str, tuple[str, str]]:
    if db is None or blobs is None:
        from syllabus.client import Client

        location = Client(create=False).location  # the workspace here, or SYLLABUS_URI
        if location.kind != "local" or location.blobs_url is None:
            raise ConfigError("give --db and --blobs (SYLLABUS_URI names no local store)")
        db = db or location.db_url
        blobs = blobs or location.blobs_url
    out = {"default": (db, blobs)}
    for item in extra:
        name, sep, rest = item.partition("=")
        db_url, comma, blobs_url = rest.partition(",")
        if not sep or not comma or not name or not db_url or not blobs_url:
            raise ConfigError(f"--workspace {item!r}: expected NAME=DB_URL,BLOBS_URL")
        if name in out:
            raise ConfigError(f"--workspace {name!r} is given twice")
        out[name] = (db_url, blobs_url)
    return out


def _announce_when_ready(host: str, port: int, ready_file: Path | None) -> None:
    import http.client

    wildcard = host in ("0.0.0.0", "::", "")  # noqa: S104 - compared, not bound
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1" if wildcard else host, port, timeout=2)
        try:
            conn.request("GET", "/api/v1/health")
            if conn.getresponse().status == 200:
                break
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.05)
    else:
        return
    shown = f"[{host}]" if ":" in host else host
    note(f"syllabus server listening on http://{shown}:{port} (API at /api/v1, UI at /ui)")
    if ready_file is not None:
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"host": host, "port": port, "pid": os.getpid()}))
        tmp.replace(ready_file)


@click.command("server")
@click.option("--db", metavar="URL", help="Metadata database (default: this workspace's).")
@click.option("--blobs", metavar="URL", help="Blob store: a folder or s3://bucket/prefix.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, help="Port (0: any free port).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--workspace",
    "extra",
    multiple=True,
    metavar="NAME=DB,BLOBS",
    help="Serve another workspace at .../w/NAME (repeatable).",
)
@click.option(
    "--auth/--no-auth",
    default=None,
    help="Require API tokens (default: as soon as a user exists).",
)
@click.option(
    "--cors-origin", multiple=True, metavar="ORIGIN", help="Allow browser calls from ORIGIN."
)
@click.option("--max-body", default="16MiB", show_default=True, help="Largest JSON request body.")
@click.option("--ui/--no-ui", default=True, show_default=True, help="Serve the web UI at /ui.")
@click.option(
    "--presign/--no-presign",
    default=True,
    show_default=True,
    help="Blobs on S3: large records travel straight to and from the bucket (presigned URLs).",
)
@click.option(
    "--ready-file", type=click.Path(path_type=Path), help="Write {host, port} here once serving."
)
def server_command(  # noqa: PLR0917 - click passes every option positionally
    db: str | None,
    blobs: str | None,
    host: str,
    port: int,
    workers: int,
    extra: tuple[str, ...],
    auth: bool | None,
    cors_origin: tuple[str, ...],
    max_body: str,
    ui: bool,
    presign: bool,
    ready_file: Path | None,
) -> None:
    """Serve the REST API (every component), the web UI and Prometheus metrics.

    The API is at /api/v1 (OpenAPI document at /api/v1/openapi.json), health at
    /api/v1/health and metrics at /metrics. Clients set SYLLABUS_URI=http://HOST:PORT and
    SYLLABUS_TOKEN. Listening beyond 127.0.0.1 needs auth (or an explicit --no-auth).

    \b
    Example:
      syllabus server --port 0 --ready-file ready.json
    """
    import uvicorn

    from syllabus.config import parse_size
    from syllabus.server.app import CONFIG_ENV, create_app
    from syllabus.server.limits import Limits
    from syllabus.server.state import ServerConfig

    config = ServerConfig(
        _workspaces(db, blobs, extra),
        auth=auth,
        limits=Limits(max_body=parse_size(max_body)),
        cors_origins=cors_origin,
        s3_endpoint_url=os.environ.get("SYLLABUS_S3_ENDPOINT_URL") or None,
        presign=presign,
        ui=ui,
    )
    if not _is_loopback(host) and auth is not True:
        from syllabus.server.state import ServerState

        users = ServerState(config).auth_store.count_users()
        if auth is None and users == 0:
            raise ConfigError(
                f"listening on {host} without auth would let anyone in: create an admin "
                "(`syllabus admin users add NAME --admin`) or pass --no-auth explicitly"
            )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if workers > 1 and _REUSEPORT is not None:
        sock.setsockopt(socket.SOL_SOCKET, _REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    bound = sock.getsockname()[1]
    log_level = "info" if os.environ.get("SYLLABUS_DEBUG") else "warning"
    announce = threading.Thread(
        target=_announce_when_ready, args=(host, bound, ready_file), daemon=True
    )
    if workers == 1:
        announce.start()
        _serve(create_app(config), sock, log_level)
        return
    if not hasattr(os, "fork"):  # pragma: no cover - no fork here: uvicorn spawns workers
        from syllabus.server.state import ServerState

        state = ServerState(config)  # create or check every schema once, before workers race
        state.prepare()
        state.close()
        announce.start()
        os.environ[CONFIG_ENV] = config.to_json()
        uvicorn.run(
            "syllabus.server.app:app_from_env",
            factory=True,
            fd=sock.fileno(),
            workers=workers,
            log_level=log_level,
            access_log=False,
            timeout_keep_alive=30,
            ws="none",
        )
        return
    app = create_app(config)
    app.state.syllabus.prepare()  # the workers inherit checked schemas, not connections
    _serve_forked(app, sock, log_level, workers, announce)


def _serve(app: object, sock: socket.socket, log_level: str) -> None:
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            app,  # type: ignore[arg-type]
            log_level=log_level,
            access_log=False,
            timeout_keep_alive=30,
            ws="none",
        )
    )
    server.run(sockets=[sock])


def _own_socket(shared: socket.socket, port: int) -> socket.socket:
    """A worker's own listening socket on the server's port (the bound, never listening
    socket of the supervisor keeps the port while workers come and go)."""
    assert _REUSEPORT is not None
    own = socket.socket(shared.family, socket.SOCK_STREAM)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    own.setsockopt(socket.SOL_SOCKET, _REUSEPORT, 1)
    own.bind((shared.getsockname()[0], port))
    own.listen(2048)
    shared.close()
    return own


def _serve_forked(
    app: object, sock: socket.socket, log_level: str, workers: int, announce: threading.Thread
) -> None:
    """Serve ``app`` from ``workers`` processes forked from this one, which has imported
    and built everything already: workers answer as soon as they are forked instead of each
    starting an interpreter and importing the server again. This process only supervises:
    it restarts a worker that dies and stops them all on SIGTERM or SIGINT."""
    import signal

    port = sock.getsockname()[1]
    if _REUSEPORT is None:
        sock.listen(2048)  # one queue that every worker accepts from
    stopping = False
    started: dict[int, float] = {}

    def fork_worker() -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _serve(app, sock if _REUSEPORT is None else _own_socket(sock, port), log_level)
                code = 0
            except BaseException:
                log.exception("server worker failed")
            finally:
                os._exit(code)
        started[pid] = time.monotonic()

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    for _ in range(workers):
        fork_worker()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    announce.start()
    quick_deaths = 0
    while started:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        born = started.pop(pid, None)
        if stopping or born is None:
            continue
        quick_deaths = quick_deaths + 1 if time.monotonic() - born < 5 else 0
        if quick_deaths >= 3:
            stop(signal.SIGTERM, None)
            raise click.ClickException("server workers keep dying at start; see the log above")
        log.warning("server worker %d exited (status %d); starting another", pid, status)
        fork_worker()
