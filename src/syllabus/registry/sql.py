"""The SQL implementation of the registry stores (SQLite and PostgreSQL). The only module
with registry SQL; rows never leave it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from syllabus._utils.ids import MIN_PREFIX, is_id_prefix, new_id
from syllabus.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
)
from syllabus.meta import BlobRef, BlobRefs, transaction
from syllabus.meta.tables.registry import (
    model_aliases,
    model_approvals,
    model_events,
    model_policies,
    model_requests,
    model_tags,
    model_versions,
    model_webhooks,
    registered_models,
)
from syllabus.refs import Ref, SelectorKind, Stage, parse_ref
from syllabus.registry.models import (
    Approval,
    ApprovalRequest,
    Event,
    ModelVersion,
    PolicyVersion,
    RegisteredModel,
    VersionSpec,
    Webhook,
)
from syllabus.registry.store import Audit
from syllabus.registry.webhooks import check_url

__all__ = ["BLOB_KIND", "OWNER_TYPE", "SqlRegistryStore"]

BLOB_KIND: Final = "model"
OWNER_TYPE: Final = "model_version"
_RETRIES: Final = 20

_M = registered_models
_V = model_versions


_MAX_VERSION: Final = 2**31 - 1  # version columns are 32-bit integers on PostgreSQL


def _is_version_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= _MAX_VERSION


def _checked_ref(ref: Ref) -> Ref:
    """``ref`` if it is what parsing its text gives; a reference built field by field (over
    the API, say) may be inconsistent, such as kind ``stage`` without a stage."""
    try:
        text = str(ref)
    except (AttributeError, TypeError, ValueError):
        text = ""
    try:
        ok = parse_ref(text) == ref
    except InvalidArgumentError:
        ok = False
    if not ok:
        raise InvalidArgumentError(
            f"invalid model reference {ref!r}: its fields do not agree (it reads as {text!r})"
        )
    return ref


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _to_version(m: sa.RowMapping, tags: Mapping[str, str], aliases: Sequence[str]) -> ModelVersion:
    return ModelVersion(
        id=m["id"],
        model_id=m["model_id"],
        name=m["name"],
        version=int(m["version"]),
        stage=Stage(m["stage"]),
        tree=m["tree"],
        size=int(m["size"]),
        flavor=m["flavor"],
        serialization=m["serialization"],
        unsafe=bool(m["unsafe"]),
        model_path=m["model_path"],
        model_digest=m["model_digest"],
        signature=json.loads(m["signature"]) if m["signature"] else None,
        source=m["source"],
        run_id=m["run_id"],
        description=m["description"],
        created_at=int(m["created_at"]),
        created_by=m["created_by"],
        stage_changed_at=int(m["stage_changed_at"]),
        retired_at=None if m["retired_at"] is None else int(m["retired_at"]),
        tags=dict(tags),
        aliases=tuple(aliases),
    )


def _version_select() -> sa.Select[Any]:
    return sa.select(_V, _M.c.name).join(_M, _M.c.id == _V.c.model_id)


class SqlRegistryStore:
    """Registry metadata in the Syllabus database (schema at head).

    ``on_event`` is called with each audit event after its transaction commits (the
    service sends them to webhooks).
    """

    def __init__(self, engine: Engine, on_event: Callable[[Event], None] | None = None) -> None:
        self._engine = engine
        self._refs = BlobRefs(engine)
        self.on_event = on_event

    # -- plumbing ------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[tuple[Connection, list[Event]]]:
        """A writing transaction collecting events; they are published after commit."""
        events: list[Event] = []
        with transaction(self._engine) as conn:
            yield conn, events
        if self.on_event is not None:
            for event in events:
                self.on_event(event)

    def _retrying(self, work: Callable[[], Any]) -> Any:
        for attempt in range(_RETRIES):
            try:
                return work()
            except IntegrityError:
                if attempt == _RETRIES - 1:
                    raise
                time.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    def _event(
        self,
        conn: Connection,
        events: list[Event],
        kind: str,
        audit: Audit,
        *,
        model_id: str | None,
        name: str | None,
        version: int | None = None,
        from_stage: str | None = None,
        to_stage: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Event:
        merged = {**audit.details, **(details or {})}
        event = Event(
            id=new_id(),
            event=kind,
            actor=audit.actor,
            at=_now_ms(),
            model_name=name,
            version=version,
            from_stage=from_stage,
            to_stage=to_stage,
            comment=audit.comment,
            policy_name=audit.policy_name,
            policy_version=audit.policy_version,
            details=merged,
        )
        conn.execute(
            sa.insert(model_events).values(
                id=event.id,
                model_id=model_id,
                model_name=name,
                version=version,
                event=kind,
                actor=event.actor,
                at=event.at,
                from_stage=from_stage,
                to_stage=to_stage,
                comment=event.comment,
                policy_name=event.policy_name,
                policy_version=event.policy_version,
                details=json.dumps(merged, default=str) if merged else None,
            )
        )
        events.append(event)
        return event

    def _model_row(self, conn: Connection, name: str, *, lock: bool = False) -> sa.Row[Any]:
        stmt = sa.select(_M).where(_M.c.name == name)
        if lock and conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).first()
        if row is None:
            raise NotFoundError(
                f"model {name!r} does not exist; `syllabus models list` shows registered models"
            )
        return row

    def _tags(self, conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for start in range(0, len(ids), 500):
            q = sa.select(model_tags.c.target_id, model_tags.c.key, model_tags.c.value).where(
                model_tags.c.target_id.in_(ids[start : start + 500])
            )
            for target, key, value in conn.execute(q):
                out.setdefault(target, {})[key] = value
        return out

    def _versions(self, conn: Connection, stmt: sa.Select[Any]) -> list[ModelVersion]:
        rows = [r._mapping for r in conn.execute(stmt)]
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        tags = self._tags(conn, ids)
        aliases: dict[str, list[str]] = {}
        q = (
            sa.select(model_aliases.c.version_id, model_aliases.c.alias)
            .where(model_aliases.c.version_id.in_(ids))
            .order_by(model_aliases.c.alias)
        )
        for version_id, alias in conn.execute(q):
            aliases.setdefault(version_id, []).append(alias)
        return [_to_version(r, tags.get(r["id"], {}), aliases.get(r["id"], ())) for r in rows]

    def _version(self, conn: Connection, name: str, version: int) -> ModelVersion:
        found = []
        if _is_version_number(version):  # any other value names no version (nor overflows)
            found = self._versions(
                conn, _version_select().where(_M.c.name == name, _V.c.version == version)
            )
        if not found:
            self._model_row(conn, name)
            latest = conn.execute(
                sa.select(sa.func.max(_V.c.version))
                .join(_M, _M.c.id == _V.c.model_id)
                .where(_M.c.name == name)
            ).scalar()
            raise NotFoundError(f"model {name!r} has no version {version} (latest is {latest})")
        return found[0]

    # -- models and versions -------------------------------------------------------------

    def create_version(self, name: str, spec: VersionSpec, audit: Audit) -> ModelVersion:
        def work() -> ModelVersion:
            with self._write() as (conn, events):
                now = _now_ms()
                row = conn.execute(sa.select(_M.c.id).where(_M.c.name == name)).first()
                if row is None:
                    model_id = new_id()
                    conn.execute(
                        sa.insert(_M).values(
                            id=model_id,
                            name=name,
                            created_at=now,
                            created_by=audit.actor,
                            updated_at=now,
                        )
                    )
                    self._event(conn, events, "model_created", audit, model_id=model_id, name=name)
                else:
                    model_id = row.id
                latest = conn.execute(
                    sa.select(sa.func.max(_V.c.version)).where(_V.c.model_id == model_id)
                ).scalar()
                number = int(latest or 0) + 1
                version_id = new_id()
                conn.execute(
                    sa.insert(_V).values(
                        id=version_id,
                        model_id=model_id,
                        version=number,
                        stage=Stage.DEVELOPMENT.value,
                        production_slot=None,
                        tree=spec.tree,
                        size=spec.size,
                        flavor=spec.flavor,
                        serialization=spec.serialization,
                        unsafe=spec.unsafe,
                        model_path=spec.model_path,
                        model_digest=spec.model_digest,
                        signature=json.dumps(spec.signature) if spec.signature else None,
                        source=spec.source,
                        run_id=spec.run_id,
                        description=spec.description,
                        created_at=now,
                        created_by=audit.actor,
                        stage_changed_at=now,
                    )
                )
                if spec.tags:
                    conn.execute(
                        sa.insert(model_tags),
                        [
                            {"target_id": version_id, "key": k, "model_id": model_id, "value": v}
                            for k, v in spec.tags.items()
                        ],
                    )
                conn.execute(sa.update(_M).where(_M.c.id == model_id).values(updated_at=now))
                self._refs.add([BlobRef(spec.tree, BLOB_KIND, OWNER_TYPE, version_id)], conn)
                self._event(
                    conn,
                    events,
                    "registered",
                    audit,
                    model_id=model_id,
                    name=name,
                    version=number,
                    to_stage=Stage.DEVELOPMENT.value,
                    details={"source": spec.source, "flavor": spec.flavor, "tree": spec.tree},
                )
                return self._version(conn, name, number)

        result: ModelVersion = self._retrying(work)
        return result

    def _model(self, conn: Connection, row: sa.Row[Any]) -> RegisteredModel:
        m = row._mapping
        latest = conn.execute(
            sa.select(sa.func.max(_V.c.version)).where(_V.c.model_id == m["id"])
        ).scalar()
        aliases = {
            alias: int(version)
            for alias, version in conn.execute(
                sa.select(model_aliases.c.alias, _V.c.version)
                .join(_V, _V.c.id == model_aliases.c.version_id)
                .where(model_aliases.c.model_id == m["id"])
                .order_by(model_aliases.c.alias)
            )
        }
        production = tuple(
            int(v)
            for v in conn.scalars(
                sa.select(_V.c.version)
                .where(_V.c.model_id == m["id"], _V.c.stage == Stage.PRODUCTION.value)
                .order_by(_V.c.version)
            )
        )
        rollback = None
        if m["rollback_version_id"] is not None:
            rollback = conn.execute(
                sa.select(_V.c.version).where(_V.c.id == m["rollback_version_id"])
            ).scalar()
        return RegisteredModel(
            id=m["id"],
            name=m["name"],
            created_at=int(m["created_at"]),
            created_by=m["created_by"],
            updated_at=int(m["updated_at"]),
            description=m["description"],
            latest_version=None if latest is None else int(latest),
            rollback_version=None if rollback is None else int(rollback),
            tags=self._tags(conn, [m["id"]]).get(m["id"], {}),
            aliases=aliases,
            production=production,
        )

    def get_model(self, name: str) -> RegisteredModel:
        with transaction(self._engine, readonly=True) as conn:
            return self._model(conn, self._model_row(conn, name))

    def list_models(self, *, name_like: str | None = None) -> list[RegisteredModel]:
        stmt = sa.select(_M).order_by(_M.c.name)
        if name_like:
            stmt = stmt.where(_M.c.name.like(name_like))
        with transaction(self._engine, readonly=True) as conn:
            return [self._model(conn, row) for row in conn.execute(stmt).all()]

    def resolve(self, ref: Ref) -> ModelVersion:
        ref = _checked_ref(ref)
        name = ref.name
        with transaction(self._engine, readonly=True) as conn:
            if ref.kind is SelectorKind.VERSION and ref.version is not None:
                return self._version(conn, name, ref.version)
            stmt = _version_select().where(_M.c.name == name)
            if ref.kind is SelectorKind.LATEST:
                stmt = stmt.where(_V.c.retired_at.is_(None)).order_by(_V.c.version.desc())
                missing = f"model {name!r} has no versions that are not retired"
            elif ref.kind is SelectorKind.STAGE and ref.stage is not None:
                stmt = stmt.where(_V.c.stage == ref.stage.value).order_by(
                    _V.c.stage_changed_at.desc(), _V.c.version.desc()
                )
                missing = f"model {name!r} has no version in {ref.stage.value}"
            else:
                stmt = stmt.join(model_aliases, model_aliases.c.version_id == _V.c.id).where(
                    model_aliases.c.alias == ref.alias
                )
                missing = (
                    f"model {name!r} has no alias {ref.alias!r}; "
                    f"`syllabus models alias {name} {ref.alias} VERSION` sets it"
                )
            found = self._versions(conn, stmt.limit(1))
            if not found:
                self._model_row(conn, name)
                raise NotFoundError(missing)
            return found[0]

    def list_versions(self, name: str, *, stage: Stage | None = None) -> list[ModelVersion]:
        with transaction(self._engine, readonly=True) as conn:
            self._model_row(conn, name)
            stmt = _version_select().where(_M.c.name == name).order_by(_V.c.version.desc())
            if stage is not None:
                stmt = stmt.where(_V.c.stage == stage.value)
            return self._versions(conn, stmt)

    def versions_with_digest(self, model_digest: str) -> list[ModelVersion]:
        with transaction(self._engine, readonly=True) as conn:
            return self._versions(
                conn,
                _version_select()
                .where(_V.c.model_digest == model_digest, _V.c.retired_at.is_(None))
                .order_by(_V.c.id),
            )

    def describe(self, name: str, version: int | None, text: str, audit: Audit) -> None:
        with self._write() as (conn, events):
            model = self._model_row(conn, name)
            if version is None:
                conn.execute(
                    sa.update(_M)
                    .where(_M.c.id == model.id)
                    .values(description=text, updated_at=_now_ms())
                )
            else:
                v = self._version(conn, name, version)
                conn.execute(sa.update(_V).where(_V.c.id == v.id).values(description=text))
            self._event(
                conn,
                events,
                "described",
                audit,
                model_id=model.id,
                name=name,
                version=version,
                details={"description": text},
            )

    def set_tag(
        self, name: str, version: int | None, key: str, value: str | None, audit: Audit
    ) -> None:
        with self._write() as (conn, events):
            model = self._model_row(conn, name)
            target = model.id if version is None else self._version(conn, name, version).id
            where = sa.and_(model_tags.c.target_id == target, model_tags.c.key == key)
            if value is None:
                gone = conn.execute(sa.delete(model_tags).where(where)).rowcount
                if not gone:
                    what = name if version is None else f"{name}@{version}"
                    raise NotFoundError(f"{what} has no tag {key!r}")
            elif conn.execute(sa.update(model_tags).where(where).values(value=value)).rowcount == 0:
                conn.execute(
                    sa.insert(model_tags).values(
                        target_id=target, key=key, model_id=model.id, value=value
                    )
                )
            self._event(
                conn,
                events,
                "tag_deleted" if value is None else "tag_set",
                audit,
                model_id=model.id,
                name=name,
                version=version,
                details={"key": key, "value": value},
            )

    def set_alias(self, name: str, alias: str, version: int | None, audit: Audit) -> None:
        with self._write() as (conn, events):
            model = self._model_row(conn, name)
            where = sa.and_(model_aliases.c.model_id == model.id, model_aliases.c.alias == alias)
            previous = conn.execute(
                sa.select(_V.c.version)
                .join(model_aliases, model_aliases.c.version_id == _V.c.id)
                .where(where)
            ).scalar()
            if version is None:
                if previous is None:
                    raise NotFoundError(f"model {name!r} has no alias {alias!r}")
                conn.execute(sa.delete(model_aliases).where(where))
            else:
                v = self._version(conn, name, version)
                if v.retired:
                    raise ConflictError(f"{v.ref} is retired; an alias cannot point at it")
                values = {"version_id": v.id, "updated_at": _now_ms()}
                if (
                    conn.execute(sa.update(model_aliases).where(where).values(**values)).rowcount
                    == 0
                ):
                    conn.execute(
                        sa.insert(model_aliases).values(model_id=model.id, alias=alias, **values)
                    )
            self._event(
                conn,
                events,
                "alias_deleted" if version is None else "alias_set",
                audit,
                model_id=model.id,
                name=name,
                version=version,
                details={"alias": alias, "previous_version": previous},
            )

    def transition(
        self,
        name: str,
        version: int,
        to: Stage,
        audit: Audit,
        *,
        exclusive: bool = True,
        expect: Stage | None = None,
    ) -> tuple[ModelVersion, list[ModelVersion]]:
        def work() -> tuple[ModelVersion, list[ModelVersion]]:
            with self._write() as (conn, events):
                model = self._model_row(conn, name, lock=True)
                v = self._version(conn, name, version)
                if v.retired:
                    raise ConflictError(f"{v.ref} is retired and cannot change stage")
                if expect is not None and v.stage is not expect:
                    raise ConflictError(
                        f"{v.ref} moved from {expect.value} to {v.stage.value} meanwhile; "
                        "check `syllabus models history` and try again"
                    )
                now = _now_ms()
                archived: list[ModelVersion] = []
                if to is Stage.PRODUCTION and exclusive:
                    others = self._versions(
                        conn,
                        _version_select()
                        .where(
                            _V.c.model_id == model.id,
                            _V.c.stage == Stage.PRODUCTION.value,
                            _V.c.id != v.id,
                        )
                        .order_by(_V.c.stage_changed_at),
                    )
                    for other in others:
                        conn.execute(
                            sa.update(_V)
                            .where(_V.c.id == other.id)
                            .values(
                                stage=Stage.ARCHIVED.value,
                                production_slot=None,
                                stage_changed_at=now,
                            )
                        )
                        self._event(
                            conn,
                            events,
                            "stage_changed",
                            audit,
                            model_id=model.id,
                            name=name,
                            version=other.version,
                            from_stage=Stage.PRODUCTION.value,
                            to_stage=Stage.ARCHIVED.value,
                            details={"replaced_by": version},
                        )
                        archived.append(self._version(conn, name, other.version))
                    if others:
                        conn.execute(
                            sa.update(_M)
                            .where(_M.c.id == model.id)
                            .values(rollback_version_id=others[-1].id)
                        )
                slot = model.id if to is Stage.PRODUCTION and exclusive else None
                conn.execute(
                    sa.update(_V)
                    .where(_V.c.id == v.id)
                    .values(stage=to.value, production_slot=slot, stage_changed_at=now)
                )
                conn.execute(sa.update(_M).where(_M.c.id == model.id).values(updated_at=now))
                self._event(
                    conn,
                    events,
                    "stage_changed",
                    audit,
                    model_id=model.id,
                    name=name,
                    version=version,
                    from_stage=v.stage.value,
                    to_stage=to.value,
                )
                return self._version(conn, name, version), archived

        result: tuple[ModelVersion, list[ModelVersion]] = self._retrying(work)
        return result

    def retire(self, name: str, version: int, audit: Audit) -> ModelVersion:
        with self._write() as (conn, events):
            model = self._model_row(conn, name, lock=True)
            v = self._version(conn, name, version)
            if v.retired:
                raise ConflictError(f"{v.ref} is retired already")
            if v.stage is not Stage.ARCHIVED:
                raise ConflictError(
                    f"{v.ref} is in {v.stage.value}; archive it first "
                    f"(`syllabus models archive {v.ref}`)"
                )
            now = _now_ms()
            conn.execute(sa.update(_V).where(_V.c.id == v.id).values(retired_at=now))
            conn.execute(sa.delete(model_aliases).where(model_aliases.c.version_id == v.id))
            released = self._refs.remove_owner(OWNER_TYPE, v.id, conn)
            if model.rollback_version_id == v.id:
                conn.execute(
                    sa.update(_M).where(_M.c.id == model.id).values(rollback_version_id=None)
                )
            self._event(
                conn,
                events,
                "retired",
                audit,
                model_id=model.id,
                name=name,
                version=version,
                details={"released_blob_refs": released, "tree": v.tree},
            )
            return self._version(conn, name, version)

    # -- policies ------------------------------------------------------------------------

    def add_policy(self, name: str, text: str, digest: str, audit: Audit) -> PolicyVersion:
        def work() -> PolicyVersion:
            with self._write() as (conn, events):
                current = self._policy(conn, name, None)
                if current is not None and current.digest == digest:
                    return current
                number = 1 if current is None else current.version + 1
                conn.execute(
                    sa.insert(model_policies).values(
                        id=new_id(),
                        name=name,
                        version=number,
                        text=text,
                        digest=digest,
                        created_at=_now_ms(),
                        created_by=audit.actor,
                    )
                )
                model_id = conn.execute(sa.select(_M.c.id).where(_M.c.name == name)).scalar()
                self._event(
                    conn,
                    events,
                    "policy_applied",
                    Audit(audit.actor, audit.comment, name, number, audit.details),
                    model_id=model_id,
                    name=None if name == "default" else name,
                    details={"policy": name, "digest": digest},
                )
                found = self._policy(conn, name, number)
                assert found is not None
                return found

        result: PolicyVersion = self._retrying(work)
        return result

    def _policy(self, conn: Connection, name: str, version: int | None) -> PolicyVersion | None:
        stmt = sa.select(model_policies).where(model_policies.c.name == name)
        if version is None:
            stmt = stmt.order_by(model_policies.c.version.desc()).limit(1)
        elif not _is_version_number(version):
            return None  # names no stored policy version
        else:
            stmt = stmt.where(model_policies.c.version == version)
        row = conn.execute(stmt).first()
        if row is None:
            return None
        m = row._mapping
        return PolicyVersion(
            m["id"],
            m["name"],
            int(m["version"]),
            m["text"],
            m["digest"],
            int(m["created_at"]),
            m["created_by"],
        )

    def get_policy(self, name: str, version: int | None = None) -> PolicyVersion | None:
        with transaction(self._engine, readonly=True) as conn:
            return self._policy(conn, name, version)

    # -- requests and approvals ----------------------------------------------------------

    def _requests(self, conn: Connection, stmt: sa.Select[Any]) -> list[ApprovalRequest]:
        rows = [r._mapping for r in conn.execute(stmt)]
        ids = [r["id"] for r in rows]
        decisions: dict[str, list[Approval]] = {}
        if ids:
            q = (
                sa.select(model_approvals)
                .where(model_approvals.c.request_id.in_(ids))
                .order_by(model_approvals.c.created_at, model_approvals.c.id)
            )
            for a in conn.execute(q):
                am = a._mapping
                decisions.setdefault(am["request_id"], []).append(
                    Approval(
                        am["id"],
                        am["request_id"],
                        am["decision"],
                        am["actor"],
                        am["role"],
                        am["comment"],
                        int(am["created_at"]),
                    )
                )
        return [
            ApprovalRequest(
                id=r["id"],
                version_id=r["version_id"],
                name=r["name"],
                version=int(r["version"]),
                to_stage=Stage(r["to_stage"]),
                status=r["status"],
                comment=r["comment"],
                requested_by=r["requested_by"],
                created_at=int(r["created_at"]),
                resolved_at=None if r["resolved_at"] is None else int(r["resolved_at"]),
                approvals=tuple(decisions.get(r["id"], ())),
            )
            for r in rows
        ]

    @staticmethod
    def _request_select() -> sa.Select[Any]:
        return (
            sa.select(model_requests, _M.c.name, _V.c.version)
            .join(_V, _V.c.id == model_requests.c.version_id)
            .join(_M, _M.c.id == _V.c.model_id)
        )

    def _request(self, conn: Connection, request_id: str) -> ApprovalRequest:
        if not is_id_prefix(request_id):
            raise InvalidArgumentError(
                f"invalid request id {request_id!r} (expected at least {MIN_PREFIX} hex characters)"
            )
        found = self._requests(
            conn, self._request_select().where(model_requests.c.id.like(f"{request_id}%")).limit(2)
        )
        if not found:
            raise NotFoundError(
                f"no approval request {request_id!r}; `syllabus models request` lists pending ones"
            )
        if len(found) > 1:
            raise InvalidArgumentError(f"request id prefix {request_id!r} is ambiguous")
        return found[0]

    def create_request(self, name: str, version: int, to: Stage, audit: Audit) -> ApprovalRequest:
        with self._write() as (conn, events):
            model = self._model_row(conn, name)
            v = self._version(conn, name, version)
            pending = conn.execute(
                sa.select(model_requests.c.id).where(
                    model_requests.c.version_id == v.id,
                    model_requests.c.to_stage == to.value,
                    model_requests.c.status == "pending",
                )
            ).scalar()
            if pending is not None:
                raise AlreadyExistsError(
                    f"{v.ref} already has a pending request {pending[:8]} to {to.value}; "
                    f"approve it with `syllabus models approve {pending[:8]}`"
                )
            request_id = new_id()
            conn.execute(
                sa.insert(model_requests).values(
                    id=request_id,
                    version_id=v.id,
                    to_stage=to.value,
                    status="pending",
                    comment=audit.comment,
                    requested_by=audit.actor,
                    created_at=_now_ms(),
                )
            )
            self._event(
                conn,
                events,
                "requested",
                audit,
                model_id=model.id,
                name=name,
                version=version,
                from_stage=v.stage.value,
                to_stage=to.value,
                details={"request": request_id},
            )
            return self._request(conn, request_id)

    def get_request(self, request_id: str) -> ApprovalRequest:
        with transaction(self._engine, readonly=True) as conn:
            return self._request(conn, request_id)

    def list_requests(
        self, name: str | None = None, *, status: str | None = None
    ) -> list[ApprovalRequest]:
        stmt = self._request_select().order_by(model_requests.c.id.desc())
        if name is not None:
            stmt = stmt.where(_M.c.name == name)
        if status is not None:
            stmt = stmt.where(model_requests.c.status == status)
        with transaction(self._engine, readonly=True) as conn:
            return self._requests(conn, stmt)

    def decide(
        self, request_id: str, decision: str, role: str | None, audit: Audit
    ) -> ApprovalRequest:
        if decision not in ("approve", "reject"):
            raise InvalidArgumentError(f"decision must be approve or reject, not {decision!r}")
        with self._write() as (conn, events):
            req = self._request(conn, request_id)
            if req.status != "pending":
                raise ConflictError(f"request {req.id[:8]} for {req.ref} is {req.status} already")
            try:
                with conn.begin_nested():
                    conn.execute(
                        sa.insert(model_approvals).values(
                            id=new_id(),
                            request_id=req.id,
                            decision=decision,
                            actor=audit.actor,
                            role=role,
                            comment=audit.comment,
                            created_at=_now_ms(),
                        )
                    )
            except IntegrityError:
                raise ConflictError(
                    f"{audit.actor} has already decided on request {req.id[:8]} for {req.ref}"
                ) from None
            model_id = conn.execute(sa.select(_M.c.id).where(_M.c.name == req.name)).scalar()
            self._event(
                conn,
                events,
                "approved" if decision == "approve" else "rejected",
                audit,
                model_id=model_id,
                name=req.name,
                version=req.version,
                to_stage=req.to_stage.value,
                details={"request": req.id, "role": role},
            )
            return self._request(conn, req.id)

    def close_request(self, request_id: str, status: str, audit: Audit) -> ApprovalRequest:
        with self._write() as (conn, _events):
            req = self._request(conn, request_id)
            if req.status != "pending":
                raise ConflictError(f"request {req.id[:8]} for {req.ref} is {req.status} already")
            conn.execute(
                sa.update(model_requests)
                .where(model_requests.c.id == req.id)
                .values(status=status, resolved_at=_now_ms())
            )
            return self._request(conn, req.id)

    # -- events and webhooks -------------------------------------------------------------

    def list_events(self, name: str | None = None, *, limit: int = 1000) -> list[Event]:
        stmt = sa.select(model_events).order_by(model_events.c.pk.desc()).limit(limit)
        with transaction(self._engine, readonly=True) as conn:
            if name is not None:
                model = self._model_row(conn, name)
                stmt = stmt.where(model_events.c.model_id == model.id)
            rows = list(reversed(conn.execute(stmt).all()))
        out = []
        for row in rows:
            m = row._mapping
            out.append(
                Event(
                    id=m["id"],
                    event=m["event"],
                    actor=m["actor"],
                    at=int(m["at"]),
                    model_name=m["model_name"],
                    version=m["version"],
                    from_stage=m["from_stage"],
                    to_stage=m["to_stage"],
                    comment=m["comment"],
                    policy_name=m["policy_name"],
                    policy_version=m["policy_version"],
                    details=json.loads(m["details"]) if m["details"] else {},
                )
            )
        return out

    def add_event(
        self,
        name: str | None,
        version: int | None,
        event: str,
        audit: Audit,
        *,
        from_stage: str | None = None,
        to_stage: str | None = None,
    ) -> Event:
        with self._write() as (conn, events):
            model_id = None
            if name is not None:
                model_id = conn.execute(sa.select(_M.c.id).where(_M.c.name == name)).scalar()
            return self._event(
                conn,
                events,
                event,
                audit,
                model_id=model_id,
                name=name,
                version=version,
                from_stage=from_stage,
                to_stage=to_stage,
            )

    def add_webhook(
        self, url: str, secret: str, events: Sequence[str], model_name: str | None, audit: Audit
    ) -> Webhook:
        check_url(url)
        if not isinstance(secret, str) or not secret:
            raise InvalidArgumentError("a webhook needs a shared secret to sign its events")
        hook = Webhook(new_id(), url, secret, tuple(events), model_name, _now_ms(), audit.actor)
        with self._write() as (conn, out):
            conn.execute(
                sa.insert(model_webhooks).values(
                    id=hook.id,
                    url=url,
                    secret=secret,
                    events=json.dumps(list(events)),
                    model_name=model_name,
                    created_at=hook.created_at,
                    created_by=hook.created_by,
                )
            )
            self._event(
                conn,
                out,
                "webhook_added",
                audit,
                model_id=None,
                name=model_name,
                details={"webhook": hook.id, "url": url},
            )
        return hook

    def list_webhooks(self) -> list[Webhook]:
        with transaction(self._engine, readonly=True) as conn:
            rows = conn.execute(sa.select(model_webhooks).order_by(model_webhooks.c.id)).all()
        return [
            Webhook(
                r.id,
                r.url,
                r.secret,
                tuple(json.loads(r.events)),
                r.model_name,
                int(r.created_at),
                r.created_by,
            )
            for r in rows
        ]

    def remove_webhook(self, webhook_id: str, audit: Audit) -> None:
        with self._write() as (conn, events):
            gone = conn.execute(
                sa.delete(model_webhooks).where(model_webhooks.c.id.like(f"{webhook_id}%"))
            ).rowcount
            if gone != 1:
                raise NotFoundError(f"no single webhook with id {webhook_id!r}")
            self._event(
                conn,
                events,
                "webhook_removed",
                audit,
                model_id=None,
                name=None,
                details={"webhook": webhook_id},
            )
