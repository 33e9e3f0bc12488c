"""A real ``syllabus server`` for tests: uvicorn on an ephemeral 127.0.0.1 port.

``LiveServer`` runs in a thread of the test process (so tests can also look into the
databases behind it); each test adds its own workspace (a fresh database and blob folder)
with :meth:`LiveServer.add_workspace` and talks to it at ``.../w/<name>``. The contract
suites use the session-wide ``live_server`` fixture to run against the remote backend.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from syllabus.server.app import create_app
from syllabus.server.state import ServerConfig, ServerState, Workspace

__all__ = [
    "REMOTE_BACKENDS",
    "LiveServer",
    "db_url_for",
    "live_server",
    "remote_workspace",
    "start_server",
]


@dataclass
class LiveServer:
    url: str
    state: ServerState
    server: Any
    thread: threading.Thread
    added: list[str] = field(default_factory=list)

    def add_workspace(self, db_url: str, blobs: str | Path, name: str | None = None) -> str:
        """Serve a new workspace; returns the client URI for it."""
        name = name or f"t{uuid.uuid4().hex[:12]}"
        self.state.workspaces[name] = Workspace(
            name, db_url, str(blobs), self.state.config.s3_endpoint_url
        )
        self.added.append(name)
        return f"{self.url}/w/{name}"

    def drop_workspace(self, name: str) -> None:
        ws = self.state.workspaces.pop(name, None)
        if ws is not None:
            ws.close()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.state.close()


def start_server(config: ServerConfig) -> LiveServer:
    import uvicorn

    app = create_app(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="error", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    return LiveServer(f"http://127.0.0.1:{port}", app.state.syllabus, server, thread)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the session (auth off); tests add their own workspaces."""
    root = tmp_path_factory.mktemp("server")
    config = ServerConfig(
        {"default": (f"sqlite:///{root / 'main.db'}", str(root / "blobs"))}, auth=False, ui=False
    )
    live = start_server(config)
    yield live
    live.stop()


REMOTE_BACKENDS = (
    "remote",
    pytest.param("remote-postgresql", marks=pytest.mark.postgres),
)
"""Contract-suite parameters that run a store through a live server (SQLite, PostgreSQL)."""


def db_url_for(request: pytest.FixtureRequest, param: str, tmp_path: Path) -> str:
    """The database behind a backend parameter (sqlite, postgresql, remote, remote-postgresql)."""
    if param.endswith("postgresql"):
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'meta.db'}"


def remote_store(
    request: pytest.FixtureRequest,
    db_url: str,
    tmp_path: Path,
    component: str,
    engine: Any = None,
) -> Any:
    """``component``'s store of a workspace over ``db_url``, through the session's live
    server (closed at teardown); with ``engine`` it carries it as ``_engine`` for tests
    that look into the database."""
    from syllabus.client.remote import Http, RemoteStore

    http = Http(remote_workspace(request, db_url, tmp_path))
    request.addfinalizer(http.close)
    store = RemoteStore(http, component)
    if engine is not None:
        store._engine = engine  # type: ignore[attr-defined]
    return store


def remote_workspace(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> str:
    """A workspace over ``db_url`` on the session's live server, for this test."""
    live: LiveServer = request.getfixturevalue("live_server")
    uri = live.add_workspace(db_url, tmp_path / "server-blobs")
    request.addfinalizer(lambda: live.drop_workspace(uri.rsplit("/", 1)[1]))
    return uri
