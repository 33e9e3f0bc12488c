"""The code store on SQLite and PostgreSQL: the only module with the code component's SQL."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from syllabus._utils.ids import MIN_PREFIX, is_id, is_id_prefix, new_id
from syllabus.code.models import NotebookCheckpoint
from syllabus.code.store import NotebookSummary, RunLink, StoredRecord
from syllabus.errors import ConflictError, InvalidArgumentError, NotFoundError
from syllabus.meta import BlobRef, BlobRefs, transaction
from syllabus.meta.tables.code import (
    code_snapshots,
    environments,
    notebook_checkpoints,
    notebooks,
    run_code,
)

__all__ = ["SqlCodeStore"]

_RETRIES: Final = 20
_C = notebook_checkpoints


def _now() -> int:
    return time.time_ns() // 1_000_000


def _insert_ignore(conn: Connection, table: sa.Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def _by_id(column: Any, ref: str, what: str) -> Any:
    """A WHERE clause for ``ref`` as a whole id or a unique prefix."""
    ref = ref.strip().lower()
    if is_id(ref):
        return column == ref
    if not is_id_prefix(ref):
        raise NotFoundError(
            f"{what} {ref!r} not found (ids are hex; give at least {MIN_PREFIX} characters)"
        )
    return sa.and_(column >= ref, column < ref + "g")


def _one(conn: Connection, stmt: sa.Select[Any], ref: str, what: str, hint: str) -> Any:
    rows = conn.execute(stmt.limit(2)).all()
    if not rows:
        raise NotFoundError(f"{what} {ref!r} not found; {hint}")
    if len(rows) > 1:
        raise InvalidArgumentError(f"{what} id prefix {ref!r} is ambiguous; give more characters")
    return rows[0]


_CHECKPOINT_COLS = (
    _C.c.id,
    _C.c.notebook_id,
    notebooks.c.path,
    _C.c.version,
    _C.c.digest,
    _C.c.cell_count,
    _C.c.outputs,
    _C.c.message,
    _C.c.author,
    _C.c.created_at,
    _C.c.run_id,
)


def _checkpoint(row: Any) -> NotebookCheckpoint:
    return NotebookCheckpoint(
        id=row.id,
        notebook_id=row.notebook_id,
        path=row.path,
        version=int(row.version),
        digest=row.digest,
        cell_count=int(row.cell_count),
        outputs=bool(row.outputs),
        message=row.message,
        author=row.author,
        created_at=int(row.created_at),
        run_id=row.run_id,
    )


def _checkpoints() -> sa.Select[Any]:
    return sa.select(*_CHECKPOINT_COLS).join(notebooks, notebooks.c.id == _C.c.notebook_id)


class SqlCodeStore:
    """:class:`~syllabus.code.store.CodeStore` over a SQLAlchemy engine at schema head."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._refs = BlobRefs(engine)

    # -- snapshots and environments ------------------------------------------------------

    def _put(
        self,
        table: sa.Table,
        values: dict[str, Any],
        refs: Sequence[tuple[str, str, str]],
    ) -> StoredRecord:
        """Insert a content-addressed row unless its digest exists; ``refs`` are
        ``(digest, kind, owner_type)`` declared for the new row's id."""
        digest = values["digest"]
        with transaction(self._engine) as conn:
            row = conn.execute(
                sa.select(table.c.id, table.c.created_at).where(table.c.digest == digest)
            ).first()
            if row is None:
                row_id, now = new_id(), _now()
                result = conn.execute(
                    _insert_ignore(conn, table).values(id=row_id, created_at=now, **values)
                )
                if result.rowcount:
                    self._refs.add((BlobRef(d, k, o, row_id) for d, k, o in refs), conn)
                    return StoredRecord(row_id, digest, now)
                row = conn.execute(
                    sa.select(table.c.id, table.c.created_at).where(table.c.digest == digest)
                ).one()
            return StoredRecord(row.id, digest, int(row.created_at))

    def put_snapshot(
        self,
        *,
        digest: str,
        kind: str,
        commit: str | None,
        branch: str | None,
        remote: str | None,
        dirty: bool,
        blobs: Sequence[str],
    ) -> StoredRecord:
        values = {
            "digest": digest,
            "kind": kind,
            "git_commit": commit,
            "git_branch": branch[:255] if branch else None,
            "git_remote": remote,
            "dirty": dirty,
        }
        refs = [(d, "code", "code_snapshot") for d in dict.fromkeys([digest, *blobs])]
        return self._put(code_snapshots, values, refs)

    def _get(self, table: sa.Table, ref: str, what: str) -> StoredRecord:
        stmt = sa.select(table.c.id, table.c.digest, table.c.created_at).where(
            _by_id(table.c.id, ref, what)
        )
        with transaction(self._engine, readonly=True) as conn:
            row = _one(conn, stmt, ref, what, "check the id")
        return StoredRecord(row.id, row.digest, int(row.created_at))

    def get_snapshot(self, ref: str) -> StoredRecord:
        return self._get(code_snapshots, ref, "code snapshot")

    def put_environment(
        self, *, digest: str, python: str, platform: str, package_count: int
    ) -> StoredRecord:
        values = {
            "digest": digest,
            "python": python[:64],
            "platform": platform[:255],
            "package_count": package_count,
        }
        return self._put(environments, values, [(digest, "environment", "environment")])

    def get_environment(self, ref: str) -> StoredRecord:
        return self._get(environments, ref, "environment")

    # -- runs ----------------------------------------------------------------------------

    def link_run(
        self,
        run_id: str,
        *,
        snapshot_id: str,
        environment_id: str | None,
        checkpoint_id: str | None,
        root: str | None,
        entry_point: str | None,
        argv: Sequence[str],
    ) -> RunLink:
        now = _now()
        values = {
            "snapshot_id": snapshot_id,
            "environment_id": environment_id,
            "checkpoint_id": checkpoint_id,
            "root": root,
            "entry_point": entry_point,
            "argv": json.dumps(list(argv)),
            "created_at": now,
        }
        named = (
            (code_snapshots, snapshot_id, "code snapshot"),
            (environments, environment_id, "environment"),
            (notebook_checkpoints, checkpoint_id, "notebook checkpoint"),
        )
        with transaction(self._engine) as conn:
            for table, given, what in named:
                if (
                    given is not None
                    and not conn.execute(sa.select(table.c.id).where(table.c.id == given)).first()
                ):
                    raise NotFoundError(f"{what} {given!r} not found (a run links to it)")
            conn.execute(sa.delete(run_code).where(run_code.c.run_id == run_id))
            conn.execute(sa.insert(run_code).values(run_id=run_id, **values))
        return RunLink(
            run_id, snapshot_id, environment_id, checkpoint_id, root, entry_point, tuple(argv), now
        )

    def get_run_link(self, run_ref: str) -> RunLink:
        stmt = sa.select(run_code).where(_by_id(run_code.c.run_id, run_ref, "run"))
        with transaction(self._engine, readonly=True) as conn:
            row = _one(
                conn,
                stmt,
                run_ref,
                "code of run",
                "the run captured no code (capture_code was off, or it ran elsewhere)",
            )
        return RunLink(
            row.run_id,
            row.snapshot_id,
            row.environment_id,
            row.checkpoint_id,
            row.root,
            row.entry_point,
            tuple(json.loads(row.argv or "[]")),
            int(row.created_at),
        )

    def runs_with_snapshot(self, snapshot_id: str) -> list[str]:
        stmt = (
            sa.select(run_code.c.run_id)
            .where(run_code.c.snapshot_id == snapshot_id)
            .order_by(run_code.c.run_id)
        )
        with transaction(self._engine, readonly=True) as conn:
            return [str(r) for r in conn.scalars(stmt)]

    # -- notebooks -----------------------------------------------------------------------

    def add_checkpoint(
        self,
        path: str,
        *,
        digest: str,
        cell_count: int,
        outputs: bool,
        message: str,
        author: str,
        run_id: str | None,
    ) -> tuple[NotebookCheckpoint, bool]:
        for attempt in range(_RETRIES):
            try:
                with transaction(self._engine) as conn:
                    return self._add_checkpoint(
                        conn,
                        path,
                        digest=digest,
                        cell_count=cell_count,
                        outputs=outputs,
                        message=message,
                        author=author,
                        run_id=run_id,
                    )
            except IntegrityError:
                # Another writer took the next number (or created the notebook) first.
                time.sleep(random.uniform(0.001, 0.01) * (attempt + 1))  # noqa: S311 - jitter
        raise ConflictError(
            f"could not checkpoint notebook {path!r}: concurrent writers kept taking the next "
            "number; try again"
        )

    def _add_checkpoint(
        self,
        conn: Connection,
        path: str,
        *,
        digest: str,
        cell_count: int,
        outputs: bool,
        message: str,
        author: str,
        run_id: str | None,
    ) -> tuple[NotebookCheckpoint, bool]:
        nb_id = conn.execute(sa.select(notebooks.c.id).where(notebooks.c.path == path)).scalar()
        if nb_id is None:
            nb_id = new_id()
            conn.execute(sa.insert(notebooks).values(id=nb_id, path=path, created_at=_now()))
        latest = conn.execute(
            _checkpoints().where(_C.c.notebook_id == nb_id).order_by(_C.c.version.desc()).limit(1)
        ).first()
        if latest is not None and latest.digest == digest and bool(latest.outputs) == outputs:
            return _checkpoint(latest), False
        version = 1 if latest is None else int(latest.version) + 1
        checkpoint = NotebookCheckpoint(
            id=new_id(),
            notebook_id=nb_id,
            path=path,
            version=version,
            digest=digest,
            cell_count=cell_count,
            outputs=outputs,
            message=message,
            author=author[:128],
            created_at=_now(),
            run_id=run_id,
        )
        conn.execute(
            sa.insert(_C).values(
                id=checkpoint.id,
                notebook_id=nb_id,
                version=version,
                digest=digest,
                cell_count=cell_count,
                outputs=outputs,
                message=message,
                author=checkpoint.author,
                run_id=run_id,
                created_at=checkpoint.created_at,
            )
        )
        self._refs.add([BlobRef(digest, "notebook", "notebook_checkpoint", checkpoint.id)], conn)
        return checkpoint, True

    def get_checkpoint(self, path: str, version: int | None = None) -> NotebookCheckpoint:
        stmt = _checkpoints().where(notebooks.c.path == path)
        stmt = (
            stmt.order_by(_C.c.version.desc())
            if version is None
            else stmt.where(_C.c.version == version)
        )
        with transaction(self._engine, readonly=True) as conn:
            row = conn.execute(stmt.limit(1)).first()
            if row is not None:
                return _checkpoint(row)
            latest = conn.execute(
                sa.select(sa.func.max(_C.c.version))
                .join(notebooks, notebooks.c.id == _C.c.notebook_id)
                .where(notebooks.c.path == path)
            ).scalar()
        if latest is None:
            raise NotFoundError(
                f"notebook {path!r} has no checkpoints; run `syllabus notebook checkpoint {path}`"
            )
        raise NotFoundError(f"notebook {path!r} has no checkpoint {version} (latest is {latest})")

    def get_checkpoint_by_id(self, checkpoint_id: str) -> NotebookCheckpoint:
        stmt = _checkpoints().where(_by_id(_C.c.id, checkpoint_id, "notebook checkpoint"))
        with transaction(self._engine, readonly=True) as conn:
            row = _one(conn, stmt, checkpoint_id, "notebook checkpoint", "check the id")
        return _checkpoint(row)

    def list_checkpoints(self, path: str) -> list[NotebookCheckpoint]:
        stmt = _checkpoints().where(notebooks.c.path == path).order_by(_C.c.version.desc())
        with transaction(self._engine, readonly=True) as conn:
            rows = [_checkpoint(r) for r in conn.execute(stmt)]
        if not rows:
            raise NotFoundError(
                f"notebook {path!r} has no checkpoints; run `syllabus notebook checkpoint {path}`"
            )
        return rows

    def list_notebooks(self) -> list[NotebookSummary]:
        stmt = (
            sa.select(
                notebooks.c.path,
                sa.func.count(_C.c.id).label("n"),
                sa.func.max(_C.c.version).label("latest"),
                sa.func.max(_C.c.created_at).label("updated"),
            )
            .join(_C, _C.c.notebook_id == notebooks.c.id)
            .group_by(notebooks.c.path)
            .order_by(notebooks.c.path)
        )
        with transaction(self._engine, readonly=True) as conn:
            return [
                NotebookSummary(r.path, int(r.n), int(r.latest), int(r.updated))
                for r in conn.execute(stmt)
            ]
