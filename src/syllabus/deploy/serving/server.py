"""Running the inference server: a listening socket and uvicorn worker(s).

The socket is bound here, before any worker starts, so the port is known (``port: 0``
picks a free one) and, with ``reuse_port``, bound with ``SO_REUSEPORT`` so a new revision
can listen on the same port before the old one stops. With several workers uvicorn's
supervisor runs them as processes sharing the socket; each builds its app from the
config passed in the environment.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from typing import Any

from syllabus.deploy.serving.app import ServingApp
from syllabus.deploy.serving.config import ServingConfig
from syllabus.errors import ConfigError

__all__ = ["CONFIG_ENV", "bind_socket", "run", "uvicorn_config", "worker_settings"]

CONFIG_ENV = "SYLLABUS_SERVE_CONFIG"
_PID_ENV = "SYLLABUS_SERVE_PID"
_PORT_ENV = "SYLLABUS_SERVE_PORT"


def bind_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        if not hasattr(socket, "SO_REUSEPORT"):
            sock.close()
            raise ConfigError("reuse_port needs SO_REUSEPORT, which this platform lacks")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app: Any, *, workers: int = 1, factory: bool = False) -> Any:
    """uvicorn settings for serving: httptools and uvloop where installed, no access log,
    30 s to finish in-flight requests on shutdown."""
    import importlib.util

    import uvicorn

    return uvicorn.Config(
        app,
        factory=factory,
        workers=workers,
        lifespan="on",
        access_log=False,
        log_level="warning",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        timeout_graceful_shutdown=30,
        timeout_keep_alive=30,
        server_header=False,
    )


def worker_settings() -> tuple[ServingConfig, int, int]:
    """In a worker process: the config, the bound port and the supervisor's pid."""
    text = os.environ.get(CONFIG_ENV)
    if not text:
        raise ConfigError(f"{CONFIG_ENV} is not set (the serving worker needs its config)")
    config = ServingConfig.from_json(text, source=CONFIG_ENV)
    return (
        config,
        int(os.environ.get(_PORT_ENV, config.port)),
        int(os.environ.get(_PID_ENV, os.getpid())),
    )


def run(
    config: ServingConfig,
    build_app: Callable[[ServingConfig, int, int], ServingApp],
    *,
    worker_factory: str,
    sock: socket.socket | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully (in-flight requests finish,
    the prediction log is flushed).

    ``build_app(config, port, server_pid)`` makes the app of a single-process server;
    ``worker_factory`` (``"module:function"``, returning the app from
    :func:`worker_settings`) makes each worker's app when ``config.workers > 1``.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    if sock is None:
        sock = bind_socket(config.host, config.port, reuse_port=config.reuse_port)
    port = int(sock.getsockname()[1])
    try:
        if config.workers == 1:
            server = uvicorn.Server(uvicorn_config(build_app(config, port, os.getpid())))
            server.run(sockets=[sock])
            return
        os.environ[CONFIG_ENV] = json.dumps(config.to_dict())
        os.environ[_PORT_ENV] = str(port)
        os.environ[_PID_ENV] = str(os.getpid())
        uv = uvicorn_config(worker_factory, workers=config.workers, factory=True)
        Multiprocess(uv, sockets=[sock]).run()
    finally:
        sock.close()
