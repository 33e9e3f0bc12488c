"""Deployments on the :class:`~syllabus.client.Client` (a mixin): apply a spec to an
environment, status, history, rollback, stop, promote a canary, render artifacts, and
batch scoring of dataset versions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syllabus.types import ProgressCallback, null_progress

if TYPE_CHECKING:
    from syllabus.client.local import LocalBackend
    from syllabus.config import Settings
    from syllabus.datasets import AddResult, DatasetVersion
    from syllabus.deploy.batch import BatchResult
    from syllabus.deploy.models import Deployment, Revision
    from syllabus.deploy.service import DeploymentStatus, DeployService
    from syllabus.registry.service import RegistryService
    from syllabus.tracking.models import Run, RunInput

__all__ = ["DeployAPI", "deployments_dir"]


def deployments_dir(settings: Settings) -> Path:
    """Where revisions keep their files: the workspace's ``deployments/`` folder, else
    the user's state folder (``$XDG_STATE_HOME/syllabus/deployments``)."""
    if settings.workspace is not None:
        return settings.workspace / "deployments"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "syllabus" / "deployments"


def _text(spec: str | Path) -> tuple[str, str]:
    """(YAML text, source name) of a spec given as a file or as YAML text."""
    if isinstance(spec, Path) or ("\n" not in spec and spec.endswith((".yaml", ".yml"))):
        from syllabus.errors import NotFoundError

        path = Path(spec)
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except FileNotFoundError:
            raise NotFoundError(f"no deployment spec at {path}") from None
    return spec, "spec"


class DeployAPI:
    """Deployments of registered models (mixed into ``Client``)."""

    if TYPE_CHECKING:
        settings: Settings

        def _open(self, *, write: bool) -> LocalBackend: ...

        def _registry(self, *, write: bool = False) -> RegistryService: ...

        def get_dataset(self, ref: str) -> DatasetVersion: ...

    def _deploy(self, *, write: bool = False) -> DeployService:
        from syllabus.deploy.service import DeployService

        backend = self._open(write=write)
        registry = self._registry(write=write)
        settings = self.settings
        if settings.uri is not None:
            uri: str | None = settings.uri
        elif settings.workspace is not None:
            uri = str(settings.workspace)
        else:
            uri = backend.location.db_url
        return DeployService(
            backend.deploy_store,
            registry,
            deployments_dir(settings),
            uri=uri,
            blobs=settings.blobs,
            actor=registry.actor,
        )

    # -- reading -------------------------------------------------------------------------

    def list_deployments(self, name: str | None = None) -> list[Deployment]:
        """Every deployment (of one service) by name and environment."""
        return self._deploy().list_deployments(name)

    def get_deployment(self, name: str, env: str) -> Deployment:
        """A deployment with its live revision (None when stopped) and newest revision."""
        return self._deploy().get(name, env)

    def deployment_history(
        self, name: str, env: str | None = None, *, limit: int = 100
    ) -> list[Revision]:
        """Revisions of a service (in one environment), newest first."""
        return self._deploy().history(name, env, limit=limit)

    def get_deployment_revision(self, name: str, env: str, revision: int) -> Revision:
        return self._deploy().revision(name, env, revision)

    def deployment_status(self, name: str | None = None) -> list[DeploymentStatus]:
        """Deployments with what their target sees now (pid alive, port, health)."""
        return self._deploy().status(name)

    def model_deployments(self, ref: str) -> list[Revision]:
        """Revisions that serve or served the model version ``ref`` names, newest first."""
        return self._deploy().of_model(ref)

    # -- changes -------------------------------------------------------------------------

    def apply_deployment(self, spec: str | Path, env: str) -> Revision:
        """Apply a deployment spec (a YAML file or YAML text) to ``env``: a new revision,
        rolled out on the spec's target. DeploymentFailedError when it never becomes
        ready (the previous revision keeps serving)."""
        text, source = _text(spec)
        return self._deploy(write=True).apply(text, env, source=source)

    def rollback_deployment(self, name: str, env: str, *, to: int | None = None) -> Revision:
        """A new revision serving what revision ``to`` served (default: the previous one)."""
        return self._deploy(write=True).rollback(name, env, to=to)

    def stop_deployment(self, name: str, env: str) -> Revision:
        """Stop the live revision of ``name`` in ``env``."""
        return self._deploy(write=True).stop(name, env)

    def promote_canary(self, name: str, env: str) -> Revision:
        """A new revision serving the live revision's canary as its only model."""
        return self._deploy(write=True).promote_canary(name, env)

    def render_deployment(self, spec: str | Path, env: str, out: str | Path) -> list[Path]:
        """Write what ``env`` would get on the spec's target (server config, Dockerfile and
        build context, Kubernetes manifests) into ``out``; records and starts nothing."""
        text, source = _text(spec)
        return self._deploy(write=False).render(text, env, Path(out), source=source)

    # -- batch scoring -------------------------------------------------------------------

    def batch_score(
        self,
        model: str,
        data: str,
        output: str,
        *,
        chunk_rows: int = 100_000,
        executor: str = "local",
        workers: int | None = None,
        trust: bool = False,
        progress: ProgressCallback = null_progress,
    ) -> BatchResult:
        """Score dataset version ``data`` with model version ``model`` in chunks of
        ``chunk_rows`` (on a local process pool or on Ray) into a new version of dataset
        ``output``: the input columns plus ``prediction`` (and ``score`` for classifiers).
        The scoring is a run whose inputs are the model and data versions and whose
        output is the new version."""
        from syllabus.deploy.batch import BatchJob, run_batch

        registry = self._registry(write=True)
        version = registry.get_version(model)
        folder = registry.materialize(version)
        source = self.get_dataset(data)
        job = BatchJob(
            model_ref=version.ref,
            model_version_id=version.id,
            model_folder=folder,
            model_path=version.model_path,
            model_digest=version.model_digest,
            signature=version.signature,
            chunk_rows=chunk_rows,
            executor=executor,
            workers=workers,
            trust=trust,
        )
        return run_batch(job, source, output, _BatchData(self), progress=progress)


class _BatchData:
    """Datasets and lineage for :func:`syllabus.deploy.batch.run_batch`."""

    def __init__(self, client: Any) -> None:  # the Client (datasets and tracking mixins)
        self._client = client

    def read_table(self, version: DatasetVersion) -> Any:
        return self._client.dataset(version.ref).to_arrow()

    def add_table(self, name: str, path: Path, message: str) -> DatasetVersion:
        result: AddResult = self._client.add_dataset(name, path, message=message)
        return result.version

    def start_run(self, name: str, params: dict[str, Any]) -> str:
        run: Run = self._client.create_run("batch-scoring", name=name, params=params)
        return run.id

    def end_run(self, run_id: str, ok: bool, inputs: list[RunInput], error: str | None) -> None:
        if inputs:
            self._client.log_inputs(run_id, inputs)
        self._client.end_run(run_id, "finished" if ok else "failed", error=error)
