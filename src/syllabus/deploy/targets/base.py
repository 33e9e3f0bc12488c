"""What every target gets (a :class:`Plan`) and does (:class:`Target`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from syllabus.deploy.models import Health

__all__ = ["Plan", "PlannedModel", "Target", "serving_config"]


@dataclass(frozen=True, slots=True)
class PlannedModel:
    """A model version a revision serves, as one variant (primary, canary or shadow)."""

    variant: str
    ref: str  # pinned: churn@3
    version_id: str
    name: str
    version: int
    model_path: str  # the model file inside the folder
    model_digest: str  # its content id, as the registry recorded it
    percent: float | None = None  # canary share
    folder: Path | None = None  # the materialized model folder (docker, kubernetes)


@dataclass(frozen=True, slots=True)
class Plan:
    """One revision to render or roll out."""

    name: str
    env: str
    revision: int
    config: Mapping[str, Any]  # the effective configuration
    models: tuple[PlannedModel, ...]
    folder: Path  # this revision's folder (pid, log, config, artifacts)
    uri: str | None = None  # the metadata store the server opens
    blobs: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def model(self, variant: str) -> PlannedModel | None:
        return next((m for m in self.models if m.variant == variant), None)

    @property
    def primary(self) -> PlannedModel:
        found = self.model("primary")
        assert found is not None
        return found


def serving_config(
    plan: Plan,
    *,
    refs: Mapping[str, str] | None = None,
    host: str | None = None,
    port: int | None = None,
    reuse_port: bool = False,
    ready_file: str | None = None,
    log_path: str | None = None,
    store: bool = True,
) -> dict[str, Any]:
    """The ``syllabus serve --config`` document for a plan (see ServingConfig).

    ``refs`` replaces a variant's reference (a path inside a container, say).
    """
    from syllabus.deploy.serving.config import ServingConfig

    names = dict(refs or {})
    canary = plan.model("canary")
    shadow = plan.model("shadow")
    c = plan.config
    doc: dict[str, Any] = {
        "service": plan.name,
        "revision": plan.revision,
        "env": plan.env,
        "host": host if host is not None else c["host"],
        "port": port if port is not None else c["port"],
        "workers": c["workers"],
        "reuse_port": reuse_port,
        "models": {
            "primary": names.get("primary", plan.primary.ref),
            "canary": None
            if canary is None
            else {"model": names.get("canary", canary.ref), "percent": canary.percent},
            "shadow": None if shadow is None else {"model": names.get("shadow", shadow.ref)},
        },
        "log": {**c["log"], "path": log_path},
        "uri": plan.uri if store else None,
        "blobs": plan.blobs if store else None,
        "ready_file": ready_file,
    }
    return ServingConfig.from_dict(doc).to_dict()  # validated exactly as the server will


class Target(Protocol):
    """A place revisions run: render artifacts, roll out, stop, probe."""

    name: str

    def check(self) -> None:
        """Raise TargetUnavailableError when this target cannot work from here."""
        ...

    def render(self, plan: Plan) -> list[Path]:
        """Write the revision's artifacts into ``plan.folder``; the files written."""
        ...

    def start(self, plan: Plan, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        """Render, start and wait until the revision is ready; its runtime record.
        ``previous`` is the live revision's runtime (None if none). Raise
        DeploymentFailedError (after cleaning up what was started) when it never gets ready."""
        ...

    def stop(self, runtime: Mapping[str, Any]) -> None:
        """Stop what ``start`` started (nothing when it is gone already)."""
        ...

    def health(self, runtime: Mapping[str, Any]) -> Health:
        """What runs now."""
        ...
