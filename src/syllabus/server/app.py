"""The application factory of ``syllabus server``.

:func:`create_app` builds a FastAPI application serving ``/api/v1/...`` (one router per
component, see :mod:`syllabus.server.routes`), ``/api/v1/openapi.json``, ``/api/v1/health``,
``/metrics`` and, when the web UI is installed, ``/ui``. Everything heavy (databases, blob
stores, component modules) is opened on first use, so a server starts in well under a
second. :func:`app_from_env` is the factory uvicorn workers call (the configuration travels
in ``SYLLABUS_SERVER_CONFIG`` as JSON).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import logging
import os
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute, Match, NoMatchFound

from syllabus import __version__
from syllabus.server.state import ServerConfig, ServerState

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import Receive, Scope, Send

__all__ = ["CONFIG_ENV", "app_from_env", "create_app"]

log = logging.getLogger("syllabus.server")

CONFIG_ENV = "SYLLABUS_SERVER_CONFIG"
API = "/api/v1"
GC_THRESHOLD = 50_000
"""Allocations between two collections of the youngest generation in a worker (700 by
default)."""
REQUEST_THREADS = 10
"""Threads per worker running requests' blocking work (40 by default): as many as a
PostgreSQL pool keeps connections. More only wait for the database while contending for
the interpreter lock: under 50 busy clients, 40 threads cost each request 2.5 times the
CPU it takes alone, and 8 to 12 threads gave 20-30% more throughput than 40."""


def create_app(config: ServerConfig) -> FastAPI:
    """The server application for ``config``."""
    from fastapi import FastAPI

    from syllabus.server.errors import PROBLEM_SCHEMA, install_error_handlers
    from syllabus.server.limits import Guard
    from syllabus.server.routes import COMPONENT_ROUTES
    from syllabus.server.routes import system as system_routes
    from syllabus.server.routes._rpc import document

    state = ServerState(config)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = REQUEST_THREADS
        threshold = gc.get_threshold()
        # Every metric point of a batch is a tuple the cyclic collector tracks: at its
        # default threshold (700) a 1,000-point batch set off a collection or two, which
        # walked the young objects and, every tenth, the server's whole heap (0.4 ms of
        # CPU per batch). What is alive once started (modules, routes, models) is never
        # garbage: frozen, collections skip it; and they run every 50,000 allocations.
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, *threshold[1:])
        try:
            yield
        finally:
            state.close()
            gc.set_threshold(*threshold)
            gc.unfreeze()

    app = FastAPI(
        lifespan=lifespan,
        title="Syllabus",
        version=__version__,
        summary="Data versions, code, experiments, registry and evaluation of ML models.",
        openapi_url=f"{API}/openapi.json",
        docs_url=f"{API}/docs",
        redoc_url=None,
    )
    app.state.syllabus = state
    install_error_handlers(app)
    app.include_router(system_routes.router(state), prefix=API)
    app.add_api_route(
        "/metrics",
        lambda: system_routes.metrics_response(state),
        methods=["GET"],
        include_in_schema=False,
        name="metrics",
    )
    lazy = [
        LazyComponent(app, state, name)
        for name in COMPONENT_ROUTES
        if importlib.util.find_spec(f"syllabus.server.routes.{name}") is not None
    ]  # a component without a module has no REST API (yet)
    app.router.routes.extend(lazy)
    if config.ui:
        mount_ui(app, state)
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(Guard, limits=config.limits, metrics=state.metrics)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for component in lazy:
                component.build()
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            document(schema)
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                PROBLEM_SCHEMA
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    return app


class LazyComponent(BaseRoute):
    """The routes of one component (``/api/v1/w/{workspace}/<component>/...``), built on the
    first request to it: importing a component's modules and generating its models is what
    made a server slow to start, and most servers are asked about a few components only.

    It stands in the application's route list where the component's routes go; on its first
    match it builds them (in a worker thread, once), puts them in its place and dispatches
    the request again, so from then on the application routes as if they had always been
    there.
    """

    def __init__(self, app: FastAPI, state: ServerState, name: str) -> None:
        self.app = app
        self.state = state
        self.name = name
        self.prefix = f"{API}/w/"
        self._routes: list[BaseRoute] | None = None
        self._make_lock = threading.Lock()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith(self.prefix):
                parts = path[len(self.prefix) :].split("/", 2)
                if len(parts) == 3 and parts[1] == self.name:
                    return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **params: Any) -> Any:
        raise NoMatchFound(name, params)

    def make(self) -> list[BaseRoute]:
        """Import the component's module and generate its routes (once; thread-safe)."""
        with self._make_lock:
            if self._routes is None:
                from fastapi import APIRouter

                module = importlib.import_module(f"syllabus.server.routes.{self.name}")
                holder = APIRouter()
                holder.include_router(module.router(self.state), prefix=API)
                self._routes = list(holder.routes)
            return self._routes

    def build(self) -> None:
        """Put the component's routes in place of this stand-in (in the event loop's thread:
        routing reads the list there)."""
        made = self.make()
        routes = self.app.router.routes
        if self in routes:
            at = routes.index(self)
            routes[at : at + 1] = made

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._routes is None:
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(self.make)
        self.build()
        await self.app.router.app(scope, receive, send)


def mount_ui(app: FastAPI, state: ServerState) -> bool:
    """Mount the web UI at ``/ui`` when it is installed; False when it is not.

    The UI shows the server's main workspace through a local client; with auth enabled it
    signs users in with their API tokens, shows them their role there and records what
    they change as theirs (:mod:`syllabus.server.acting`).
    """
    try:
        from syllabus.server.ui.app import UIUser, create_ui_router
    except ImportError:
        return False
    from fastapi import Request

    from syllabus.client import Client
    from syllabus.errors import AuthenticationError
    from syllabus.server.acting import ActingClient

    main = state.workspaces[state.config.main]
    client = Client(
        main.db_url,
        blobs=main.blobs_url,
        create=False,
        s3_endpoint_url=state.config.s3_endpoint_url,
    )

    def authenticate(token: str) -> UIUser | None:
        try:
            principal = state.auth_store.authenticate(token)
        except AuthenticationError:
            return None
        role = principal.role_in(main.name)
        return UIUser(principal.name, frozenset({role.label} if role else ()))

    acting = ActingClient(client)

    def client_for(request: Request) -> Client:
        # Changes made from the UI are recorded as the signed-in user's, as over REST.
        user = getattr(request.state, "ui_user", None)
        return acting(user.name if isinstance(user, UIUser) and user.authenticated else None)

    try:
        router = create_ui_router(
            client_for, authenticate=authenticate if state.auth.enabled else None
        )
        app.include_router(router, prefix="/ui")
    except Exception:  # the UI is optional: a broken UI must not take the API down
        log.exception("the web UI could not be mounted; serving the API only")
        return False
    return True


def app_from_env() -> FastAPI:
    """The application uvicorn workers build (configuration from ``SYLLABUS_SERVER_CONFIG``)."""
    text = os.environ.get(CONFIG_ENV)
    if not text:
        from syllabus.errors import ConfigError

        raise ConfigError(f"{CONFIG_ENV} is not set (start the server with `syllabus server`)")
    return create_app(ServerConfig.from_json(text))
