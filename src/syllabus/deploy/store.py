"""The deploy store Protocol: what the service needs from metadata storage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from syllabus.deploy.models import Deployment, Revision, RevisionSpec

__all__ = ["DeployStore"]


class DeployStore(Protocol):
    """Deployments (name, env) and their numbered revisions."""

    def create_revision(self, name: str, env: str, spec: RevisionSpec, actor: str) -> Revision:
        """The next revision of (name, env), status ``pending`` (the deployment is created
        with its first revision)."""
        ...

    def update_revision(
        self,
        name: str,
        env: str,
        revision: int,
        status: str,
        *,
        reason: str | None = None,
        runtime: Mapping[str, Any] | None = None,
        live: bool | None = None,
    ) -> Revision:
        """Set a revision's status (and reason, runtime). ``live=True`` makes it the
        deployment's live revision; ``live=False`` clears the live revision if it is this one."""
        ...

    def get_deployment(self, name: str, env: str) -> Deployment:
        """A deployment with its live and newest revisions; NotFoundError naming what exists."""
        ...

    def list_deployments(self, name: str | None = None) -> list[Deployment]:
        """Deployments by name and environment (of one service when ``name`` is given)."""
        ...

    def get_revision(self, name: str, env: str, revision: int) -> Revision:
        """One revision; NotFoundError naming the revisions there are."""
        ...

    def list_revisions(
        self, name: str, env: str | None = None, *, limit: int = 100
    ) -> list[Revision]:
        """Revisions of a service (in one environment), newest first."""
        ...

    def revisions_of_versions(self, version_ids: tuple[str, ...]) -> list[Revision]:
        """Revisions serving any of these model versions (as primary, canary or shadow),
        newest first."""
        ...
