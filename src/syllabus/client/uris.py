"""Which backend a URI names.

``SYLLABUS_URI`` may be a workspace folder (embedded: SQLite in ``.syllabus``), a
``sqlite:///`` or ``postgresql://`` URL (direct), or an ``http(s)://`` server (remote). This
module turns settings into a :class:`Location` and keeps a registry of backend factories by
scheme, so the remote backend plugs in without the rest of the client changing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from syllabus.config import BLOBS_DIR, DB_FILE, Settings
from syllabus.errors import ConfigError, WorkspaceNotFoundError

if TYPE_CHECKING:
    from syllabus.client.local import LocalBackend

__all__ = ["Location", "register_scheme", "resolve", "scheme_of"]

Kind = Literal["local", "remote"]


@dataclass(frozen=True, slots=True)
class Location:
    """Where metadata and blobs live, resolved from settings."""

    kind: Kind
    db_url: str
    blobs_url: str | None
    workspace: Path | None


BackendFactory = Callable[[Location, Settings], "LocalBackend"]
_FACTORIES: dict[str, BackendFactory] = {}


def register_scheme(scheme: str, factory: BackendFactory) -> None:
    """Make URIs with ``scheme`` open through ``factory`` (the remote backend registers http)."""
    _FACTORIES[scheme] = factory


def scheme_of(url: str) -> str:
    head = url.split("://", 1)[0] if "://" in url else "file"
    return head.split("+", 1)[0].lower()


def resolve(settings: Settings) -> Location:
    """The location the settings name; raises WorkspaceNotFoundError when there is none."""
    db_url = settings.uri
    ws = settings.workspace
    if db_url is None:
        if ws is None:
            raise WorkspaceNotFoundError(
                "no Syllabus workspace here or in any parent folder; run `syllabus init` "
                "or set SYLLABUS_URI"
            )
        db_url = f"sqlite:///{ws / DB_FILE}"
    scheme = scheme_of(db_url)
    if scheme in ("http", "https"):
        return Location("remote", db_url, settings.blobs, ws)
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise ConfigError(
            f"unsupported URI scheme {scheme!r} in {db_url!r} "
            "(expected a folder, sqlite:///, postgresql:// or http(s)://)"
        )
    blobs = settings.blobs
    if blobs is None:
        if ws is None:
            raise ConfigError(
                f"metadata is at {db_url.split('@')[-1]} but no blob store is set; "
                "set SYLLABUS_BLOBS to a folder or s3://bucket/prefix"
            )
        blobs = str(ws / BLOBS_DIR)
    return Location("local", db_url, blobs, ws)


def factory_for(location: Location) -> BackendFactory | None:
    scheme = scheme_of(location.db_url)
    if scheme in ("http", "https") and scheme not in _FACTORIES:
        import syllabus.client.remote  # noqa: F401 - registers the http(s) schemes
    return _FACTORIES.get(scheme)
