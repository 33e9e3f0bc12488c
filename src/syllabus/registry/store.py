"""The registry store Protocols: what a registry backend must do.

:class:`~syllabus.registry.sql.SqlRegistryStore` implements both on SQLite and PostgreSQL;
a remote (REST) implementation will follow with the team server. Invariants that need the
database (one production version per model, version numbers, blob references in the same
transaction) are the store's; rules that do not (policies, gates, retention) live in
:class:`~syllabus.registry.service.RegistryService`.

Every mutator takes an :class:`Audit` (who, why, under which policy) and writes its audit
event(s) in the same transaction as the change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from syllabus.refs import Ref, Stage
from syllabus.registry.models import (
    ApprovalRequest,
    Event,
    ModelVersion,
    PolicyVersion,
    RegisteredModel,
    VersionSpec,
    Webhook,
)

__all__ = ["Audit", "GovernanceStore", "RegistryStore"]


@dataclass(frozen=True, slots=True)
class Audit:
    """Who does a change and why; copied into the audit event."""

    actor: str
    comment: str | None = None
    policy_name: str | None = None
    policy_version: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


class RegistryStore(Protocol):
    """Registered models, versions, tags, aliases and stage changes."""

    def create_version(self, name: str, spec: VersionSpec, audit: Audit) -> ModelVersion:
        """The next version of ``name`` (the model is created on its first version), its
        blob reference (kind ``model``) and a ``registered`` event, in one transaction."""
        ...

    def get_model(self, name: str) -> RegisteredModel:
        """A model with its tags, aliases and production versions; NotFoundError."""
        ...

    def list_models(self, *, name_like: str | None = None) -> list[RegisteredModel]:
        """Models by name; ``name_like`` is a LIKE pattern."""
        ...

    def resolve(self, ref: Ref) -> ModelVersion:
        """The version a reference names (``@3``, ``@latest``, ``@production``, ``@alias``);
        NotFoundError saying what exists."""
        ...

    def list_versions(self, name: str, *, stage: Stage | None = None) -> list[ModelVersion]:
        """Versions of a model, newest first."""
        ...

    def versions_with_digest(self, model_digest: str) -> list[ModelVersion]:
        """Versions whose model file has this content id (to trust a local copy)."""
        ...

    def describe(self, name: str, version: int | None, text: str, audit: Audit) -> None:
        """Set the description of a model (``version`` None) or of one version."""
        ...

    def set_tag(
        self, name: str, version: int | None, key: str, value: str | None, audit: Audit
    ) -> None:
        """Set (``value``) or delete (None) a tag of a model or one version."""
        ...

    def set_alias(self, name: str, alias: str, version: int | None, audit: Audit) -> None:
        """Point ``alias`` at a version, or delete it (None)."""
        ...

    def transition(
        self,
        name: str,
        version: int,
        to: Stage,
        audit: Audit,
        *,
        exclusive: bool = True,
        expect: Stage | None = None,
    ) -> tuple[ModelVersion, list[ModelVersion]]:
        """Move a version to a stage; with ``to`` production and ``exclusive``, archive
        the other production versions (the last becomes the rollback pointer) in the same
        transaction. ``expect``: ConflictError unless the version is still there. Returns
        the moved version and the archived ones."""
        ...

    def retire(self, name: str, version: int, audit: Audit) -> ModelVersion:
        """Mark an archived version retired, release its blob references and aliases;
        metadata and audit stay."""
        ...


class GovernanceStore(Protocol):
    """Policies, approval requests, the audit log and webhooks."""

    def add_policy(self, name: str, text: str, digest: str, audit: Audit) -> PolicyVersion:
        """A new version of policy ``name`` (unchanged text: the current version)."""
        ...

    def get_policy(self, name: str, version: int | None = None) -> PolicyVersion | None:
        """A policy version (the newest by default), or None."""
        ...

    def create_request(self, name: str, version: int, to: Stage, audit: Audit) -> ApprovalRequest:
        """A pending request to move a version to a stage."""
        ...

    def get_request(self, request_id: str) -> ApprovalRequest:
        """A request (full id or unique prefix) with its decisions; NotFoundError."""
        ...

    def list_requests(
        self, name: str | None = None, *, status: str | None = None
    ) -> list[ApprovalRequest]:
        """Requests, newest first."""
        ...

    def decide(
        self, request_id: str, decision: str, role: str | None, audit: Audit
    ) -> ApprovalRequest:
        """Record one person's approval or rejection (ConflictError when they decided already
        or the request is closed)."""
        ...

    def close_request(self, request_id: str, status: str, audit: Audit) -> ApprovalRequest:
        """Mark a pending request done, rejected or cancelled."""
        ...

    def list_events(self, name: str | None = None, *, limit: int = 1000) -> list[Event]:
        """Audit events (of one model, or all), oldest first."""
        ...

    def add_event(
        self,
        name: str | None,
        version: int | None,
        event: str,
        audit: Audit,
        *,
        from_stage: str | None = None,
        to_stage: str | None = None,
    ) -> Event:
        """Record an event that changes nothing else (e.g. a refused promotion, with the
        stage it was aimed at)."""
        ...

    def add_webhook(
        self, url: str, secret: str, events: Sequence[str], model_name: str | None, audit: Audit
    ) -> Webhook: ...

    def list_webhooks(self) -> list[Webhook]: ...

    def remove_webhook(self, webhook_id: str, audit: Audit) -> None: ...
