"""The SQL implementation of :class:`~syllabus.datasets.store.DatasetStore` (SQLite and
PostgreSQL). The only module with datasets SQL; rows never leave it."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from syllabus._utils.ids import new_id
from syllabus.datasets.models import (
    Dataset,
    DatasetSummary,
    DatasetTag,
    DatasetVersion,
    Remote,
    VersionSpec,
)
from syllabus.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
)
from syllabus.meta import BlobRef, BlobRefs, transaction
from syllabus.meta.tables.datasets import dataset_tags, dataset_versions, datasets, remotes

__all__ = ["BLOB_KIND", "OWNER_TYPE", "SqlDatasetStore"]

BLOB_KIND: Final = "dataset"
OWNER_TYPE: Final = "dataset_version"
_RETRIES: Final = 20
_MAX_VERSION: Final = 2**31 - 1  # the version column is a 32-bit integer on PostgreSQL
_MAX_INT64: Final = 2**63 - 1
_HEX64: Final = re.compile(r"[0-9a-f]{64}")

_V = dataset_versions
_VERSION_COLUMNS: Final = (
    _V.c.id,
    _V.c.dataset_id,
    datasets.c.name,
    _V.c.version,
    _V.c.tree,
    _V.c.kind,
    _V.c.file_count,
    _V.c.size,
    _V.c.message,
    _V.c.author,
    _V.c.created_at,
    _V.c.profiles,
    _V.c.empty_dirs,
    _V.c.source,
    _V.c.deleted_at,
)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _check_int(value: object, what: str, low: int = 0, high: int = _MAX_INT64) -> int:
    """``value`` if it is an integer in ``low..high``, else a one-line error (the database
    would refuse it with an overflow rather than say what is wrong)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgumentError(f"{what} must be an integer from {low} to {high}, not {value!r}")
    return value


def _check_text(value: object, what: str, limit: int | None, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{what} must be text, not {type(value).__name__}")
    if limit is not None and len(value) > limit:
        raise InvalidArgumentError(f"{what} must be at most {limit} characters")


def _check_imported(v: DatasetVersion) -> None:
    """What an imported version must satisfy before its row is written: the database
    would otherwise fail on it with an overflow or a truncation rather than say why."""
    label = f"imported version {v.version!r} (id {v.id!r})"
    if not isinstance(v.id, str) or not 0 < len(v.id) <= 32:
        raise InvalidArgumentError(f"{label}: id must be 1 to 32 characters")
    _check_int(v.version, f"{label}: version", 1, _MAX_VERSION)
    _check_int(v.file_count, f"{label}: file_count")
    _check_int(v.size, f"{label}: size")
    _check_int(v.created_at, f"{label}: created_at")
    for field, digest in (("tree", v.tree), ("profiles", v.profiles)):
        if (digest is not None or field == "tree") and (
            not isinstance(digest, str) or not _HEX64.fullmatch(digest)
        ):
            raise InvalidArgumentError(f"{label}: {field} must be a 64-character hex digest")
    if v.kind not in ("file", "folder"):
        raise InvalidArgumentError(f"{label}: kind must be 'file' or 'folder', not {v.kind!r}")
    _check_text(v.author, f"{label}: author", 128)
    _check_text(v.message, f"{label}: message", None)
    _check_text(v.source, f"{label}: source", None, optional=True)
    if not all(isinstance(d, str) for d in v.empty_dirs):
        raise InvalidArgumentError(f"{label}: empty_dirs must be folder paths")


def _version_select() -> sa.Select[Any]:
    return sa.select(*_VERSION_COLUMNS).join(datasets, datasets.c.id == _V.c.dataset_id)


def _to_version(row: sa.Row[Any], tags: tuple[str, ...] = ()) -> DatasetVersion:
    m = row._mapping
    return DatasetVersion(
        id=m["id"],
        dataset_id=m["dataset_id"],
        name=m["name"],
        version=int(m["version"]),
        tree=m["tree"],
        kind=m["kind"],
        file_count=int(m["file_count"]),
        size=int(m["size"]),
        message=m["message"],
        author=m["author"],
        created_at=int(m["created_at"]),
        profiles=m["profiles"],
        empty_dirs=tuple(json.loads(m["empty_dirs"])) if m["empty_dirs"] else (),
        source=m["source"],
        tags=tags,
        deleted_at=None if m["deleted_at"] is None else int(m["deleted_at"]),
    )


class SqlDatasetStore:
    """Datasets metadata in the Syllabus database (schema at head)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._refs = BlobRefs(engine)

    # -- reading -------------------------------------------------------------------------

    def _versions(self, conn: Connection, stmt: sa.Select[Any]) -> list[DatasetVersion]:
        rows = conn.execute(stmt).all()
        if not rows:
            return []
        ids = [r._mapping["id"] for r in rows]
        tags: dict[str, list[str]] = {}
        for start in range(0, len(ids), 500):
            q = (
                sa.select(dataset_tags.c.version_id, dataset_tags.c.tag)
                .where(dataset_tags.c.version_id.in_(ids[start : start + 500]))
                .order_by(dataset_tags.c.tag)
            )
            for version_id, tag in conn.execute(q):
                tags.setdefault(version_id, []).append(tag)
        return [_to_version(r, tuple(tags.get(r._mapping["id"], ()))) for r in rows]

    def _one(self, stmt: sa.Select[Any]) -> DatasetVersion | None:
        with transaction(self._engine, readonly=True) as conn:
            found = self._versions(conn, stmt.limit(1))
        return found[0] if found else None

    def get_dataset(self, name: str) -> Dataset | None:
        with transaction(self._engine, readonly=True) as conn:
            row = conn.execute(sa.select(datasets).where(datasets.c.name == name)).first()
        return None if row is None else Dataset(row.id, row.name, int(row.created_at))

    def list_datasets(self) -> list[DatasetSummary]:
        live = _V.c.deleted_at.is_(None)
        counts = (
            sa.select(
                _V.c.dataset_id,
                sa.func.count().label("versions"),
                sa.func.max(_V.c.version).label("latest"),
            )
            .where(live)
            .group_by(_V.c.dataset_id)
            .subquery()
        )
        stmt = (
            sa.select(
                datasets.c.name,
                counts.c.versions,
                counts.c.latest,
                _V.c.size,
                _V.c.file_count,
                _V.c.created_at,
            )
            .join(counts, counts.c.dataset_id == datasets.c.id)
            .join(
                _V,
                sa.and_(_V.c.dataset_id == datasets.c.id, _V.c.version == counts.c.latest),
            )
            .order_by(datasets.c.name)
        )
        with transaction(self._engine, readonly=True) as conn:
            return [
                DatasetSummary(
                    r.name,
                    int(r.versions),
                    int(r.latest),
                    int(r.size),
                    int(r.file_count),
                    int(r.created_at),
                )
                for r in conn.execute(stmt)
            ]

    def get_version(
        self, name: str, version: int, *, include_deleted: bool = False
    ) -> DatasetVersion | None:
        if isinstance(version, bool) or not isinstance(version, int):
            raise InvalidArgumentError(f"a version number must be an integer, not {version!r}")
        if not 1 <= version <= _MAX_VERSION:
            return None  # no such number can exist
        stmt = _version_select().where(datasets.c.name == name, _V.c.version == version)
        if not include_deleted:
            stmt = stmt.where(_V.c.deleted_at.is_(None))
        return self._one(stmt)

    def latest_version(self, name: str) -> DatasetVersion | None:
        stmt = (
            _version_select()
            .where(datasets.c.name == name, _V.c.deleted_at.is_(None))
            .order_by(_V.c.version.desc())
        )
        return self._one(stmt)

    def latest_number(self, name: str) -> int | None:
        stmt = (
            sa.select(sa.func.max(_V.c.version))
            .join(datasets, datasets.c.id == _V.c.dataset_id)
            .where(datasets.c.name == name, _V.c.deleted_at.is_(None))
        )
        with transaction(self._engine, readonly=True) as conn:
            value = conn.execute(stmt).scalar()
        return None if value is None else int(value)

    def version_for_tag(self, name: str, tag: str) -> DatasetVersion | None:
        stmt = (
            _version_select()
            .join(dataset_tags, dataset_tags.c.version_id == _V.c.id)
            .where(datasets.c.name == name, dataset_tags.c.tag == tag, _V.c.deleted_at.is_(None))
        )
        return self._one(stmt)

    def list_versions(self, name: str, *, include_deleted: bool = False) -> list[DatasetVersion]:
        stmt = _version_select().where(datasets.c.name == name).order_by(_V.c.version.desc())
        if not include_deleted:
            stmt = stmt.where(_V.c.deleted_at.is_(None))
        with transaction(self._engine, readonly=True) as conn:
            return self._versions(conn, stmt)

    # -- writing -------------------------------------------------------------------------

    def create_version(self, name: str, spec: VersionSpec) -> tuple[DatasetVersion, bool]:
        _check_text(name, "a dataset name", 128)
        _check_int(spec.file_count, "a version's file_count")
        _check_int(spec.size, "a version's size")
        for field, digest in (("tree", spec.tree), ("profiles", spec.profiles)):
            if (digest is not None or field == "tree") and (
                not isinstance(digest, str) or not _HEX64.fullmatch(digest)
            ):
                raise InvalidArgumentError(f"a version's {field} must be a 64-character hex digest")
        _check_text(spec.author, "a version's author", 128)
        for attempt in range(_RETRIES):
            try:
                with transaction(self._engine) as conn:
                    return self._create_version(conn, name, spec)
            except IntegrityError:
                # Another writer took the number (or created the dataset) first: try again.
                time.sleep(random.uniform(0.001, 0.01) * (attempt + 1))  # noqa: S311 - jitter
        raise ConflictError(
            f"could not add a version of dataset {name!r}: {_RETRIES} concurrent writers "
            "kept taking the next number; try again"
        )

    def _create_version(
        self, conn: Connection, name: str, spec: VersionSpec
    ) -> tuple[DatasetVersion, bool]:
        now = _now_ms()
        dataset_id = conn.execute(sa.select(datasets.c.id).where(datasets.c.name == name)).scalar()
        if dataset_id is None:
            dataset_id = new_id()
            conn.execute(sa.insert(datasets).values(id=dataset_id, name=name, created_at=now))
        latest = self._versions(
            conn,
            _version_select()
            .where(_V.c.dataset_id == dataset_id, _V.c.deleted_at.is_(None))
            .order_by(_V.c.version.desc())
            .limit(1),
        )
        if latest and latest[0].tree == spec.tree and latest[0].empty_dirs == spec.empty_dirs:
            return latest[0], False
        top = conn.execute(
            sa.select(sa.func.max(_V.c.version)).where(_V.c.dataset_id == dataset_id)
        ).scalar()
        number = 1 if top is None else int(top) + 1
        version_id = new_id()
        conn.execute(
            sa.insert(_V).values(
                id=version_id,
                dataset_id=dataset_id,
                version=number,
                tree=spec.tree,
                profiles=spec.profiles,
                kind=spec.kind,
                file_count=spec.file_count,
                size=spec.size,
                empty_dirs=json.dumps(list(spec.empty_dirs)) if spec.empty_dirs else None,
                source=spec.source,
                message=spec.message,
                author=spec.author,
                created_at=now,
            )
        )
        digests = [spec.tree] + ([spec.profiles] if spec.profiles else [])
        self._refs.add((BlobRef(d, BLOB_KIND, OWNER_TYPE, version_id) for d in digests), conn)
        version = DatasetVersion(
            id=version_id,
            dataset_id=dataset_id,
            name=name,
            version=number,
            tree=spec.tree,
            kind=spec.kind,
            file_count=spec.file_count,
            size=spec.size,
            message=spec.message,
            author=spec.author,
            created_at=now,
            profiles=spec.profiles,
            empty_dirs=spec.empty_dirs,
            source=spec.source,
        )
        return version, True

    def set_tag(self, version_id: str, tag: str, *, at_ms: int | None = None) -> None:
        _check_text(tag, "a tag", 64)
        if at_ms is not None:
            _check_int(at_ms, "the tag time (Unix milliseconds)")
        with transaction(self._engine) as conn:
            dataset_id = conn.execute(
                sa.select(_V.c.dataset_id).where(_V.c.id == version_id, _V.c.deleted_at.is_(None))
            ).scalar()
            if dataset_id is None:
                raise NotFoundError(f"no dataset version with id {version_id!r} to tag {tag!r}")
            conn.execute(
                sa.delete(dataset_tags).where(
                    dataset_tags.c.dataset_id == dataset_id, dataset_tags.c.tag == tag
                )
            )
            conn.execute(
                sa.insert(dataset_tags).values(
                    dataset_id=dataset_id,
                    tag=tag,
                    version_id=version_id,
                    created_at=_now_ms() if at_ms is None else at_ms,
                )
            )

    def list_tags(self, name: str) -> list[DatasetTag]:
        stmt = (
            sa.select(dataset_tags.c.tag, _V.c.id, _V.c.version, dataset_tags.c.created_at)
            .join(_V, _V.c.id == dataset_tags.c.version_id)
            .join(datasets, datasets.c.id == _V.c.dataset_id)
            .where(datasets.c.name == name, _V.c.deleted_at.is_(None))
            .order_by(dataset_tags.c.tag)
        )
        with transaction(self._engine, readonly=True) as conn:
            return [
                DatasetTag(r.tag, r.id, int(r.version), int(r.created_at))
                for r in conn.execute(stmt)
            ]

    def import_versions(
        self, name: str, versions: Sequence[DatasetVersion]
    ) -> tuple[list[DatasetVersion], list[DatasetVersion]]:
        if not versions:
            return [], []
        _check_text(name, "a dataset name", 128)
        for v in versions:
            _check_imported(v)
        for attempt in range(_RETRIES):
            try:
                with transaction(self._engine) as conn:
                    return self._import(conn, name, versions)
            except IntegrityError:
                time.sleep(random.uniform(0.001, 0.01) * (attempt + 1))  # noqa: S311 - jitter
        raise ConflictError(
            f"could not import versions of dataset {name!r}: concurrent writers kept "
            "taking their numbers; try again"
        )

    def _import(
        self, conn: Connection, name: str, versions: Sequence[DatasetVersion]
    ) -> tuple[list[DatasetVersion], list[DatasetVersion]]:
        dataset_id = conn.execute(sa.select(datasets.c.id).where(datasets.c.name == name)).scalar()
        if dataset_id is None:
            dataset_id = new_id()
            conn.execute(sa.insert(datasets).values(id=dataset_id, name=name, created_at=_now_ms()))
        rows = conn.execute(
            sa.select(_V.c.id, _V.c.version).where(_V.c.dataset_id == dataset_id)
        ).all()
        ids = {r.id for r in rows}
        numbers = {int(r.version) for r in rows}
        elsewhere: set[str] = set()  # ids of versions of another dataset (never the same)
        incoming = [v.id for v in versions]
        for batch in _batches(incoming, 500):
            elsewhere.update(
                conn.execute(
                    sa.select(_V.c.id).where(_V.c.id.in_(batch), _V.c.dataset_id != dataset_id)
                ).scalars()
            )
        imported: list[DatasetVersion] = []
        conflicting: list[DatasetVersion] = []
        for v in versions:
            if v.id in ids:
                continue
            if v.version in numbers or v.id in elsewhere:
                conflicting.append(v)
                continue
            conn.execute(
                sa.insert(_V).values(
                    id=v.id,
                    dataset_id=dataset_id,
                    version=v.version,
                    tree=v.tree,
                    profiles=v.profiles,
                    kind=v.kind,
                    file_count=v.file_count,
                    size=v.size,
                    empty_dirs=json.dumps(list(v.empty_dirs)) if v.empty_dirs else None,
                    source=v.source,
                    message=v.message,
                    author=v.author,
                    created_at=v.created_at,
                )
            )
            digests = [v.tree] + ([v.profiles] if v.profiles else [])
            self._refs.add((BlobRef(d, BLOB_KIND, OWNER_TYPE, v.id) for d in digests), conn)
            ids.add(v.id)
            numbers.add(v.version)
            imported.append(DatasetVersion(
                v.id, dataset_id, name, v.version, v.tree, v.kind, v.file_count, v.size,
                v.message, v.author, v.created_at, v.profiles, v.empty_dirs, v.source,
            ))  # fmt: skip
        return imported, conflicting

    def remove_tag(self, name: str, tag: str) -> bool:
        ids = sa.select(datasets.c.id).where(datasets.c.name == name).scalar_subquery()
        with transaction(self._engine) as conn:
            result = conn.execute(
                sa.delete(dataset_tags).where(
                    dataset_tags.c.dataset_id == ids, dataset_tags.c.tag == tag
                )
            )
        return bool(result.rowcount)

    def soft_delete(self, version_ids: Sequence[str], at_ms: int) -> int:
        if not version_ids:
            return 0
        _check_int(at_ms, "the deletion time (Unix milliseconds)")
        with transaction(self._engine) as conn:
            conn.execute(sa.delete(dataset_tags).where(dataset_tags.c.version_id.in_(version_ids)))
            result = conn.execute(
                sa.update(_V)
                .where(_V.c.id.in_(version_ids), _V.c.deleted_at.is_(None))
                .values(deleted_at=at_ms)
            )
        return int(result.rowcount)

    def purge_deleted(self, before_ms: int) -> int:
        _check_int(before_ms, "the purge cut-off (Unix milliseconds)", -_MAX_INT64 - 1)
        with transaction(self._engine) as conn:
            ids = list(
                conn.execute(
                    sa.select(_V.c.id).where(
                        _V.c.deleted_at.is_not(None), _V.c.deleted_at <= before_ms
                    )
                ).scalars()
            )
            for batch in _batches(ids, 500):
                for version_id in batch:
                    self._refs.remove_owner(OWNER_TYPE, version_id, conn)
                conn.execute(sa.delete(dataset_tags).where(dataset_tags.c.version_id.in_(batch)))
                conn.execute(sa.delete(_V).where(_V.c.id.in_(batch)))
            if ids:
                orphans = sa.select(_V.c.id).where(_V.c.dataset_id == datasets.c.id).exists()
                conn.execute(sa.delete(datasets).where(~orphans))
        return len(ids)

    # -- remotes -------------------------------------------------------------------------

    def add_remote(self, name: str, url: str) -> Remote:
        now = _now_ms()
        try:
            with transaction(self._engine) as conn:
                conn.execute(sa.insert(remotes).values(name=name, url=url, created_at=now))
        except IntegrityError:
            raise AlreadyExistsError(
                f"remote {name!r} already exists; remove it first (syllabus remote remove {name})"
            ) from None
        return Remote(name, url, now)

    def list_remotes(self) -> list[Remote]:
        with transaction(self._engine, readonly=True) as conn:
            rows = conn.execute(sa.select(remotes).order_by(remotes.c.name)).all()
        return [Remote(r.name, r.url, int(r.created_at)) for r in rows]

    def remove_remote(self, name: str) -> bool:
        with transaction(self._engine) as conn:
            result = conn.execute(sa.delete(remotes).where(remotes.c.name == name))
        return bool(result.rowcount)


def _batches(items: list[str], n: int) -> Iterable[list[str]]:
    for start in range(0, len(items), n):
        yield items[start : start + n]
