"""Registry behaviour on top of the stores: registration from folders and runs, loading
with the content-id guard, promotion through policy gates, approvals, archive, retirement
and rollback, and lineage.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from syllabus._utils.ids import new_id
from syllabus.blobs.digest import Digest
from syllabus.blobs.manifest import Manifest, ManifestEntry
from syllabus.blobs.store import BlobStore
from syllabus.errors import (
    BlobNotFoundError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PromotionRefusedError,
    StorageError,
)
from syllabus.refs import Ref, SelectorKind, Stage, parse_ref, validate_name
from syllabus.registry.gates import EvaluationGate, GateContext, check_gates
from syllabus.registry.models import (
    ApprovalRequest,
    Event,
    GateResult,
    ModelVersion,
    PolicyVersion,
    RegisteredModel,
    TransitionResult,
    VersionSpec,
    Webhook,
)
from syllabus.registry.packaging.model import (
    MANIFEST_FILE,
    LoadedModel,
    load_model_folder,
    parse_info,
)
from syllabus.registry.policy import DEFAULT_POLICY, Policy, parse_policy
from syllabus.registry.store import Audit, GovernanceStore, RegistryStore
from syllabus.registry.webhooks import check_url
from syllabus.tracking.models import Artifact, Run

__all__ = ["RegistryService", "RunSource", "current_user"]

log = logging.getLogger(__name__)
_READ_BUFFER = 1024 * 1024


class Store(RegistryStore, GovernanceStore, Protocol):
    """Both registry Protocols (the SQL store implements them together)."""


class RunSource(Protocol):
    """What the registry reads from experiment tracking (``TrackingService`` has it)."""

    def get_run(self, ref: str) -> Run: ...

    def list_artifacts(self, run_id: str, path: str = "") -> list[Artifact]: ...


def current_user() -> str:
    """Who does things, until the team server brings real users: the OS user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no user database entry
        return "unknown"


def _ref(ref: str | Ref) -> Ref:
    return ref if isinstance(ref, Ref) else parse_ref(ref)


class RegistryService:
    """Registry operations for one client."""

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        *,
        runs: RunSource | None = None,
        cache_dir: Path | None = None,
        evaluation: EvaluationGate | None = None,
        actor: str | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.runs = runs
        self.cache_dir = cache_dir
        self.evaluation = evaluation
        self.actor = actor or current_user()

    def _audit(self, comment: str | None = None, **kw: Any) -> Audit:
        return Audit(self.actor, comment, **kw)

    # -- registration --------------------------------------------------------------------

    def _spec(
        self,
        tree: str,
        manifest: Manifest,
        *,
        source: str,
        run_id: str | None,
        description: str | None,
        tags: Mapping[str, str],
    ) -> VersionSpec:
        entry = manifest.get(MANIFEST_FILE)
        if entry is None or entry.kind != "file":
            raise InvalidArgumentError(
                f"{source} is not a model folder (no {MANIFEST_FILE}); save it with "
                "syllabus.log_model or syllabus.registry.packaging.save_model"
            )
        info = parse_info(self.blobs.read_bytes(entry.digest), source=f"{source}/{MANIFEST_FILE}")
        model_entry = manifest.get(info.saved.path)
        if model_entry is None:
            raise InvalidArgumentError(f"{source}: the model file {info.saved.path!r} is missing")
        return VersionSpec(
            tree=tree,
            size=manifest.total_size,
            flavor=info.flavor,
            serialization=info.saved.serialization,
            unsafe=info.unsafe,
            model_path=info.saved.path,
            model_digest=str(model_entry.digest),
            signature=None if info.signature is None else info.signature.to_dict(),
            source=source,
            run_id=run_id,
            description=description,
            tags=dict(tags),
        )

    def register_folder(
        self,
        name: str,
        path: str | Path,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> ModelVersion:
        """A new version of ``name`` from a model folder on disk."""
        validate_name(name)
        folder = Path(path)
        if not (folder / MANIFEST_FILE).is_file():
            raise NotFoundError(f"{folder} is not a model folder (no {MANIFEST_FILE})")
        tree = self.blobs.put_tree(folder)
        spec = self._spec(
            str(tree.digest),
            tree.manifest,
            source=str(folder.resolve()) if run_id is None else f"run:{run_id}",
            run_id=run_id,
            description=description,
            tags=tags or {},
        )
        return self.store.create_version(name, spec, self._audit())

    def register_run(
        self,
        name: str,
        run_id: str,
        artifact_path: str = "model",
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """A new version of ``name`` from the model a run logged under ``artifact_path``."""
        validate_name(name)
        if self.runs is None:
            raise InvalidArgumentError("registering from a run needs experiment tracking")
        run = self.runs.get_run(run_id)
        prefix = artifact_path.strip("/")
        found = self.runs.list_artifacts(run.id, prefix)
        entries = [
            ManifestEntry.file(
                a.path[len(prefix) + 1 :] if prefix else a.path, Digest(a.digest), a.size
            )
            for a in found
            if not prefix or a.path.startswith(prefix + "/")
        ]
        if not entries:
            raise NotFoundError(
                f"run {run.id[:8]} has no model under {prefix!r}; "
                f"`syllabus runs artifacts {run.id[:8]}` lists what it logged"
            )
        manifest = Manifest(entries)
        tree = self.blobs.put_bytes(manifest.serialize())
        self.blobs.flush()
        spec = self._spec(
            str(tree),
            manifest,
            source=f"run:{run.id}/{prefix}",
            run_id=run.id,
            description=description,
            tags=tags or {},
        )
        return self.store.create_version(name, spec, self._audit())

    # -- reading -------------------------------------------------------------------------

    def get_model(self, name: str) -> RegisteredModel:
        return self.store.get_model(name)

    def list_models(self, name_like: str | None = None) -> list[RegisteredModel]:
        return self.store.list_models(name_like=name_like)

    def get_version(self, ref: str | Ref) -> ModelVersion:
        return self.store.resolve(_ref(ref))

    def list_versions(self, name: str, stage: Stage | str | None = None) -> list[ModelVersion]:
        return self.store.list_versions(name, stage=None if stage is None else Stage(stage))

    def history(self, name: str | None = None, *, limit: int = 1000) -> list[Event]:
        return self.store.list_events(name, limit=limit)

    # -- loading -------------------------------------------------------------------------

    def materialize(self, version: ModelVersion) -> Path:
        """The version's model folder in the cache (written once, atomically)."""
        if version.retired:
            raise ConflictError(f"{version.ref} is retired; its files were released")
        if self.cache_dir is None:
            raise InvalidArgumentError("loading a registered model needs a cache folder")
        final = self.cache_dir / "models" / version.tree
        if final.is_dir():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{version.tree}.{new_id()}.tmp"
        try:
            self.blobs.materialize(Digest(version.tree), tmp)
            try:
                tmp.rename(final)
            except OSError:
                if not final.is_dir():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return final

    def load(self, ref: str | Ref, *, trust: bool = False) -> LoadedModel:
        """Load a registered version; unsafe files must have the recorded content id."""
        version = self.get_version(ref)
        folder = self.materialize(version)
        return load_model_folder(
            folder,
            trust=trust,
            trusted=lambda rel, digest: (
                rel == version.model_path and digest == version.model_digest
            ),
        )

    def load_path(self, path: str | Path, *, trust: bool = False) -> LoadedModel:
        """Load a model folder from disk; unsafe files load only when some registered
        version recorded the same content id (or with ``trust``)."""

        def trusted(rel: str, digest: str) -> bool:
            return any(v.model_path == rel for v in self.store.versions_with_digest(digest))

        return load_model_folder(path, trust=trust, trusted=trusted)

    # -- integrity -----------------------------------------------------------------------

    def verify(self, version: ModelVersion) -> list[str]:
        """Re-read and re-hash every file of the version; the problems found."""
        problems: list[str] = []
        try:
            manifest = self.blobs.get_manifest(Digest(version.tree))
        except (StorageError, BlobNotFoundError, InvalidArgumentError) as exc:
            return [f"model folder manifest: {exc}"]
        buffer = bytearray(_READ_BUFFER)
        for entry in manifest.values():
            if entry.kind != "file":
                continue
            try:
                with self.blobs.open(entry.digest) as reader:
                    while reader.readinto(buffer):
                        pass
            except (StorageError, BlobNotFoundError) as exc:
                problems.append(f"{entry.path}: {exc}")
        return problems

    # -- policies ------------------------------------------------------------------------

    def apply_policy(self, text: str, *, source: str = "policy") -> PolicyVersion:
        """Validate and store a policy; a new version unless the text is unchanged."""
        policy = parse_policy(text, source=source)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return self.store.add_policy(policy.name, text, digest, self._audit())

    def policy_for(self, name: str) -> tuple[Policy, PolicyVersion | None]:
        """The policy that governs ``name``: its own, else ``default``, else the built-in."""
        for candidate in (name, "default"):
            stored = self.store.get_policy(candidate)
            if stored is not None:
                parsed = parse_policy(stored.text, source=f"policy {candidate} v{stored.version}")
                return Policy(
                    parsed.name, parsed.rules, parsed.archived_retention, stored.version
                ), stored
        return DEFAULT_POLICY, None

    def get_policy(self, name: str, version: int | None = None) -> PolicyVersion:
        found = self.store.get_policy(name, version)
        if found is None:
            which = "" if version is None else f" version {version}"
            raise NotFoundError(f"no policy {name!r}{which}; `syllabus policy apply FILE` adds one")
        return found

    # -- promotion -----------------------------------------------------------------------

    def _context(
        self, version: ModelVersion, to: Stage, request: ApprovalRequest | None
    ) -> GateContext:
        def run_metrics() -> Mapping[str, float] | None:
            if version.run_id is None or self.runs is None:
                return None
            try:
                run = self.runs.get_run(version.run_id)
            except NotFoundError:
                return None
            return {k: m.value for k, m in run.metrics.items()}

        def run_artifacts() -> set[str]:
            if version.run_id is None or self.runs is None:
                return set()
            return {a.path for a in self.runs.list_artifacts(version.run_id)}

        def model_files() -> set[str]:
            return set(self.blobs.get_manifest(Digest(version.tree)))

        return GateContext(
            version=version,
            to=to,
            run_metrics=run_metrics,
            run_artifacts=run_artifacts,
            model_files=model_files,
            loader=lambda: self.load(Ref(version.name, SelectorKind.VERSION, version.version)),
            approvals=() if request is None else request.approvals,
            evaluation=self.evaluation,
        )

    def check(
        self, ref: str | Ref, to: Stage | str, *, request: ApprovalRequest | None = None
    ) -> tuple[ModelVersion, Policy, list[GateResult]]:
        """The gate results a promotion would get now (nothing moves)."""
        version = self.get_version(ref)
        target = Stage(to)
        policy, _ = self.policy_for(version.name)
        rule = policy.rule(target)
        results: list[GateResult] = []
        if version.stage is target:
            raise ConflictError(f"{version.ref} is in {target.value} already")
        if rule.sources is not None and version.stage not in rule.sources:
            allowed = ", ".join(s.value for s in rule.sources)
            results.append(
                GateResult("source stage", False, version.stage.value, f"one of {allowed}")
            )
        if target is not Stage.ARCHIVED:
            problems = self.verify(version)
            results.append(
                GateResult(
                    "integrity",
                    not problems,
                    "all files verified" if not problems else f"{len(problems)} damaged",
                    "every file hashes to its content id",
                    "; ".join(problems[:3]),
                )
            )
            if problems:
                return version, policy, results  # never load damaged bytes
        results.extend(check_gates(rule.gates, self._context(version, target, request)))
        return version, policy, results

    def promote(
        self,
        ref: str | Ref,
        to: Stage | str,
        *,
        comment: str | None = None,
        request_id: str | None = None,
    ) -> TransitionResult:
        """Move a version to ``to`` when the policy's gates pass; PromotionRefusedError
        listing every failed criterion otherwise (also recorded in the audit log)."""
        target = Stage(to)
        version = self.get_version(ref)
        request = self._pending_request(version, target, request_id)
        version, policy, results = self.check(version.ref, target, request=request)
        failed = [r for r in results if not r.passed]
        gates = [
            {
                "gate": r.gate,
                "passed": r.passed,
                "measured": r.measured,
                "required": r.required,
                **({"detail": r.detail} if r.detail else {}),
            }
            for r in results
        ]
        audit = self._audit(
            comment,
            policy_name=policy.name,
            policy_version=policy.version,
            details={"gates": gates, **({"request": request.id} if request else {})},
        )
        if failed:
            self.store.add_event(
                version.name,
                version.version,
                "promotion_refused",
                audit,
                from_stage=version.stage.value,
                to_stage=target.value,
            )
            listed = "; ".join(r.describe() for r in failed)
            raise PromotionRefusedError(
                f"{version.ref} cannot move to {target.value}: {listed}", tuple(results)
            )
        moved, archived = self.store.transition(
            version.name,
            version.version,
            target,
            audit,
            exclusive=not policy.rule(Stage.PRODUCTION).allow_multiple,
            expect=version.stage,
        )
        if request is not None:
            self.store.close_request(request.id, "done", audit)
        return TransitionResult(moved, tuple(archived), tuple(results), policy.name, policy.version)

    def _pending_request(
        self, version: ModelVersion, to: Stage, request_id: str | None
    ) -> ApprovalRequest | None:
        if request_id is not None:
            return self.store.get_request(request_id)
        for req in self.store.list_requests(version.name, status="pending"):
            if req.version_id == version.id and req.to_stage is to:
                return req
        return None

    # -- approvals -----------------------------------------------------------------------

    def request(
        self, ref: str | Ref, to: Stage | str, *, comment: str | None = None
    ) -> ApprovalRequest:
        """Ask for a version to move to a stage; it moves once gates and approvals pass."""
        version = self.get_version(ref)
        return self.store.create_request(
            version.name, version.version, Stage(to), self._audit(comment)
        )

    def list_requests(
        self, name: str | None = None, *, status: str | None = "pending"
    ) -> list[ApprovalRequest]:
        return self.store.list_requests(name, status=status)

    def approve(
        self, request_id: str, *, role: str | None = None, comment: str | None = None
    ) -> tuple[ApprovalRequest, TransitionResult | None, list[GateResult]]:
        """Approve a request; when every gate then passes the version moves (returned)."""
        req = self.store.decide(request_id, "approve", role, self._audit(comment))
        try:
            result = self.promote(
                Ref(req.name, SelectorKind.VERSION, req.version),
                req.to_stage,
                comment=comment,
                request_id=req.id,
            )
        except PromotionRefusedError as exc:
            return self.store.get_request(req.id), None, list(exc.results)  # type: ignore[arg-type]
        return self.store.get_request(req.id), result, list(result.gates)

    def reject(
        self, request_id: str, *, role: str | None = None, comment: str | None = None
    ) -> ApprovalRequest:
        audit = self._audit(comment)
        req = self.store.decide(request_id, "reject", role, audit)
        return self.store.close_request(req.id, "rejected", audit)

    # -- aliases, tags, descriptions -----------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: int | None, *, comment: str | None = None
    ) -> None:
        parsed = parse_ref(f"{name}@{alias}")
        if parsed.kind is not SelectorKind.ALIAS:
            raise InvalidArgumentError(
                f"{alias!r} cannot be an alias: it reads as a version or stage"
            )
        self.store.set_alias(name, alias, version, self._audit(comment))

    def set_tag(self, name: str, version: int | None, key: str, value: str | None) -> None:
        self.store.set_tag(name, version, key, value, self._audit())

    def describe(self, name: str, version: int | None, text: str) -> None:
        self.store.describe(name, version, text, self._audit())

    # -- archive, retire, rollback -------------------------------------------------------

    def archive(self, ref: str | Ref, *, comment: str | None = None) -> TransitionResult:
        return self.promote(ref, Stage.ARCHIVED, comment=comment)

    def retire(
        self, ref: str | Ref, *, force: bool = False, comment: str | None = None
    ) -> ModelVersion:
        """Retire an archived version: its blob references are released (``store gc`` may
        then delete the bytes); metadata and audit stay. Before the policy's retention
        period has passed since archiving, only with ``force``."""
        version = self.get_version(ref)
        policy, _ = self.policy_for(version.name)
        if version.stage is Stage.ARCHIVED and policy.archived_retention and not force:
            age = time.time() - version.stage_changed_at / 1000
            if age < policy.archived_retention:
                days = (policy.archived_retention - age) / 86400
                raise ConflictError(
                    f"{version.ref} was archived {age / 86400:.1f} days ago; policy "
                    f"{policy.name!r} keeps archived versions {days:.1f} more days "
                    "(pass --force to retire it now)"
                )
        return self.store.retire(version.name, version.version, self._audit(comment))

    def retire_expired(self) -> list[ModelVersion]:
        """Retire every archived version past its policy's retention period."""
        out = []
        for model in self.store.list_models():
            policy, _ = self.policy_for(model.name)
            if not policy.archived_retention:
                continue
            cutoff = (time.time() - policy.archived_retention) * 1000
            for v in self.store.list_versions(model.name, stage=Stage.ARCHIVED):
                if not v.retired and v.stage_changed_at <= cutoff:
                    out.append(self.store.retire(v.name, v.version, self._audit("retention")))
        return out

    def rollback(self, name: str, *, comment: str | None = None) -> TransitionResult:
        """Put the version the last promotion archived back in production (its files are
        verified; other gates are skipped: a rollback is the way back to a known state)."""
        model = self.store.get_model(name)
        if model.rollback_version is None:
            raise NotFoundError(
                f"model {name!r} has no previous production version to roll back to"
            )
        version = self.store.resolve(Ref(name, SelectorKind.VERSION, model.rollback_version))
        problems = self.verify(version)
        if problems:
            raise PromotionRefusedError(
                f"{version.ref} cannot go back to production: {'; '.join(problems[:3])}"
            )
        policy, _ = self.policy_for(name)
        audit = self._audit(
            comment,
            policy_name=policy.name,
            policy_version=policy.version,
            details={"rollback": True},
        )
        moved, archived = self.store.transition(
            name,
            version.version,
            Stage.PRODUCTION,
            audit,
            exclusive=not policy.rule(Stage.PRODUCTION).allow_multiple,
            expect=version.stage,
        )
        return TransitionResult(moved, tuple(archived), (), policy.name, policy.version)

    # -- webhooks ------------------------------------------------------------------------

    def add_webhook(
        self, url: str, secret: str, *, events: Sequence[str] = (), model: str | None = None
    ) -> Webhook:
        check_url(url)
        if not secret:
            raise InvalidArgumentError("a webhook needs a shared secret to sign its events")
        return self.store.add_webhook(url, secret, events, model, self._audit())

    def remove_webhook(self, webhook: str) -> list[str]:
        """Remove the webhooks with URL ``webhook``, or the one whose id starts with it (at
        least 6 hex characters); returns the ids removed."""
        hooks = self.store.list_webhooks()
        if webhook.startswith(("http://", "https://")):
            ids = [h.id for h in hooks if h.url == webhook]
            if not ids:
                raise NotFoundError(
                    f"no webhook sends to {webhook}; see `syllabus models webhooks list`"
                )
        elif len(webhook) >= 6 and all(c in "0123456789abcdef" for c in webhook):
            ids = [h.id for h in hooks if h.id.startswith(webhook)]
            if len(ids) != 1:
                raise NotFoundError(
                    f"{len(ids) or 'no'} webhooks have an id starting with {webhook!r}; "
                    "see `syllabus models webhooks list`"
                )
        else:
            raise InvalidArgumentError(
                f"webhook {webhook!r}: give its URL or at least 6 hex characters of its id "
                "(see `syllabus models webhooks list`)"
            )
        for webhook_id in ids:
            self.store.remove_webhook(webhook_id, self._audit())
        return ids

    # -- lineage -------------------------------------------------------------------------

    def lineage(self, ref: str | Ref) -> dict[str, Any]:
        """Where a version came from: run, its inputs (data versions), code and
        environment facts the run recorded, evaluations and deployments (empty until
        those components exist)."""
        version = self.get_version(ref)
        out: dict[str, Any] = {
            "model": version.ref,
            "stage": version.stage.value,
            "source": version.source,
            "flavor": version.flavor,
            "tree": version.tree,
            "run": None,
            "inputs": [],
            "code": None,
            "environment": None,
            "evaluations": [],
            "deployments": [],
        }
        if version.run_id is not None and self.runs is not None:
            with contextlib.suppress(NotFoundError):
                run = self.runs.get_run(version.run_id)
                out["run"] = {
                    "id": run.id,
                    "name": run.name,
                    "status": run.status.value,
                    "params": dict(run.params),
                    "metrics": {k: m.value for k, m in run.metrics.items()},
                }
                code = {k: v for k, v in run.tags.items() if k.startswith(("git.", "code."))}
                out["code"] = code or None
                lister = getattr(self.runs, "list_inputs", None)
                if lister is not None:
                    out["inputs"] = [
                        {"kind": i.kind, "id": i.target_id, "name": i.name, "role": i.role}
                        for i in lister(run.id)
                    ]
        if not version.retired:
            with contextlib.suppress(NotFoundError, StorageError):
                manifest = self.blobs.get_manifest(Digest(version.tree))
                req = manifest.get("requirements.txt")
                if req is not None:
                    text = self.blobs.read_bytes(req.digest).decode("utf-8")
                    out["environment"] = {"requirements": [x for x in text.splitlines() if x]}
        return out
