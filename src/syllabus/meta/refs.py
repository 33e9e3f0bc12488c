"""Blob references: which metadata rows point at which blob digests.

Every component that stores bytes declares the digests its rows use through
:class:`BlobRefs` in the same transaction as the rows themselves (pass ``conn``).
``store gc`` keeps every digest listed here; ``store fsck`` checks each one exists;
``store du`` summarises them by kind.
"""

from __future__ import annotations

import re
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any, Final, TypeAlias

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite

from syllabus.errors import InvalidArgumentError
from syllabus.meta.schema import blob_refs
from syllabus.meta.tx import transaction

__all__ = ["BlobRef", "BlobRefs"]

_DIGEST = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_BATCH: Final = 1000
_Cols: TypeAlias = tuple[Any, ...]
_STREAM_BATCH: Final = 10_000


@dataclass(frozen=True, slots=True)
class BlobRef:
    """``owner_type``/``owner_id`` (e.g. ``"dataset_version"``, an id) references ``digest``.

    ``kind`` says what the bytes are for (``"dataset"``, ``"artifact"``, ``"model"``,
    ``"code"``, ``"notebook"``, ...) and groups ``store du``.
    """

    digest: str
    kind: str
    owner_type: str
    owner_id: str

    def __post_init__(self) -> None:
        if not isinstance(self.digest, str) or not _DIGEST.fullmatch(self.digest):
            raise InvalidArgumentError(
                f"invalid blob digest {self.digest!r} (expected 64 lowercase hex characters)"
            )
        for field in ("kind", "owner_type"):
            value = getattr(self, field)
            if not isinstance(value, str) or not _NAME.fullmatch(value):
                raise InvalidArgumentError(
                    f"invalid blob reference {field} {value!r} (expected a lowercase name of "
                    "at most 32 letters, digits and underscores)"
                )
        if not isinstance(self.owner_id, str) or not 0 < len(self.owner_id) <= 64:
            raise InvalidArgumentError(
                f"invalid blob reference owner_id {self.owner_id!r} (expected 1 to 64 characters)"
            )


def _insert_ignoring_duplicates(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(blob_refs).on_conflict_do_nothing()
    return sqlite.insert(blob_refs).on_conflict_do_nothing()


class BlobRefs:
    """The ``blob_refs`` table. Methods taking ``conn`` join the caller's transaction."""

    def __init__(self, engine: Engine) -> None:
        """Work on ``engine``'s database (its schema must be at head)."""
        self._engine = engine

    def add(self, refs: Iterable[BlobRef], conn: Connection | None = None) -> None:
        """Record ``refs`` in bulk; references already recorded are left as they are."""
        if conn is None:
            with transaction(self._engine) as own:
                self.add(refs, own)
            return
        stmt = _insert_ignoring_duplicates(conn)
        it = iter(refs)
        while batch := list(islice(it, _BATCH)):
            now = time.time_ns() // 1_000_000
            conn.execute(
                stmt,
                [
                    {
                        "digest": r.digest,
                        "kind": r.kind,
                        "owner_type": r.owner_type,
                        "owner_id": r.owner_id,
                        "created_at": now,
                    }
                    for r in batch
                ],
            )

    def remove_owner(self, owner_type: str, owner_id: str, conn: Connection | None = None) -> int:
        """Forget every reference held by one owner; returns how many there were."""
        if conn is None:
            with transaction(self._engine) as own:
                return self.remove_owner(owner_type, owner_id, own)
        result = conn.execute(
            sa.delete(blob_refs).where(
                blob_refs.c.owner_type == owner_type, blob_refs.c.owner_id == owner_id
            )
        )
        return int(result.rowcount)

    def digests(self) -> Generator[str, None, None]:
        """Every referenced digest once, in ascending order, streamed from the database.

        The generator holds a read snapshot until exhausted or closed.
        """
        stmt = sa.select(blob_refs.c.digest).distinct().order_by(blob_refs.c.digest)
        for (digest,) in self._stream(stmt):
            yield str(digest)

    def digests_by_kind(self) -> Generator[tuple[str, str], None, None]:
        """Every distinct ``(kind, digest)`` pair, ordered by kind then digest, streamed.

        A digest referenced under several kinds appears once per kind.
        """
        stmt = (
            sa.select(blob_refs.c.kind, blob_refs.c.digest)
            .distinct()
            .order_by(blob_refs.c.kind, blob_refs.c.digest)
        )
        for row in self._stream(stmt):
            yield str(row[0]), str(row[1])

    def _stream(self, stmt: sa.Select[*_Cols]) -> Generator[sa.Row[*_Cols], None, None]:
        with transaction(self._engine, readonly=True) as conn:
            result = conn.execution_options(stream_results=True, yield_per=_STREAM_BATCH).execute(
                stmt
            )
            try:
                yield from result
            finally:
                # Close the server-side cursor before the transaction ends, also when the
                # caller stops early.
                result.close()

    def count_by_kind(self) -> dict[str, tuple[int, int]]:
        """``{kind: (distinct digests, reference rows)}``."""
        stmt = (
            sa.select(
                blob_refs.c.kind,
                sa.func.count(sa.distinct(blob_refs.c.digest)),
                sa.func.count(),
            )
            .group_by(blob_refs.c.kind)
            .order_by(blob_refs.c.kind)
        )
        with transaction(self._engine, readonly=True) as conn:
            return {str(k): (int(d), int(n)) for k, d, n in conn.execute(stmt)}

    def owners(self, digest: str, conn: Connection | None = None) -> list[BlobRef]:
        """Every reference to ``digest``, ordered by owner."""
        if conn is None:
            with transaction(self._engine, readonly=True) as own:
                return self.owners(digest, own)
        stmt = (
            sa.select(
                blob_refs.c.digest,
                blob_refs.c.kind,
                blob_refs.c.owner_type,
                blob_refs.c.owner_id,
            )
            .where(blob_refs.c.digest == digest)
            .order_by(blob_refs.c.owner_type, blob_refs.c.owner_id)
        )
        return [BlobRef(*row) for row in conn.execute(stmt)]
