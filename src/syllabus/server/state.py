"""What a running server holds: its configuration, workspaces, auth and metrics."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from syllabus.errors import ConfigError, NotFoundError
from syllabus.server.limits import Limits
from syllabus.server.metrics import Metrics

if TYPE_CHECKING:
    from syllabus.client.local import LocalBackend
    from syllabus.client.uris import Location
    from syllabus.config import Settings
    from syllabus.server.auth import Auth
    from syllabus.server.sql import SqlAuthStore

__all__ = ["ServerConfig", "ServerState", "Workspace"]

LOOPBACK = ("127.0.0.1", "::1", "localhost")
_AUTH_CHANGES = (
    "set_user",
    "remove_user",
    "grant",
    "revoke_role",
    "revoke_token",
)


@dataclass(frozen=True)
class ServerConfig:
    """How a server runs. ``workspaces`` maps names to ``(database URL, blobs URL)``; the
    first one's database also holds users and tokens. ``auth`` None: enabled as soon as a
    user exists."""

    workspaces: dict[str, tuple[str, str]]
    auth: bool | None = None
    limits: Limits = field(default_factory=Limits)
    cors_origins: tuple[str, ...] = ()
    s3_endpoint_url: str | None = None
    presign: bool = True
    ui: bool = True

    def __post_init__(self) -> None:
        if not self.workspaces:
            raise ConfigError("a server needs at least one workspace (--db and --blobs)")
        from syllabus.server.sql import check_workspace_name

        for name in self.workspaces:
            check_workspace_name(name)

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> ServerConfig:
        data: dict[str, Any] = json.loads(text)
        data["workspaces"] = {k: tuple(v) for k, v in data["workspaces"].items()}
        data["limits"] = Limits(**data.get("limits", {}))
        data["cors_origins"] = tuple(data.get("cors_origins", ()))
        return cls(**data)

    @property
    def main(self) -> str:
        return next(iter(self.workspaces))


class Workspace:
    """One workspace served: its database and blob store, opened on first use."""

    def __init__(self, name: str, db_url: str, blobs_url: str, s3_endpoint_url: str | None) -> None:
        self.name = name
        self.db_url = db_url
        self.blobs_url = blobs_url
        self.s3_endpoint_url = s3_endpoint_url

    @cached_property
    def settings(self) -> Settings:
        from syllabus.config import Settings

        return Settings(
            workspace=None,
            uri=self.db_url,
            blobs=self.blobs_url,
            s3_endpoint_url=self.s3_endpoint_url,
        )

    @cached_property
    def location(self) -> Location:
        # Imported here: the client package is heavy and a server starts without it.
        from syllabus.client.uris import Location

        return Location("local", self.db_url, self.blobs_url, None)

    @cached_property
    def backend(self) -> LocalBackend:
        from syllabus.client.local import LocalBackend

        return LocalBackend(self.location, self.settings)

    def close(self) -> None:
        if "backend" in self.__dict__:
            self.__dict__.pop("backend").close()


class ServerState:
    """Shared by every request of one server process."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.workspaces = {
            name: Workspace(name, db, blobs, config.s3_endpoint_url)
            for name, (db, blobs) in config.workspaces.items()
        }
        self._lock = threading.Lock()

    def workspace(self, name: str) -> Workspace:
        try:
            return self.workspaces[name]
        except KeyError:
            raise NotFoundError(
                f"workspace {name!r} not found on this server (it serves "
                f"{', '.join(sorted(self.workspaces))})"
            ) from None

    @cached_property
    def auth_store(self) -> SqlAuthStore:
        from syllabus.server.sql import SqlAuthStore

        store = SqlAuthStore(self.workspaces[self.config.main].backend.engine)
        for name in _AUTH_CHANGES:  # a change made here applies to the next request at once
            setattr(store, name, self._forgetting(getattr(store, name)))
        return store

    def _forgetting(self, change: Callable[..., Any]) -> Callable[..., Any]:
        def changed(*args: Any, **kwargs: Any) -> Any:
            try:
                return change(*args, **kwargs)
            finally:
                if "auth" in self.__dict__:
                    self.auth.forget()

        return changed

    @cached_property
    def auth(self) -> Auth:
        from syllabus.server.auth import Auth

        enabled = self.config.auth
        if enabled is None:
            enabled = self.auth_store.count_users() > 0
        return Auth(self.auth_store, enabled=enabled)

    def prepare(self) -> None:
        """Create or check every workspace's schema and settle whether auth is on, then
        close the connections that took: a server forking workers calls this first, so
        they neither race to create schemas nor each check them again, and inherit no
        open connection."""
        for ws in self.workspaces.values():
            _ = ws.backend.engine
        _ = self.auth
        for ws in self.workspaces.values():
            ws.backend.raw_engine.dispose()

    def close(self) -> None:
        for ws in self.workspaces.values():
            ws.close()
