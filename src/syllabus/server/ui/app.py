"""The web UI's router factory: pages rendered on the server from the same ``Client`` calls
the CLI makes, a user and CSRF check on every form, and the static assets (CSS, scripts,
plotly.js from the installed ``plotly`` package, so nothing comes from the internet).

``create_ui_router`` returns a FastAPI router the team server mounts (with its own user
dependency and client per request); ``create_ui_app`` wraps it in an application for
``syllabus ui`` on an embedded workspace, where the only user is an anonymous admin.
"""

# No ``from __future__ import annotations`` here: FastAPI resolves the dependency
# annotations below at runtime, and they name values local to create_ui_router.

import functools
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from syllabus.client import Client
from syllabus.errors import NotFoundError, PermissionDeniedError, SyllabusError
from syllabus.server.ui import format as fmt

__all__ = [
    "ANONYMOUS_ADMIN",
    "UI",
    "UIUser",
    "create_ui_app",
    "create_ui_router",
]

log = logging.getLogger("syllabus.ui")

CSRF_COOKIE = "syllabus_csrf"
TOKEN_COOKIE = "syllabus_token"  # noqa: S105 - a cookie name, not a secret
ROLE_LEVELS = {"viewer": 1, "reader": 1, "editor": 2, "writer": 2, "maintainer": 3, "admin": 4}
"""What each role may do from the UI (the team server's roles; each includes the lower
ones): editors may ask for a transition; maintainers and admins decide (approve, reject,
promote, roll back)."""

# Everything the pages need comes from this origin; plotly draws with inline styles.
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; frame-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'self'"
)


@dataclass(frozen=True)
class UIUser:
    """Who is looking. ``roles`` decide what the UI lets them do; ``authenticated`` is False
    for the anonymous user of an embedded workspace (who is an admin: it is their store)."""

    name: str
    roles: frozenset[str] = frozenset()
    authenticated: bool = True

    @property
    def level(self) -> int:
        return max((ROLE_LEVELS.get(r, 0) for r in self.roles), default=0)

    @property
    def can_write(self) -> bool:
        """May ask for changes (request a transition)."""
        return self.level >= ROLE_LEVELS["editor"]

    @property
    def can_decide(self) -> bool:
        """May decide: approve, reject, promote, roll back."""
        return self.level >= ROLE_LEVELS["maintainer"]


ANONYMOUS_ADMIN = UIUser("anonymous", frozenset({"admin"}), authenticated=False)


def _plotly_js() -> Path:
    """plotly.js as the installed ``plotly`` package ships it (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise NotFoundError("plotly.js needs the plotly package: pip install 'syllabus[server]'")
    return Path(spec.submodule_search_locations[0]) / "package_data" / "plotly.min.js"


@dataclass
class UI:
    """What every page handler reaches: the client provider, the templates and the checks."""

    client_for: Callable[[Request], Client]
    env: jinja2.Environment
    authenticate: Callable[[str], UIUser | None] | None = None
    nav_extra: list[tuple[str, str]] = field(default_factory=list)
    needs_login: bool = False
    path_params: dict[str, tuple[str, ...]] = field(default_factory=dict)

    # -- routes --------------------------------------------------------------------------

    def add(
        self,
        router: APIRouter,
        path: str,
        endpoint: Callable[..., Response],
        name: str,
        *,
        methods: Collection[str] = ("GET",),
        public: bool = False,
    ) -> None:
        """Add a page: its errors become error pages, it needs a user when the UI knows of
        auth (unless ``public``), and its response carries the security headers."""
        self.path_params[name] = tuple(re.findall(r"{(\w+)(?::\w+)?}", path))
        router.add_api_route(
            path,
            self.page(endpoint, public=public),
            methods=list(methods),
            name=name,
            include_in_schema=False,
            response_class=HTMLResponse,
        )

    def page(self, endpoint: Callable[..., Response], *, public: bool) -> Callable[..., Response]:
        @functools.wraps(endpoint)
        def wrapper(*args: Any, **kwargs: Any) -> Response:
            request = kwargs.get("request")
            if not isinstance(request, Request):
                raise TypeError(f"UI page {endpoint.__name__} takes no request")  # a bug
            if self.needs_login and not public and getattr(request.state, "ui_user", 0) is None:
                response: Response = RedirectResponse(
                    self.url(request, "ui_login", next=request.url.path), status_code=303
                )
            else:
                try:
                    response = endpoint(*args, **kwargs)
                except Exception as exc:  # noqa: BLE001 - every failure becomes a page
                    response = _error_response(request, self, exc)
            _secure(request, response)
            return response

        return wrapper

    # -- request state -------------------------------------------------------------------

    def client(self, request: Request) -> Client:
        return self.client_for(request)

    @staticmethod
    def user(request: Request) -> UIUser:
        user = getattr(request.state, "ui_user", None)
        return user if isinstance(user, UIUser) else ANONYMOUS_ADMIN

    @staticmethod
    def csrf_token(request: Request) -> str:
        token = getattr(request.state, "csrf_token", None)
        if not token:
            token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
            request.state.csrf_token = token
        return str(token)

    def check_form(self, request: Request, token: str | None) -> None:
        """Refuse a form post without the CSRF token of this browser or from another
        origin (a 403 page)."""
        cookie = request.cookies.get(CSRF_COOKIE)
        if not cookie or not token or not hmac.compare_digest(cookie, token):
            raise PermissionDeniedError(
                "the form's security token is missing or stale; reload the page"
            )
        origin = request.headers.get("origin")
        if origin and origin != "null":
            expected = f"{request.url.scheme}://{request.url.netloc}"
            if origin.rstrip("/") != expected:
                raise PermissionDeniedError(f"a form posted from {origin} is refused")

    def require(self, request: Request, role: str) -> UIUser:
        """The user, when their role is ``role`` or above (PermissionDeniedError if not)."""
        user = self.user(request)
        if user.level < ROLE_LEVELS[role]:
            have = ", ".join(sorted(user.roles)) or "no role"
            raise PermissionDeniedError(f"{user.name} ({have}) may not do this: it needs {role}")
        return user

    def form_client(self, request: Request, csrf_token: str | None, role: str) -> Client:
        """The client of a form post: the CSRF token checked, then the user's role (at
        least ``role``), before anything is read or changed."""
        self.check_form(request, csrf_token)
        self.require(request, role)
        return self.client(request)

    # -- rendering -----------------------------------------------------------------------

    def url(self, request: Request, name: str, /, **params: Any) -> str:
        """The path of route ``name``; path parameters are taken from ``params`` by the
        route's names and the rest become the query string (None values dropped)."""
        route_params = {k: params.pop(k) for k in self.path_params.get(name, ()) if k in params}
        path = str(request.app.url_path_for(name, **route_params))
        root = request.scope.get("root_path", "")
        query = [
            (k, str(v))
            for k, value in params.items()
            if value is not None
            for v in (value if isinstance(value, list | tuple) else [value])
        ]
        return f"{root}{path}" + (f"?{urlencode(query)}" if query else "")

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        status: int = 200,
        title: str = "",
    ) -> HTMLResponse:
        client = self.client(request)
        nav = [
            ("Runs", self.url(request, "ui_experiments")),
            ("Datasets", self.url(request, "ui_datasets")),
            ("Models", self.url(request, "ui_models")),
            ("Notebooks", self.url(request, "ui_notebooks")),
        ]
        nav += [(label, self.url(request, name)) for label, name in self.nav_extra]
        values = {
            "request": request,
            "title": title,
            "nav": nav,
            "user": self.user(request),
            "auth": self.authenticate is not None,
            "csrf_token": self.csrf_token(request),
            "url": lambda name, /, **p: self.url(request, name, **p),
            "static": lambda path: self.url(request, "ui_static", path=path),
            "workspace": str(client.settings.workspace or client.settings.uri or ""),
            **(context or {}),
        }
        html = self.env.get_template(template).render(values)
        return HTMLResponse(html, status_code=status)

    def error_page(self, request: Request, status: int, message: str) -> HTMLResponse:
        return self.render(
            request,
            "error.html",
            {"status": status, "message": message},
            status=status,
            title=f"Error {status}",
        )

    def redirect(self, request: Request, name: str, /, **params: Any) -> RedirectResponse:
        return RedirectResponse(self.url(request, name, **params), status_code=303)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("syllabus.server.ui", "templates"),
        autoescape=True,  # every value is escaped unless a template says otherwise (none do)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fmt.FILTERS)
    return env


def create_ui_router(
    client: Client | Callable[[Request], Client],
    *,
    current_user: Callable[..., Any] | None = None,
    authenticate: Callable[[str], UIUser | None] | None = None,
) -> APIRouter:
    """The UI's routes, to be mounted at any prefix.

    ``client`` is the workspace's :class:`Client`, or a callable giving the client for a
    request (a team server acting as the signed-in user). ``current_user`` is a FastAPI
    dependency returning a :class:`UIUser` (or None for nobody signed in); without one,
    ``authenticate`` maps a token (the ``syllabus_token`` cookie set by the login page, or an
    ``Authorization: Bearer`` header) to a user; with neither, everyone is
    :data:`ANONYMOUS_ADMIN` (an embedded workspace is its owner's). When the UI knows of
    auth, pages other than the login page need a user.
    """
    client_for: Callable[[Request], Client] = (
        (lambda _request: client) if isinstance(client, Client) else client
    )
    ui = UI(client_for=client_for, env=_environment(), authenticate=authenticate)
    needs_login = current_user is not None or authenticate is not None

    def token_user(request: Request) -> UIUser | None:
        if authenticate is None:
            return None
        token = request.cookies.get(TOKEN_COOKIE)
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            token = header[7:].strip()
        return authenticate(token) if token else None

    user_dependency: Callable[..., Any] = current_user or token_user

    def identify(request: Request, user: Annotated[Any, Depends(user_dependency)]) -> None:
        if not needs_login:
            request.state.ui_user = ANONYMOUS_ADMIN
        elif isinstance(user, UIUser):
            request.state.ui_user = user
        elif user is not None:  # a server's own user object: read its name and roles
            roles = getattr(user, "roles", None)
            if roles is None:
                role = getattr(user, "role", None)
                roles = [role] if role else []
            request.state.ui_user = UIUser(
                str(getattr(user, "name", user)), frozenset(str(r) for r in roles)
            )
        else:
            request.state.ui_user = None

    router = APIRouter(dependencies=[Depends(identify)])
    ui.needs_login = needs_login
    ui.add(router, "/static/{path:path}", _static, "ui_static", public=True)

    from syllabus.server.ui import datasets, registry, tracking

    _add_login(router, ui)
    tracking.add_routes(router, ui)
    datasets.add_routes(router, ui)
    registry.add_routes(router, ui)
    _add_optional_pages(router, ui)
    return router


def _add_optional_pages(router: APIRouter, ui: UI) -> None:
    """Pages of components that may not be installed in this version (added when their
    Client calls exist)."""
    import importlib

    for module_name in ("deploy", "monitoring", "pipelines"):
        try:
            module = importlib.import_module(f"syllabus.server.ui.{module_name}")
        except ImportError:
            continue
        for label, name in module.add_routes(router, ui):
            ui.nav_extra.append((label, name))


def _error_response(request: Request, ui: UI, exc: Exception) -> Response:
    from starlette.exceptions import HTTPException

    if isinstance(exc, SyllabusError):
        status, message = exc.http_status, str(exc)
    elif isinstance(exc, HTTPException):
        status, message = exc.status_code, str(exc.detail)
    else:
        log.exception("UI page %s failed", request.url.path)
        status, message = 500, f"internal error ({type(exc).__name__}); see the server log"
    try:
        return ui.error_page(request, status, message)
    except Exception:  # the error page itself failed: plain text
        log.exception("UI error page failed")
        return Response(message, status_code=status, media_type="text/plain")


def _secure(request: Request, response: Response) -> None:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", _CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    token = getattr(request.state, "csrf_token", None)
    if token and request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/")


_STATIC_FILES = {"ui.css": "text/css", "ui.js": "text/javascript"}


def _static(request: Request, path: str) -> Response:
    headers = {"Cache-Control": "public, max-age=3600"}
    if path == "plotly.min.js":
        return FileResponse(_plotly_js(), media_type="text/javascript", headers=headers)
    if path not in _STATIC_FILES:  # a fixed list: no path from the URL reaches the disk
        return Response("not found", status_code=404, media_type="text/plain")
    data = resources.files("syllabus.server.ui").joinpath("static", path).read_bytes()
    return Response(data, media_type=_STATIC_FILES[path], headers=headers)


def _add_login(router: APIRouter, ui: UI) -> None:
    from fastapi import Form

    def login(request: Request, next: str = "") -> HTMLResponse:
        home = ui.url(request, "ui_home")
        return ui.render(request, "login.html", {"next": _local(next, home)}, title="Sign in")

    def login_post(
        request: Request,
        token: Annotated[str, Form()],
        csrf_token: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "",
    ) -> Response:
        ui.check_form(request, csrf_token)
        home = ui.url(request, "ui_home")
        if ui.authenticate is None:
            return ui.redirect(request, "ui_home")
        user = ui.authenticate(token.strip())
        if user is None:
            return ui.render(
                request,
                "login.html",
                {"next": _local(next, home), "failed": True},
                status=401,
                title="Sign in",
            )
        response = RedirectResponse(_local(next, home), status_code=303)
        response.set_cookie(
            TOKEN_COOKIE,
            token.strip(),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
        ui.check_form(request, csrf_token)
        response = ui.redirect(request, "ui_login")
        response.delete_cookie(TOKEN_COOKIE, path="/")
        return response

    ui.add(router, "/login", login, "ui_login", public=True)
    ui.add(router, "/login", login_post, "ui_login_post", methods=["POST"], public=True)
    ui.add(router, "/logout", logout, "ui_logout", methods=["POST"], public=True)


def _local(target: str, home: str) -> str:
    """Only a path on this site is a place to go back to after signing in."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return home
    return target


def create_ui_app(
    client: Client, *, authenticate: Callable[[str], UIUser | None] | None = None
) -> FastAPI:
    """An application serving the UI at ``/`` on one client (``syllabus ui``); with
    ``authenticate``, users sign in with a token (see :func:`create_ui_router`)."""
    app = FastAPI(title="Syllabus", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(create_ui_router(client, authenticate=authenticate))
    return app
