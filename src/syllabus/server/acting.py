"""The web UI of a team server acts as the signed-in user.

The UI calls the same :class:`~syllabus.client.Client` functions as the CLI, on one client
shared by every request (one engine, one blob store). Its backend's stores are wrapped so
that every call made while a user acts (:func:`act_as`) is stamped with that user as the
actor, exactly as the REST routes stamp the calls of an authenticated principal
(:func:`~syllabus.server.routes._rpc.stamp_actor`): approvals, promotions, rollbacks and
requests made from the UI are recorded in the audit log under the user who made them, not
the server process's OS user.

Who acts is a context variable: FastAPI runs each synchronous page in a copy of the
request's context, so setting it while a page runs never leaks into another request.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from syllabus.server.routes._rpc import ACTOR_ARGS, stamp_actor

if TYPE_CHECKING:
    from syllabus.client import Client

__all__ = ["STORES", "ActingClient", "act_as", "acting_user"]

STORES = (
    "code_store",
    "datasets_store",
    "deploy_store",
    "evaluation_store",
    "pipeline_store",
    "registry_store",
    "tracking_store",
)
"""The backend's stores whose calls are stamped."""

_ACTING: ContextVar[str | None] = ContextVar("syllabus_acting_user", default=None)


def act_as(user: str | None) -> None:
    """Make ``user`` the actor of the store calls made in the current context (None: the
    calls keep the actor the library chose)."""
    _ACTING.set(user)


def acting_user() -> str | None:
    return _ACTING.get()


class _Stamping:
    """A store whose calls carry the acting user as their actor (audit, actor, user)."""

    def __init__(self, store: object) -> None:
        self._store = store
        self._wrapped: dict[str, Callable[..., Any]] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name.startswith("_") or not callable(attr):
            return attr
        wrapped = self._wrapped.get(name)
        if wrapped is None:
            wrapped = self._wrapped[name] = _stamped(attr)
        return wrapped

    def __repr__(self) -> str:
        return f"Stamping({self._store!r})"


def _stamped(method: Callable[..., Any]) -> Callable[..., Any]:
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):  # pragma: no cover - builtins have no actor
        return method
    if not any(p in signature.parameters for p in ("audit", *ACTOR_ARGS)):
        return method

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        user = _ACTING.get()
        if user is None:
            return method(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.arguments.update(stamp_actor(dict(bound.arguments), user))
        return method(*bound.args, **bound.kwargs)

    return call


class ActingClient:
    """The shared client of the UI, its stores stamped (wrapped on first use: the database
    is opened by the first page, not when the server starts)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._ready = False

    def __call__(self, user: str | None) -> Client:
        """The client, with ``user`` acting in the current context."""
        if not self._ready:
            with self._lock:
                if not self._ready:
                    backend = self.client._open(write=False)  # the server owns this client
                    for name in STORES:
                        backend.__dict__[name] = _Stamping(getattr(backend, name))
                    self._ready = True
        act_as(user)
        return self.client
