"""The model registry on the :class:`~syllabus.client.Client` (a mixin).

References read ``churn@3``, ``churn@latest``, ``churn@production``, ``churn@champion``;
a bare name means ``@latest``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syllabus.errors import InvalidArgumentError

if TYPE_CHECKING:
    from syllabus.client.local import LocalBackend
    from syllabus.config import Settings
    from syllabus.registry.models import (
        ApprovalRequest,
        Event,
        GateResult,
        ModelVersion,
        PolicyVersion,
        RegisteredModel,
        TransitionResult,
        Webhook,
    )
    from syllabus.registry.packaging import LoadedModel, ModelInfo, Signature
    from syllabus.registry.service import RegistryService

__all__ = ["RegistryAPI"]


class RegistryAPI:
    """Registered models, versions, stages, policies, approvals and the audit log."""

    if TYPE_CHECKING:
        settings: Settings

        def _open(self, *, write: bool) -> LocalBackend: ...

    def _registry(self, *, write: bool = False) -> RegistryService:
        from syllabus.client.datasets import cache_dir
        from syllabus.evaluation.gate import BeatsGate
        from syllabus.registry.service import RegistryService

        backend = self._open(write=write)
        service = RegistryService(
            backend.registry_store,
            backend.blobs,
            runs=backend.tracking,
            cache_dir=cache_dir(self.settings),
        )
        # The beats gate evaluates through this same registry service (built on first use).
        service.evaluation = BeatsGate(
            lambda: self._evaluations(write=True, registry=service)  # type: ignore[attr-defined]
        )
        return service

    # -- packaging and registration ------------------------------------------------------

    def log_model(
        self,
        run_id: str,
        model: Any,
        artifact_path: str = "model",
        *,
        signature: Signature | str | None = "infer",
        input_example: Any = None,
        requirements: Sequence[str] = (),
        flavor: str | None = None,
        registered_name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        flavor_options: Mapping[str, Any] | None = None,
    ) -> tuple[ModelInfo, ModelVersion | None]:
        """Save ``model`` as a model folder among the run's artifacts (under
        ``artifact_path``); with ``registered_name`` also register it as a new version."""
        from syllabus.registry.packaging import save_model

        with tempfile.TemporaryDirectory(prefix="syllabus-model-") as tmp:
            folder = Path(tmp) / "model"
            info = save_model(
                model,
                folder,
                flavor=flavor,
                signature=signature,
                input_example=input_example,
                requirements=requirements,
                metadata=metadata,
                flavor_options=flavor_options,
            )
            self._open(write=True).tracking.log_artifacts(run_id, folder, artifact_path)
        version = None
        if registered_name is not None:
            version = self.register_model(f"run:{run_id}/{artifact_path}", registered_name)
        return info, version

    def register_model(
        self,
        source: str | Path,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """A new version of ``name`` from ``run:<run id>[/<artifact path>]`` (default path
        ``model``) or a model folder on disk."""
        service = self._registry(write=True)
        text = str(source)
        if text.startswith("run:"):
            run_id, _, path = text[4:].partition("/")
            if not run_id:
                raise InvalidArgumentError(f"{text!r} names no run (expected run:<id>/<path>)")
            return service.register_run(
                name, run_id, path or "model", description=description, tags=tags
            )
        return service.register_folder(name, text, description=description, tags=tags)

    def load_model(self, ref: str | Path, *, trust: bool = False) -> LoadedModel:
        """A registered version (``churn@production``) or a model folder on disk, with one
        ``predict``. Pickle-based files load only when their content id matches the
        registry's record, unless ``trust=True``."""
        text = str(ref)
        if isinstance(ref, Path) or text.startswith((".", "/", "~")) or Path(text).is_dir():
            return self._registry(write=False).load_path(Path(text).expanduser(), trust=trust)
        return self._registry(write=False).load(text, trust=trust)

    # -- reading -------------------------------------------------------------------------

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self._registry().get_model(name)

    def list_registered_models(self, *, name_like: str | None = None) -> list[RegisteredModel]:
        return self._registry().list_models(name_like)

    def get_model_version(self, ref: str) -> ModelVersion:
        """The version a reference names."""
        return self._registry().get_version(ref)

    def list_model_versions(self, name: str, *, stage: str | None = None) -> list[ModelVersion]:
        return self._registry().list_versions(name, stage)

    def model_history(self, name: str | None = None, *, limit: int = 1000) -> list[Event]:
        """The audit log of a model (or of the whole registry), oldest first."""
        return self._registry().history(name, limit=limit)

    def model_lineage(self, ref: str) -> dict[str, Any]:
        return self._registry().lineage(ref)

    # -- changes -------------------------------------------------------------------------

    def set_model_alias(self, name: str, alias: str, version: int) -> None:
        self._registry(write=True).set_alias(name, alias, version)

    def delete_model_alias(self, name: str, alias: str) -> None:
        self._registry(write=True).set_alias(name, alias, None)

    def set_model_tag(
        self, name: str, key: str, value: str | None, *, version: int | None = None
    ) -> None:
        """Set (or with None delete) a tag of a model or of one version."""
        self._registry(write=True).set_tag(name, version, key, value)

    def describe_model(self, name: str, text: str, *, version: int | None = None) -> None:
        self._registry(write=True).describe(name, version, text)

    def check_transition(self, ref: str, to: str) -> list[GateResult]:
        """The gate results moving ``ref`` to ``to`` would get now (nothing moves)."""
        return self._registry().check(ref, to)[2]

    def transition_stage(
        self, ref: str, to: str, *, comment: str | None = None
    ) -> TransitionResult:
        """Promote (or demote) a version when its policy's gates pass; raises
        PromotionRefusedError listing every failed criterion otherwise."""
        return self._registry(write=True).promote(ref, to, comment=comment)

    promote_model = transition_stage

    def archive_model_version(self, ref: str, *, comment: str | None = None) -> TransitionResult:
        return self._registry(write=True).archive(ref, comment=comment)

    def retire_model_version(
        self, ref: str, *, force: bool = False, comment: str | None = None
    ) -> ModelVersion:
        return self._registry(write=True).retire(ref, force=force, comment=comment)

    def retire_expired_models(self) -> list[ModelVersion]:
        return self._registry(write=True).retire_expired()

    def rollback_model(self, name: str, *, comment: str | None = None) -> TransitionResult:
        return self._registry(write=True).rollback(name, comment=comment)

    # -- approvals -----------------------------------------------------------------------

    def request_transition(
        self, ref: str, to: str, *, comment: str | None = None
    ) -> ApprovalRequest:
        return self._registry(write=True).request(ref, to, comment=comment)

    def list_transition_requests(
        self, name: str | None = None, *, status: str | None = "pending"
    ) -> list[ApprovalRequest]:
        return self._registry().list_requests(name, status=status)

    def approve_transition(
        self, request_id: str, *, role: str | None = None, comment: str | None = None
    ) -> tuple[ApprovalRequest, TransitionResult | None, list[GateResult]]:
        return self._registry(write=True).approve(request_id, role=role, comment=comment)

    def reject_transition(
        self, request_id: str, *, role: str | None = None, comment: str | None = None
    ) -> ApprovalRequest:
        return self._registry(write=True).reject(request_id, role=role, comment=comment)

    # -- policies and webhooks -----------------------------------------------------------

    def apply_policy(self, path_or_text: str | Path) -> PolicyVersion:
        """Apply a policy from a YAML file (or YAML text); a new version when it changed."""
        path = Path(path_or_text)
        if isinstance(path_or_text, Path) or (
            "\n" not in str(path_or_text) and path.suffix in (".yaml", ".yml")
        ):
            return self._registry(write=True).apply_policy(path.read_text(), source=str(path))
        return self._registry(write=True).apply_policy(str(path_or_text))

    def get_policy(self, name: str, *, version: int | None = None) -> PolicyVersion:
        return self._registry().get_policy(name, version)

    def add_webhook(
        self, url: str, secret: str, *, events: Sequence[str] = (), model: str | None = None
    ) -> Webhook:
        return self._registry(write=True).add_webhook(url, secret, events=events, model=model)

    def list_webhooks(self) -> list[Webhook]:
        return self._open(write=False).registry_store.list_webhooks()

    def remove_webhook(self, webhook: str) -> list[str]:
        """Remove the webhooks with this URL, or the one whose id starts with ``webhook``
        (6 characters or more); returns the ids removed."""
        return self._registry(write=True).remove_webhook(webhook)

    def flush_webhooks(self, timeout: float = 30.0) -> bool:
        """Wait for queued webhook deliveries; False when some were still pending."""
        backend = getattr(self, "_backend", None)
        if backend is None or "webhooks" not in backend.__dict__:
            return True
        return bool(backend.webhooks.flush(timeout))
