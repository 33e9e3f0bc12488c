"""The data-versioning part of :class:`~syllabus.client.Client` (a mixin), and
:class:`DataVersion`, the handle ``syllabus.data.get("churn@3")`` returns."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syllabus.errors import ConfigError, InvalidArgumentError
from syllabus.types import ProgressCallback, null_progress

if TYPE_CHECKING:
    from syllabus.blobs.reader import BlobReader
    from syllabus.client.local import LocalBackend
    from syllabus.config import Settings
    from syllabus.datasets import (
        AddResult,
        CheckoutReport,
        DatasetDiff,
        DatasetService,
        DatasetSummary,
        DatasetVersion,
        Remote,
        StatusReport,
        TableProfile,
        TransferResult,
    )
    from syllabus.tracking.models import RunInput

__all__ = ["DataVersion", "DatasetsAPI", "cache_dir"]


def cache_dir(settings: Settings) -> Path:
    """Where materialized versions and stat caches go: the workspace's ``cache/`` folder,
    else the user's cache folder (``$XDG_CACHE_HOME/syllabus``)."""
    if settings.workspace is not None:
        return settings.workspace / "cache"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "syllabus"


class DatasetsAPI:
    """Datasets, versions, working folders and remotes (mixed into ``Client``)."""

    if TYPE_CHECKING:
        settings: Settings

        def _open(self, *, write: bool) -> LocalBackend: ...

        def log_inputs(self, run_id: str, inputs: Sequence[RunInput]) -> None: ...

        def runs_with_input(self, kind: str, target_id: str) -> list[RunInput]: ...

    def _datasets(self, *, write: bool = False) -> DatasetService:
        from syllabus.datasets import DatasetService

        backend = self._open(write=write)
        return DatasetService(
            backend.datasets_store,
            backend.blobs,
            cache_dir=cache_dir(self.settings),
            s3_endpoint_url=self.settings.s3_endpoint_url,
            jobs=self.settings.transfer_jobs,
        )

    # -- versions ------------------------------------------------------------------------

    def add_dataset(
        self,
        name: str,
        path: str | Path,
        *,
        message: str = "",
        tags: Sequence[str] = (),
        profile: bool = True,
        progress: ProgressCallback = null_progress,
    ) -> AddResult:
        """A new version of dataset ``name`` from a file or folder (``created`` is False,
        and no version is made, when the content equals the latest version)."""
        return self._datasets(write=True).add(
            name, path, message=message, tags=tags, profile=profile, progress=progress
        )

    def get_dataset(self, ref: str) -> DatasetVersion:
        """The version ``ref`` names: ``churn``, ``churn@3``, ``churn@latest``, ``churn@gold``."""
        return self._datasets().resolve(ref)

    def dataset(self, ref: str) -> DataVersion:
        """A handle on a version with ``path()``, ``files()``, ``open()``, ``to_arrow()``..."""
        return DataVersion(self, self.get_dataset(ref))

    def list_datasets(self) -> list[DatasetSummary]:
        """Every dataset with its latest version."""
        return self._datasets().list_datasets()

    def list_dataset_versions(self, name: str) -> list[DatasetVersion]:
        """The live versions of ``name``, newest first."""
        return self._datasets().list_versions(name)

    def dataset_files(self, ref: str) -> list[tuple[str, int, str]]:
        """``(path, size, content id)`` of every file of a version, by path."""
        service = self._datasets()
        manifest = service.manifest(service.resolve(ref))
        return [(e.path, e.size, str(e.digest)) for e in manifest.values() if e.kind == "file"]

    def dataset_profiles(self, ref: str) -> dict[str, TableProfile]:
        """Tabular profiles of a version by path."""
        service = self._datasets()
        return service.profiles(service.resolve(ref))

    def tag_dataset(self, ref: str, tag: str) -> DatasetVersion:
        """Point ``tag`` at a version (``churn@gold`` then names it)."""
        return self._datasets(write=True).tag(ref, tag)

    def untag_dataset(self, name: str, tag: str) -> None:
        self._datasets(write=True).untag(name, tag)

    def remove_dataset(self, ref: str, *, all_versions: bool = False) -> list[DatasetVersion]:
        """Soft-delete a version (or all of them); ``store gc`` frees the space later."""
        return self._datasets(write=True).remove(ref, all_versions=all_versions)

    def purge_deleted_datasets(self, older_than_seconds: float = 0.0) -> int:
        """Drop versions deleted longer ago than this with their blob references."""
        return self._datasets(write=True).purge_deleted(older_than_seconds)

    def diff_datasets(self, ref_a: str, ref_b: str, *, key: Sequence[str] = ()) -> DatasetDiff:
        """Files, schemas, statistics (and with ``key`` rows) changed from a to b."""
        return self._datasets().diff(ref_a, ref_b, key=key)

    # -- lineage -------------------------------------------------------------------------

    def log_dataset_input(self, run_id: str, ref: str, *, role: str = "input") -> None:
        """Record that run ``run_id`` used the version ``ref`` names, as ``role``."""
        from syllabus.tracking.models import RunInput

        v = self.get_dataset(ref)
        self.log_inputs(run_id, [RunInput("dataset", v.id, name=v.ref, digest=v.tree, role=role)])

    def dataset_lineage(self, ref: str) -> list[RunInput]:
        """The runs that used the version ``ref`` names."""
        return self.runs_with_input("dataset", self.get_dataset(ref).id)

    # -- working folders -----------------------------------------------------------------

    def checkout_dataset(
        self,
        ref: str,
        folder: str | Path | None = None,
        *,
        force: bool = False,
        progress: ProgressCallback = null_progress,
    ) -> CheckoutReport:
        """Write a version into ``folder`` (default: where it was last used, else ./NAME)."""
        return self._datasets().checkout(ref, folder, force=force, progress=progress)

    def dataset_status(self, ref: str, folder: str | Path | None = None) -> StatusReport:
        """What differs between ``folder`` and a version."""
        return self._datasets().status(ref, folder)

    # -- remotes -------------------------------------------------------------------------

    def add_remote(self, name: str, url: str) -> Remote:
        """Name a blob store (folder or ``s3://bucket/prefix``) to push to and pull from."""
        return self._datasets(write=True).add_remote(name, url)

    def list_remotes(self) -> list[Remote]:
        return self._datasets().list_remotes()

    def remove_remote(self, name: str) -> None:
        self._datasets(write=True).remove_remote(name)

    def push_dataset(
        self, ref: str, remote: str | None = None, *, progress: ProgressCallback = null_progress
    ) -> TransferResult:
        """Copy a version (a bare name: all versions) and its metadata to a remote; only
        the records it lacks. Conflicting version numbers are reported, not overwritten."""
        return self._datasets().push(ref, remote, progress=progress)

    def remote_datasets(self, remote: str | None = None) -> list[DatasetSummary]:
        """The datasets published on a remote, with their latest version there."""
        return self._datasets().remote_datasets(remote)

    def pull_dataset(
        self, ref: str, remote: str | None = None, *, progress: ProgressCallback = null_progress
    ) -> TransferResult:
        """Copy a version (a bare name: all the remote has) and its metadata from a remote;
        only the records missing here. Conflicting version numbers are reported, not
        overwritten."""
        return self._datasets(write=True).pull(ref, remote, progress=progress)


class DataVersion:
    """One dataset version, with its files at hand.

    ``path()`` materializes the version once in the workspace cache (do not edit it; use
    ``checkout_dataset`` for a working copy); ``open()`` streams one file, verified.
    """

    def __init__(self, client: DatasetsAPI, version: DatasetVersion) -> None:
        self._client = client
        self.info = version

    def __repr__(self) -> str:
        return f"DataVersion({self.ref!r}, {self.info.file_count} files, {self.info.size} bytes)"

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def version(self) -> int:
        return self.info.version

    @property
    def ref(self) -> str:
        return self.info.ref

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def message(self) -> str:
        return self.info.message

    @property
    def tags(self) -> tuple[str, ...]:
        return self.info.tags

    def path(self, *, progress: ProgressCallback = null_progress) -> Path:
        """A local folder holding the version (made once, then reused)."""
        return self._client._datasets().path(self.info, progress=progress)

    def files(self) -> list[str]:
        """Paths of its files, sorted."""
        return [p for p, _, _ in self._client.dataset_files(self.ref)]

    def open(self, file: str | None = None) -> BlobReader:
        """A binary reader of one file (``file`` may be left out when there is only one)."""
        return self._client._datasets().open(self.info, file)

    def profile(self, file: str | None = None) -> TableProfile:
        """The tabular profile of one file (the only tabular one when ``file`` is None)."""
        profiles = self._client._datasets().profiles(self.info)
        if file is not None:
            if file not in profiles:
                raise InvalidArgumentError(f"{self.ref} has no profile for {file!r}")
            return profiles[file]
        if len(profiles) != 1:
            raise InvalidArgumentError(
                f"{self.ref} has {len(profiles)} profiled files; name one: "
                + ", ".join(sorted(profiles)[:5])
            )
        return next(iter(profiles.values()))

    def _tabular(self, file: str | None) -> tuple[list[Path], str]:
        from syllabus.datasets.profile import table_format

        service = self._client._datasets()
        names = [file] if file is not None else self.files()
        found = [(n, table_format(n)) for n in names]
        tabular = [(n, f) for n, f in found if f is not None]
        if not tabular:
            raise InvalidArgumentError(f"{self.ref} has no CSV, Parquet or JSON Lines file")
        formats = {f for _, f in tabular}
        if len(formats) > 1:
            raise InvalidArgumentError(
                f"{self.ref} mixes {', '.join(sorted(formats))} files; name one with file="
            )
        return [service.local_file(self.info, n) for n, _ in tabular], formats.pop()

    def to_arrow(self, file: str | None = None) -> Any:
        """A ``pyarrow.Table`` of one tabular file, or of all of them when they share a format."""
        import pyarrow.dataset as ds

        paths, fmt = self._tabular(file)
        fmt_name = "json" if fmt == "json" else fmt
        return ds.dataset([str(p) for p in paths], format=fmt_name).to_table()

    def to_pandas(self, file: str | None = None) -> Any:
        """A ``pandas.DataFrame`` (needs pandas: ``pip install 'syllabus[pandas]'``)."""
        try:
            import pandas  # noqa: F401
        except ImportError:
            raise ConfigError(
                "to_pandas needs pandas; install it with pip install 'syllabus[pandas]'"
            ) from None
        return self.to_arrow(file).to_pandas()
