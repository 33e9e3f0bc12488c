"""Deployment behaviour on top of the store: apply a spec to an environment as a new
revision and roll it out on its target; status, history, rollback, stop, promote-canary.

A revision pins the model versions its references named when it was applied
(``churn@production`` -> ``churn@3``), so rolling back to it serves exactly what it served.
Every change is a new revision (rollback and promote-canary too); the revision that served
before is marked ``superseded`` (``rolled-back`` by a rollback) and stopped only once the
new one is ready. Rollouts of one (service, environment) are serialized by a lock file.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from syllabus.deploy.models import Deployment, Health, Revision, RevisionSpec
from syllabus.deploy.spec import DeploymentSpec, parse_spec
from syllabus.deploy.store import DeployStore
from syllabus.deploy.targets.base import Plan, PlannedModel, Target
from syllabus.errors import ConflictError, NotFoundError
from syllabus.registry.models import ModelVersion
from syllabus.registry.service import RegistryService
from syllabus.registry.store import Audit

__all__ = ["DeployService", "DeploymentStatus", "target_for"]

log = logging.getLogger(__name__)

_WAS_LIVE: Final = ("superseded", "rolled-back", "stopped")


def target_for(name: str) -> Target:
    """The target implementation called ``name``."""
    if name == "local":
        from syllabus.deploy.targets.local import LocalTarget

        return LocalTarget()
    if name == "docker":
        from syllabus.deploy.targets.docker import DockerTarget

        return DockerTarget()
    if name == "kubernetes":
        from syllabus.deploy.targets.kubernetes import KubernetesTarget

        return KubernetesTarget()
    raise NotFoundError(f"unknown deployment target {name!r} (local, docker, kubernetes)")


@dataclass(frozen=True, slots=True)
class DeploymentStatus:
    """A deployment and what its target sees of the live revision now."""

    deployment: Deployment
    health: Health


class DeployService:
    """Deployments for one client."""

    def __init__(
        self,
        store: DeployStore,
        registry: RegistryService,
        root: Path,
        *,
        uri: str | None = None,
        blobs: str | None = None,
        actor: str | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.root = root
        self.uri = uri
        self.blobs = blobs
        self.actor = actor or registry.actor

    # -- reading -------------------------------------------------------------------------

    def get(self, name: str, env: str) -> Deployment:
        return self.store.get_deployment(name, env)

    def list_deployments(self, name: str | None = None) -> list[Deployment]:
        return self.store.list_deployments(name)

    def history(self, name: str, env: str | None = None, *, limit: int = 100) -> list[Revision]:
        return self.store.list_revisions(name, env, limit=limit)

    def revision(self, name: str, env: str, revision: int) -> Revision:
        return self.store.get_revision(name, env, revision)

    def status(self, name: str | None = None) -> list[DeploymentStatus]:
        """Every deployment (of one service) with its live revision's health."""
        deployments = self.store.list_deployments(name)
        if name is not None and not deployments:
            raise NotFoundError(
                f"no deployment named {name!r}; `syllabus deploy status` lists them"
            )
        out = []
        for d in deployments:
            if d.live is None:
                health = Health(
                    "rendered" if d.latest.status == "rendered" else "not running",
                    d.latest.reason or "",
                )
            else:
                health = target_for(d.live.target).health(d.live.runtime)
            out.append(DeploymentStatus(d, health))
        return out

    def of_model(self, ref: str) -> list[Revision]:
        """Revisions that serve (or served) the version ``ref`` names."""
        version = self.registry.get_version(ref)
        return self.store.revisions_of_versions((version.id,))

    # -- planning ------------------------------------------------------------------------

    def folder(self, name: str, env: str, revision: int) -> Path:
        return self.root / name / env / f"rev-{revision}"

    def _resolve(self, config: Mapping[str, Any]) -> dict[str, tuple[ModelVersion, float | None]]:
        """The model versions a configuration names, by variant."""
        out: dict[str, tuple[ModelVersion, float | None]] = {
            "primary": (self._version(config["model"], "model"), None)
        }
        traffic = config.get("traffic") or {}
        if traffic.get("canary"):
            canary = traffic["canary"]
            out["canary"] = (self._version(canary["model"], "canary"), float(canary["percent"]))
        if traffic.get("shadow"):
            out["shadow"] = (self._version(traffic["shadow"]["model"], "shadow"), None)
        return out

    def _version(self, ref: str, what: str) -> ModelVersion:
        version = self.registry.get_version(ref)
        if version.retired:
            raise ConflictError(f"{what} {ref} is {version.ref}, which is retired")
        return version

    def _plan(
        self,
        revision: Revision,
        versions: Mapping[str, tuple[ModelVersion, float | None]],
        *,
        folder: Path | None = None,
        materialize: bool = False,
    ) -> Plan:
        models = []
        for variant, (v, percent) in versions.items():
            models.append(
                PlannedModel(
                    variant=variant,
                    ref=v.ref,
                    version_id=v.id,
                    name=v.name,
                    version=v.version,
                    model_path=v.model_path,
                    model_digest=v.model_digest,
                    percent=percent,
                    folder=self.registry.materialize(v) if materialize else None,
                )
            )
        return Plan(
            name=revision.name,
            env=revision.env,
            revision=revision.revision,
            config=revision.config,
            models=tuple(models),
            folder=folder or self.folder(revision.name, revision.env, revision.revision),
            uri=self.uri,
            blobs=self.blobs,
        )

    def _versions_of(self, revision: Revision) -> dict[str, tuple[ModelVersion, float | None]]:
        out: dict[str, tuple[ModelVersion, float | None]] = {
            "primary": (self._version(revision.model_ref, "model"), None)
        }
        if revision.canary_ref:
            out["canary"] = (self._version(revision.canary_ref, "canary"), revision.canary_percent)
        if revision.shadow_ref:
            out["shadow"] = (self._version(revision.shadow_ref, "shadow"), None)
        return out

    @staticmethod
    def _revision_spec(
        config: Mapping[str, Any],
        versions: Mapping[str, tuple[ModelVersion, float | None]],
        text: str,
        *,
        action: str = "apply",
        based_on: int | None = None,
    ) -> RevisionSpec:
        primary = versions["primary"][0]
        canary = versions.get("canary")
        shadow = versions.get("shadow")
        return RevisionSpec(
            target=str(config["target"]),
            model_version_id=primary.id,
            model_ref=primary.ref,
            spec=text,
            config=config,
            action=action,
            based_on=based_on,
            canary_version_id=None if canary is None else canary[0].id,
            canary_ref=None if canary is None else canary[0].ref,
            canary_percent=None if canary is None else canary[1],
            shadow_version_id=None if shadow is None else shadow[0].id,
            shadow_ref=None if shadow is None else shadow[0].ref,
            monitoring=config.get("monitoring"),
        )

    # -- rendering -----------------------------------------------------------------------

    def render(self, text: str, env: str, out: Path, *, source: str = "spec") -> list[Path]:
        """Write the artifacts ``env`` would get into ``out`` without recording or
        starting anything (for review, CI, or a cluster this machine cannot reach)."""
        spec = parse_spec(text, source=source)
        config = spec.effective(env)
        versions = self._resolve(config)
        draft = Revision(
            id="",
            name=spec.service,
            env=env,
            revision=0,
            status="rendered",
            action="apply",
            target=config["target"],
            model_version_id=versions["primary"][0].id,
            model_ref=versions["primary"][0].ref,
            spec=text,
            config=config,
            created_at=0,
            created_by=self.actor,
            updated_at=0,
        )
        target = target_for(config["target"])
        plan = self._plan(draft, versions, folder=out, materialize=config["target"] != "local")
        return target.render(plan)

    # -- changes -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, name: str, env: str) -> Iterator[None]:
        folder = self.root / name / env
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def spec(self, text: str, *, source: str = "spec") -> DeploymentSpec:
        return parse_spec(text, source=source)

    def apply(self, text: str, env: str, *, source: str = "spec") -> Revision:
        """Apply a spec to ``env``: a new revision, rolled out on its target."""
        spec = parse_spec(text, source=source)
        config = spec.effective(env)
        versions = self._resolve(config)
        target = target_for(config["target"])
        target.check()
        with self._locked(spec.service, env):
            unchanged = self._unchanged(spec.service, env, config, versions)
            if unchanged is not None:
                return unchanged
            revision = self.store.create_revision(
                spec.service, env, self._revision_spec(config, versions, text), self.actor
            )
            return self._roll_out(revision, versions, target, replaced="superseded")

    def _unchanged(
        self,
        name: str,
        env: str,
        config: Mapping[str, Any],
        versions: Mapping[str, tuple[ModelVersion, float | None]],
    ) -> Revision | None:
        """The live revision when it already serves this configuration and these model
        versions and is healthy (applying the same thing twice changes nothing)."""
        try:
            live = self.store.get_deployment(name, env).live
        except NotFoundError:
            return None
        if live is None or dict(live.config) != dict(config):
            return None
        wanted = self._revision_spec(config, versions, live.spec)
        same = (wanted.model_version_id, wanted.canary_version_id, wanted.shadow_version_id) == (
            live.model_version_id, live.canary_version_id, live.shadow_version_id,
        )  # fmt: skip
        if not same or target_for(live.target).health(live.runtime).state != "ready":
            return None
        log.info("%s (%s): revision %d serves this already", name, env, live.revision)
        return live

    def rollback(self, name: str, env: str, *, to: int | None = None) -> Revision:
        """A new revision serving what revision ``to`` served (default: the one before the
        live revision)."""
        with self._locked(name, env):
            deployment = self.store.get_deployment(name, env)
            current = deployment.current
            if to is None:
                # kubernetes revisions are never live here: any rendered one served
                served = (*_WAS_LIVE, "rendered") if current.target == "kubernetes" else _WAS_LIVE
                earlier = [
                    r
                    for r in self.store.list_revisions(name, env, limit=1000)
                    if r.revision < current.revision and r.status in served
                    and r.target == current.target
                ]  # fmt: skip
                if not earlier:
                    raise NotFoundError(
                        f"{name} ({env}) has no earlier revision that served to roll back to; "
                        f"`syllabus deploy history {name} --env {env}` lists them"
                    )
                to = earlier[0].revision
            live = deployment.live
            if (
                live is not None
                and to == live.revision
                and target_for(live.target).health(live.runtime).state != "not running"
            ):
                raise ConflictError(f"{name} ({env}) is serving revision {to} already")
            old = self.store.get_revision(name, env, to)
            versions = self._versions_of(old)
            target = target_for(old.target)
            target.check()
            revision = self.store.create_revision(
                name,
                env,
                self._revision_spec(
                    old.config, versions, old.spec, action="rollback", based_on=old.revision
                ),
                self.actor,
            )
            return self._roll_out(revision, versions, target, replaced="rolled-back")

    def promote_canary(self, name: str, env: str) -> Revision:
        """A new revision whose primary model is the live revision's canary (no canary)."""
        with self._locked(name, env):
            live = self._live(name, env)
            if live.canary_ref is None:
                raise ConflictError(
                    f"{name} ({env}) revision {live.revision} has no canary to promote"
                )
            config = dict(live.config)
            config["model"] = live.canary_ref
            config["traffic"] = {**dict(config.get("traffic") or {}), "canary": None}
            versions = self._resolve(config)
            target = target_for(live.target)
            target.check()
            revision = self.store.create_revision(
                name,
                env,
                self._revision_spec(
                    config, versions, live.spec, action="promote-canary", based_on=live.revision
                ),
                self.actor,
            )
            return self._roll_out(revision, versions, target, replaced="superseded")

    def stop(self, name: str, env: str) -> Revision:
        """Stop the live revision (the deployment and its history stay)."""
        with self._locked(name, env):
            live = self._live(name, env)
            target_for(live.target).stop(live.runtime)
            stopped = self.store.update_revision(
                name, env, live.revision, "stopped", reason=f"stopped by {self.actor}", live=False
            )
            self._events(stopped, "undeployed")
            return stopped

    def _live(self, name: str, env: str) -> Revision:
        deployment = self.store.get_deployment(name, env)
        if deployment.live is None:
            raise ConflictError(
                f"{name} ({env}) is not running (revision {deployment.latest.revision} is "
                f"{deployment.latest.status})"
            )
        return deployment.live

    def _roll_out(
        self,
        revision: Revision,
        versions: Mapping[str, tuple[ModelVersion, float | None]],
        target: Target,
        *,
        replaced: str,
    ) -> Revision:
        name, env = revision.name, revision.env
        previous = self.store.get_deployment(name, env).live
        try:
            plan = self._plan(revision, versions, materialize=target.name != "local")
            if target.name == "kubernetes":
                files = target.render(plan)
                return self.store.update_revision(
                    name,
                    env,
                    revision.revision,
                    "rendered",
                    reason=f"manifests in {plan.folder}; apply them with kubectl apply -f",
                    runtime={"target": target.name, "folder": str(plan.folder),
                             "files": [str(f) for f in files]},
                )  # fmt: skip
            runtime = target.start(plan, None if previous is None else previous.runtime)
        except BaseException as exc:  # interrupted too: never leave it pending
            reason = str(exc) or type(exc).__name__
            self.store.update_revision(name, env, revision.revision, "failed", reason=reason)
            raise
        live = self.store.update_revision(
            name, env, revision.revision, "live", runtime=runtime, live=True
        )
        self._events(live, "deployed")
        if previous is not None:
            try:
                target_for(previous.target).stop(previous.runtime)
            except Exception:  # the new revision serves; report, do not undo
                log.exception("could not stop revision %d of %s (%s)", previous.revision, name, env)
            self.store.update_revision(
                name,
                env,
                previous.revision,
                replaced,
                reason=f"replaced by revision {revision.revision}",
            )
        return live

    def _events(self, revision: Revision, event: str) -> None:
        """Audit events on each model version the revision serves (registry audit log)."""
        refs = [("primary", revision.model_ref)]
        if revision.canary_ref:
            refs.append(("canary", revision.canary_ref))
        if revision.shadow_ref:
            refs.append(("shadow", revision.shadow_ref))
        for variant, ref in refs:
            model, _, number = ref.rpartition("@")
            try:
                self.registry.store.add_event(
                    model,
                    int(number),
                    event,
                    Audit(
                        self.actor,
                        details={
                            "deployment": revision.name,
                            "env": revision.env,
                            "revision": revision.revision,
                            "variant": variant,
                            "target": revision.target,
                        },
                    ),
                )
            except Exception:  # the audit trail must not undo a rollout that happened
                log.exception("could not record %s event for %s", event, ref)
