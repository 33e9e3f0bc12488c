"""Deployment entities: frozen values returned by the store, the service and the client.

A deployment is a service (``name``) in one environment (``env``) with numbered
revisions. Times are Unix milliseconds; ids are 32-hex time-ordered ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "ACTIONS",
    "STATUSES",
    "Deployment",
    "Health",
    "Revision",
    "RevisionSpec",
]

STATUSES: Final = ("pending", "live", "failed", "stopped", "superseded", "rolled-back", "rendered")
"""Revision statuses: ``pending`` while it rolls out; ``live`` serving; ``failed`` never
became ready (the previous revision kept serving); ``stopped`` by ``deploy stop``;
``superseded`` replaced by a newer revision; ``rolled-back`` replaced by a rollback;
``rendered`` artifacts written for a target Syllabus does not run itself (kubernetes)."""

ACTIONS: Final = ("apply", "rollback", "promote-canary")


@dataclass(frozen=True, slots=True)
class RevisionSpec:
    """What a new revision records (the service fills it in)."""

    target: str
    model_version_id: str
    model_ref: str
    spec: str
    config: Mapping[str, Any]
    action: str = "apply"
    based_on: int | None = None
    canary_version_id: str | None = None
    canary_ref: str | None = None
    canary_percent: float | None = None
    shadow_version_id: str | None = None
    shadow_ref: str | None = None
    monitoring: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Revision:
    """One numbered revision of a deployment."""

    id: str
    name: str
    env: str
    revision: int
    status: str
    action: str
    target: str
    model_version_id: str
    model_ref: str  # the pinned version, e.g. churn@3
    spec: str
    config: Mapping[str, Any]
    created_at: int
    created_by: str
    updated_at: int
    based_on: int | None = None
    canary_version_id: str | None = None
    canary_ref: str | None = None
    canary_percent: float | None = None
    shadow_version_id: str | None = None
    shadow_ref: str | None = None
    monitoring: Mapping[str, Any] | None = None
    runtime: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.env}#{self.revision}"

    @property
    def model_version_ids(self) -> tuple[str, ...]:
        return tuple(
            v
            for v in (self.model_version_id, self.canary_version_id, self.shadow_version_id)
            if v is not None
        )


@dataclass(frozen=True, slots=True)
class Deployment:
    """A service in one environment: its live revision (None when stopped) and newest one."""

    id: str
    name: str
    env: str
    created_at: int
    created_by: str
    updated_at: int
    latest: Revision
    live: Revision | None = None

    @property
    def status(self) -> str:
        """``live`` while a revision serves, else the newest revision's status."""
        return "live" if self.live is not None else self.latest.status

    @property
    def current(self) -> Revision:
        """The revision that describes the deployment now: the live one, else the newest."""
        return self.live if self.live is not None else self.latest


@dataclass(frozen=True, slots=True)
class Health:
    """What a target sees of a revision's runtime now."""

    state: str  # running | ready | unready | not running | unknown | rendered
    detail: str = ""
    pid: int | None = None
    url: str | None = None
