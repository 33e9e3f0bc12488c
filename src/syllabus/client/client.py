"""The :class:`Client` facade: one object through which every component is reached.

A client resolves settings (explicit arguments > ``SYLLABUS_*`` environment > workspace
``config.toml`` > defaults), picks a backend from the URI and opens it lazily. Without any
workspace, the first write creates one in the current folder and says so once through the
``syllabus`` logger (which Python prints on stderr when logging is not configured).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syllabus import __version__
from syllabus.client.code import CodeAPI
from syllabus.client.datasets import DatasetsAPI
from syllabus.client.deploy import DeployAPI
from syllabus.client.evaluation import EvaluationAPI
from syllabus.client.local import LocalBackend
from syllabus.client.maturity import MaturityAPI
from syllabus.client.monitoring import MonitoringAPI
from syllabus.client.pipelines import PipelinesAPI
from syllabus.client.registry import RegistryAPI
from syllabus.client.reproduce import ReproduceAPI
from syllabus.client.tracking import TrackingAPI
from syllabus.client.uris import Location, factory_for, resolve
from syllabus.client.workspace import init_workspace
from syllabus.config import Settings, find_workspace, load_settings
from syllabus.errors import ConfigError, SchemaOutdatedError, WorkspaceNotFoundError
from syllabus.types import ProgressCallback, null_progress

if TYPE_CHECKING:
    from syllabus.blobs.maintenance import GcReport
    from syllabus.blobs.store import BlobStore
    from syllabus.client.maintenance import DuReport, FsckReport
    from syllabus.meta import DbInfo, UpgradeResult

__all__ = ["Client", "GcResult", "Info"]

log = logging.getLogger("syllabus")
_announce_lock = threading.Lock()
_announced: set[Path] = set()


@dataclass(frozen=True)
class GcResult:
    """What ``store gc`` purged from the metadata (deleting runs only) and the blob store."""

    purged: dict[str, int]
    blobs: GcReport


@dataclass(frozen=True)
class Info:
    """What ``syllabus info`` shows."""

    version: str
    workspace: str | None
    database: DbInfo
    blobs_url: str
    blobs_backend: str
    blob_objects: int
    blob_stored_bytes: int
    blob_logical_bytes: int
    settings: dict[str, Any] = field(default_factory=dict)


def _shown(values: dict[str, Any], settings: Settings) -> dict[str, Any]:
    return {
        k: {"value": v, "source": settings.sources.get(k, "default")} for k, v in values.items()
    }


class Client(
    DatasetsAPI,
    TrackingAPI,
    CodeAPI,
    RegistryAPI,
    EvaluationAPI,
    DeployAPI,
    MonitoringAPI,
    ReproduceAPI,
    PipelinesAPI,
    MaturityAPI,
):
    """Entry point to a Syllabus store.

    ``uri`` is a workspace folder, a ``sqlite:///``/``postgresql://`` URL (or later an
    ``http(s)://`` server); ``blobs`` a folder or ``s3://bucket/prefix``. Both default to the
    nearest workspace found from ``cwd`` upwards.
    """

    def __init__(
        self,
        uri: str | Path | None = None,
        *,
        blobs: str | Path | None = None,
        cwd: Path | None = None,
        create: bool = True,
        **settings: object,
    ) -> None:
        self._cwd = (cwd or Path.cwd()).resolve()
        self._create = create
        self._overrides: dict[str, object] = {
            "uri": str(uri) if uri is not None else None,
            "blobs": str(blobs) if blobs is not None else None,
            **settings,
        }
        self.settings: Settings = load_settings(self._cwd, overrides=self._overrides)
        self._backend: LocalBackend | None = None
        self._lock = threading.Lock()

    # -- backend -----------------------------------------------------------------------

    @property
    def location(self) -> Location:
        return resolve(self.settings)

    def _open(self, *, write: bool) -> LocalBackend:
        if self._backend is not None:
            return self._backend
        with self._lock:
            if self._backend is None:
                try:
                    location = resolve(self.settings)
                except WorkspaceNotFoundError:
                    if not (write and self._create):
                        raise
                    self._create_default_workspace()
                    location = resolve(self.settings)
                factory = factory_for(location)
                if location.kind == "remote" and factory is None:
                    raise ConfigError(
                        f"{location.db_url} names a Syllabus server; the remote backend is not "
                        "available in this version"
                    )
                self._backend = (
                    factory(location, self.settings)
                    if factory
                    else LocalBackend(location, self.settings)
                )
            return self._backend

    def _create_default_workspace(self) -> None:
        ws = init_workspace(self._cwd, exist_ok=True)
        with _announce_lock:
            if ws not in _announced:
                _announced.add(ws)
                log.warning("syllabus: created a workspace in %s (none found here or above)", ws)
        self.settings = load_settings(self._cwd, workspace=ws, overrides=self._overrides)

    def open(self) -> str:
        """Open the database (creating its schema if empty) and the blob store now.

        Returns the schema revision. Raises SchemaOutdatedError for an older database.
        """
        from syllabus.meta import current_revision

        backend = self._open(write=True)
        revision = current_revision(backend.engine)
        backend.blobs.flush()
        assert revision is not None
        return revision

    @property
    def blobs(self) -> BlobStore:
        """The content-addressed blob store (created with the workspace on first use)."""
        return self._open(write=True).blobs

    def close(self) -> None:
        """Flush and release the database pool and blob store."""
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- workspace and database ----------------------------------------------------------

    def info(self) -> Info:
        """Workspace, backends and versions, schema revision, object counts and sizes."""
        from syllabus.meta import info as db_info

        backend = self._open(write=False)
        remote = getattr(backend, "workspace_info", None)
        if remote is not None:  # a server's workspace, as the server sees it
            shown = {"uri": self.settings.uri} if self.settings.uri else {}
            info: Info = remote()
            return replace(info, settings=_shown(shown, self.settings))
        try:
            engine = backend.engine  # creates the schema of a new, empty database
        except SchemaOutdatedError:
            engine = backend.raw_engine  # still describe it: the revision shows what to do
        database = db_info(engine)
        usage = backend.blobs.du()
        shown = {
            name: getattr(self.settings, name)
            for name in ("uri", "blobs", "s3_endpoint_url", "gc_grace", "transfer_jobs")
            if getattr(self.settings, name) is not None
        }
        return Info(
            version=__version__,
            workspace=str(self.settings.workspace) if self.settings.workspace else None,
            database=database,
            blobs_url=backend.blobs.url,
            blobs_backend=type(backend.blobs.backend).__name__,
            blob_objects=usage.total.count,
            blob_stored_bytes=usage.total.stored_bytes,
            blob_logical_bytes=usage.total.logical_bytes,
            settings=_shown(shown, self.settings),
        )

    def db_current(self) -> tuple[str | None, str]:
        """The database's schema revision (None when empty) and the head this code expects."""
        from syllabus.meta import current_revision, head_revision

        return current_revision(self._open(write=False).raw_engine), head_revision()

    def db_upgrade(self) -> UpgradeResult:
        """Migrate the database to this version's schema (SQLite is backed up first)."""
        from syllabus.meta import upgrade

        backend = self._open(write=True)
        result = upgrade(backend.raw_engine)
        backend.schema_changed()
        return result

    # -- store maintenance ---------------------------------------------------------------

    def fsck(self, *, progress: ProgressCallback = null_progress) -> FsckReport:
        """Re-hash every blob and check every database reference to a blob."""
        from syllabus.client import maintenance

        backend = self._open(write=False)
        return maintenance.fsck(backend.engine, backend.blobs, progress=progress)

    def gc(
        self,
        *,
        dry_run: bool = True,
        grace_seconds: float | None = None,
        timeout: float = 5.0,
        force: bool = False,
    ) -> GcResult:
        """Unreferenced blobs older than the grace period: listed, or deleted if not ``dry_run``.

        Without ``dry_run``, first purges what was soft-deleted longer than the grace period
        ago (runs, dataset versions) and retires archived model versions past their policy's
        retention, so the blobs only they referenced go too; their metadata rows go with
        them (model versions keep theirs and the audit log). Deleting waits up to
        ``timeout`` seconds for other open writers of the store and deletes nothing if they
        stay open. ``force`` skips that check: only for a caller who has stopped every other
        writer (S3 stores have no writers' lock yet and need it).
        """
        from syllabus.client import maintenance

        backend = self._open(write=False)
        grace = self.settings.gc_grace if grace_seconds is None else grace_seconds
        purged: dict[str, int] = {}

        def purge() -> None:  # called once gc holds the store's writers' lock
            purged["runs"] = self.purge_deleted_runs(grace)
            purged["dataset_versions"] = self.purge_deleted_datasets(grace)
            purged["model_versions"] = len(self.retire_expired_models())

        blobs = maintenance.gc(
            backend.engine,
            backend.blobs,
            grace_seconds=grace,
            dry_run=dry_run,
            timeout=timeout,
            force=force,
            purge=None if dry_run else purge,
        )
        return GcResult(purged=purged, blobs=blobs)

    def du(self) -> DuReport:
        """Space used by kind of object and by record type."""
        from syllabus.client import maintenance

        backend = self._open(write=False)
        return maintenance.du(backend.engine, backend.blobs)


def workspace_of(start: Path | None = None) -> Path | None:
    """The workspace a client started in ``start`` would use (no settings applied)."""
    return find_workspace(start)
