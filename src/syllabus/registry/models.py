"""Registry entities: frozen values returned by the store, the service and the client.

Times are Unix milliseconds; ids are 32-hex time-ordered ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from syllabus.refs import Stage

__all__ = [
    "Approval",
    "ApprovalRequest",
    "Event",
    "GateResult",
    "ModelVersion",
    "PolicyVersion",
    "RegisteredModel",
    "TransitionResult",
    "VersionSpec",
    "Webhook",
]


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A model name with its description, tags, aliases and latest version number."""

    id: str
    name: str
    created_at: int
    created_by: str
    updated_at: int
    description: str | None = None
    latest_version: int | None = None
    rollback_version: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, int] = field(default_factory=dict)
    production: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class VersionSpec:
    """What a new version is made of (the service fills it in from a model folder)."""

    tree: str
    size: int
    flavor: str
    serialization: str
    unsafe: bool
    model_path: str
    model_digest: str
    signature: Mapping[str, Any] | None
    source: str
    run_id: str | None = None
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One version of a registered model."""

    id: str
    model_id: str
    name: str
    version: int
    stage: Stage
    tree: str
    size: int
    flavor: str
    serialization: str
    unsafe: bool
    model_path: str
    model_digest: str
    signature: Mapping[str, Any] | None
    source: str
    run_id: str | None
    description: str | None
    created_at: int
    created_by: str
    stage_changed_at: int
    retired_at: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def retired(self) -> bool:
        return self.retired_at is not None


@dataclass(frozen=True, slots=True)
class GateResult:
    """One criterion checked for a transition: passed or not, what was measured against
    what was required."""

    gate: str
    passed: bool
    measured: str
    required: str
    detail: str = ""

    def describe(self) -> str:
        mark = "ok" if self.passed else "FAILED"
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.gate}: {mark}, measured {self.measured}, required {self.required}{extra}"


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    """One applied version of a policy (YAML text as applied)."""

    id: str
    name: str
    version: int
    text: str
    digest: str
    created_at: int
    created_by: str


@dataclass(frozen=True, slots=True)
class Approval:
    """A decision on a request."""

    id: str
    request_id: str
    decision: str  # "approve" or "reject"
    actor: str
    role: str | None
    comment: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A request to move a version to a stage, and the decisions on it so far."""

    id: str
    version_id: str
    name: str
    version: int
    to_stage: Stage
    status: str  # pending, done, rejected, cancelled
    comment: str | None
    requested_by: str
    created_at: int
    resolved_at: int | None = None
    approvals: tuple[Approval, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class Event:
    """One audit log entry."""

    id: str
    event: str
    actor: str
    at: int
    model_name: str | None = None
    version: int | None = None
    from_stage: str | None = None
    to_stage: str | None = None
    comment: str | None = None
    policy_name: str | None = None
    policy_version: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON body a webhook receives."""
        return {
            "id": self.id,
            "event": self.event,
            "actor": self.actor,
            "at": self.at,
            "model": self.model_name,
            "version": self.version,
            "from_stage": self.from_stage,
            "to_stage": self.to_stage,
            "comment": self.comment,
            "policy": None
            if self.policy_name is None
            else {"name": self.policy_name, "version": self.policy_version},
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class TransitionResult:
    """What a promotion did: the version as moved, the versions it archived, and the
    gate results it passed."""

    version: ModelVersion
    archived: tuple[ModelVersion, ...]
    gates: tuple[GateResult, ...]
    policy_name: str
    policy_version: int | None


@dataclass(frozen=True, slots=True)
class Webhook:
    """A URL that receives registry events (``events`` empty: all of them)."""

    id: str
    url: str
    secret: str
    events: tuple[str, ...]
    model_name: str | None
    created_at: int
    created_by: str
