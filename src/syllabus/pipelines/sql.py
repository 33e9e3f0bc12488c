"""The pipeline store on SQLite and PostgreSQL: the only module with pipeline SQL.

Leases are claimed with one conditional ``UPDATE ... WHERE lease_owner IS NULL OR
lease_owner = :me OR lease_expires_at < :now``: the database lets exactly one claimer's
update match the row. Firing once is guaranteed by the unique ``(trigger_id, occurrence)``
of ``trigger_firings``, inserted in the same transaction that moves the trigger's state
(and only while the lease is held).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from syllabus._utils.ids import MIN_PREFIX, is_id, is_id_prefix, new_id
from syllabus.errors import InvalidArgumentError, NotFoundError
from syllabus.meta import BlobRef, BlobRefs, transaction
from syllabus.meta.tables.pipelines import (
    pipeline_runs,
    pipelines,
    step_cache,
    step_runs,
    trigger_firings,
    triggers,
)
from syllabus.pipelines.models import (
    CacheEntry,
    Firing,
    PipelineInfo,
    PipelineRun,
    RunStatus,
    StepRun,
    StepStatus,
    Trigger,
)
from syllabus.pipelines.store import TriggerSpec

__all__ = ["SqlPipelineStore"]

_P = pipelines
_R = pipeline_runs
_S = step_runs
_C = step_cache
_T = triggers
_F = trigger_firings


def _now() -> int:
    import time

    return time.time_ns() // 1_000_000


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _pipeline(row: Any) -> PipelineInfo:
    return PipelineInfo(
        id=row.id,
        name=row.name,
        source=row.source,
        definition=json.loads(row.definition),
        digest=row.digest,
        created_at=int(row.created_at),
        updated_at=int(row.updated_at),
    )


def _run(row: Any) -> PipelineRun:
    params = json.loads(row.params)
    return PipelineRun(
        id=row.id,
        pipeline_id=row.pipeline_id,
        pipeline=row.name,
        run_id=row.run_id,
        status=RunStatus(row.status),
        params=params.get("params", {}),
        inputs=params.get("inputs", {}),
        digest=row.digest,
        executor=row.executor,
        forced=tuple(json.loads(row.forced)),
        created_by=row.created_by,
        started_at=int(row.started_at),
        ended_at=None if row.ended_at is None else int(row.ended_at),
        error=row.error,
        resumes=row.resumes,
        firing_id=row.firing_id,
    )


def _step(row: Any) -> StepRun:
    return StepRun(
        id=row.id,
        pipeline_run_id=row.pipeline_run_id,
        step=row.step,
        status=StepStatus(row.status),
        run_id=row.run_id,
        cache_key=row.cache_key,
        cached_from=row.cached_from,
        reason=row.reason,
        outputs=None if row.outputs is None else json.loads(row.outputs),
        started_at=row.started_at,
        ended_at=row.ended_at,
        error=row.error,
    )


def _trigger(row: Any) -> Trigger:
    return Trigger(
        id=row.id,
        pipeline_id=row.pipeline_id,
        pipeline=row.pipeline,
        name=row.name,
        kind=row.kind,
        spec=json.loads(row.spec),
        enabled=bool(row.enabled),
        state=row.state,
        last_fired_at=row.last_fired_at,
        checked_at=row.checked_at,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        created_at=int(row.created_at),
    )


def _firing(row: Any) -> Firing:
    return Firing(
        id=row.id,
        trigger_id=row.trigger_id,
        occurrence=row.occurrence,
        status=row.status,
        agent=row.agent,
        fired_at=int(row.fired_at),
        detail=json.loads(row.detail) if row.detail else {},
        pipeline_run_id=row.pipeline_run_id,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        ended_at=row.ended_at,
    )


def _lease_free(table: sa.Table, owner: str, now: int) -> sa.ColumnElement[bool]:
    return sa.or_(
        table.c.lease_owner.is_(None),
        table.c.lease_owner == owner,
        table.c.lease_expires_at < now,
    )


class SqlPipelineStore:
    """:class:`~syllabus.pipelines.store.PipelineStore` over an engine at schema head."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._refs = BlobRefs(engine)

    # -- pipelines -------------------------------------------------------------------------

    def save_pipeline(
        self, name: str, source: str, definition: Mapping[str, Any], digest: str
    ) -> PipelineInfo:
        now = _now()
        text = _dumps(definition)
        for _ in range(3):
            try:
                with transaction(self._engine) as conn:
                    row = conn.execute(sa.select(_P).where(_P.c.name == name)).first()
                    if row is None:
                        conn.execute(
                            sa.insert(_P).values(
                                id=new_id(),
                                name=name,
                                source=source,
                                definition=text,
                                digest=digest,
                                created_at=now,
                                updated_at=now,
                            )
                        )
                    elif row.digest != digest or row.source != source:
                        conn.execute(
                            sa.update(_P)
                            .where(_P.c.id == row.id)
                            .values(source=source, definition=text, digest=digest, updated_at=now)
                        )
                    return _pipeline(conn.execute(sa.select(_P).where(_P.c.name == name)).one())
            except IntegrityError:  # another process inserted it first: update instead
                continue
        raise InvalidArgumentError(f"could not save pipeline {name!r}")  # pragma: no cover

    def get_pipeline(self, name: str) -> PipelineInfo:
        with transaction(self._engine, readonly=True) as conn:
            row = conn.execute(sa.select(_P).where(_P.c.name == name)).first()
        if row is None:
            raise NotFoundError(
                f"pipeline {name!r} not found; `syllabus pipeline run FILE.py:NAME` or "
                "`syllabus pipeline run FILE.yaml` registers one "
                "(`syllabus pipeline list` shows them)"
            )
        return _pipeline(row)

    def list_pipelines(self) -> list[PipelineInfo]:
        with transaction(self._engine, readonly=True) as conn:
            return [_pipeline(r) for r in conn.execute(sa.select(_P).order_by(_P.c.name))]

    # -- triggers --------------------------------------------------------------------------

    def _trigger_select(self) -> sa.Select[Any]:
        return sa.select(_T, _P.c.name.label("pipeline")).join(_P, _P.c.id == _T.c.pipeline_id)

    def sync_triggers(self, pipeline_id: str, specs: Sequence[TriggerSpec]) -> list[Trigger]:
        now = _now()
        with transaction(self._engine) as conn:
            if not conn.execute(sa.select(_P.c.id).where(_P.c.id == pipeline_id)).first():
                raise NotFoundError(f"pipeline id {pipeline_id!r} not found")
            existing = {
                r.name: r
                for r in conn.execute(sa.select(_T).where(_T.c.pipeline_id == pipeline_id))
            }
            wanted = {name for name, *_ in specs}
            for name, old in existing.items():
                if name not in wanted:
                    conn.execute(sa.delete(_T).where(_T.c.id == old.id))
            for name, kind, spec, state in specs:
                text = _dumps(spec)
                row = existing.get(name)
                if row is None:
                    conn.execute(
                        sa.insert(_T).values(
                            id=new_id(),
                            pipeline_id=pipeline_id,
                            name=name,
                            kind=kind,
                            spec=text,
                            enabled=True,
                            state=state,
                            created_at=now,
                        )
                    )
                elif row.kind != kind or row.spec != text:
                    conn.execute(
                        sa.update(_T).where(_T.c.id == row.id).values(kind=kind, spec=text)
                    )
            rows = conn.execute(
                self._trigger_select().where(_T.c.pipeline_id == pipeline_id).order_by(_T.c.name)
            ).all()
        return [_trigger(r) for r in rows]

    def list_triggers(self, pipeline: str | None = None) -> list[Trigger]:
        stmt = self._trigger_select().order_by(_P.c.name, _T.c.name)
        if pipeline is not None:
            stmt = stmt.where(_P.c.name == pipeline)
        with transaction(self._engine, readonly=True) as conn:
            return [_trigger(r) for r in conn.execute(stmt)]

    def claim_trigger(self, trigger_id: str, owner: str, now: int, ttl_ms: int) -> bool:
        with transaction(self._engine) as conn:
            result = conn.execute(
                sa.update(_T)
                .where(_T.c.id == trigger_id, _T.c.enabled.is_(True), _lease_free(_T, owner, now))
                .values(lease_owner=owner, lease_expires_at=now + ttl_ms)
            )
        return result.rowcount == 1

    def release_trigger(self, trigger_id: str, owner: str, *, checked_at: int) -> None:
        with transaction(self._engine) as conn:
            conn.execute(
                sa.update(_T)
                .where(_T.c.id == trigger_id, _T.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None, checked_at=checked_at)
            )

    def fire(
        self,
        trigger_id: str,
        owner: str,
        occurrence: str,
        detail: Mapping[str, Any],
        *,
        now: int,
        ttl_ms: int,
    ) -> Firing | None:
        firing_id = new_id()
        try:
            with transaction(self._engine) as conn:
                moved = conn.execute(
                    sa.update(_T)
                    .where(
                        _T.c.id == trigger_id,
                        _T.c.lease_owner == owner,
                        _T.c.lease_expires_at >= now,
                    )
                    .values(state=occurrence, last_fired_at=now)
                )
                if moved.rowcount != 1:
                    return None  # the lease was lost: someone else decides
                conn.execute(
                    sa.insert(_F).values(
                        id=firing_id,
                        trigger_id=trigger_id,
                        occurrence=occurrence,
                        detail=_dumps(dict(detail)),
                        status="running",
                        agent=owner,
                        lease_owner=owner,
                        lease_expires_at=now + ttl_ms,
                        fired_at=now,
                    )
                )
                row = conn.execute(sa.select(_F).where(_F.c.id == firing_id)).one()
        except IntegrityError:
            # This occurrence already fired (the unique key): only move the state on.
            with transaction(self._engine) as conn:
                conn.execute(
                    sa.update(_T)
                    .where(_T.c.id == trigger_id, _T.c.lease_owner == owner)
                    .values(state=occurrence)
                )
            return None
        return _firing(row)

    def update_firing(
        self,
        firing_id: str,
        owner: str,
        *,
        now: int,
        ttl_ms: int = 0,
        status: str | None = None,
        pipeline_run_id: str | None = None,
    ) -> bool:
        values: dict[str, Any] = {}
        if status is not None:
            values.update(status=status, ended_at=now, lease_owner=None, lease_expires_at=None)
        elif ttl_ms:
            values["lease_expires_at"] = now + ttl_ms
        if pipeline_run_id is not None:
            values["pipeline_run_id"] = pipeline_run_id
        if not values:
            return True
        with transaction(self._engine) as conn:
            result = conn.execute(
                sa.update(_F)
                .where(_F.c.id == firing_id, _F.c.lease_owner == owner, _F.c.status == "running")
                .values(**values)
            )
        return result.rowcount == 1

    def claim_stale_firings(self, owner: str, now: int, ttl_ms: int) -> list[Firing]:
        with transaction(self._engine, readonly=True) as conn:
            ids = [
                r.id
                for r in conn.execute(
                    sa.select(_F.c.id).where(
                        _F.c.status == "running",
                        sa.or_(_F.c.lease_expires_at.is_(None), _F.c.lease_expires_at < now),
                    )
                )
            ]
        claimed: list[Firing] = []
        for fid in ids:
            with transaction(self._engine) as conn:
                result = conn.execute(
                    sa.update(_F)
                    .where(
                        _F.c.id == fid,
                        _F.c.status == "running",
                        sa.or_(_F.c.lease_expires_at.is_(None), _F.c.lease_expires_at < now),
                    )
                    .values(lease_owner=owner, lease_expires_at=now + ttl_ms)
                )
                if result.rowcount == 1:
                    claimed.append(_firing(conn.execute(sa.select(_F).where(_F.c.id == fid)).one()))
        return claimed

    def list_firings(self, pipeline: str | None = None, *, limit: int = 100) -> list[Firing]:
        stmt = (
            sa.select(_F)
            .join(_T, _T.c.id == _F.c.trigger_id)
            .join(_P, _P.c.id == _T.c.pipeline_id)
            .order_by(_F.c.fired_at.desc(), _F.c.id.desc())
            .limit(limit)
        )
        if pipeline is not None:
            stmt = stmt.where(_P.c.name == pipeline)
        with transaction(self._engine, readonly=True) as conn:
            return [_firing(r) for r in conn.execute(stmt)]

    # -- runs ------------------------------------------------------------------------------

    def create_run(self, run: PipelineRun, steps: Sequence[StepRun]) -> None:
        with transaction(self._engine) as conn:
            if not conn.execute(sa.select(_P.c.id).where(_P.c.id == run.pipeline_id)).first():
                raise NotFoundError(f"pipeline id {run.pipeline_id!r} not found")
            conn.execute(
                sa.insert(_R).values(
                    id=run.id,
                    pipeline_id=run.pipeline_id,
                    run_id=run.run_id,
                    status=run.status.value,
                    params=_dumps({"params": dict(run.params), "inputs": dict(run.inputs)}),
                    digest=run.digest,
                    executor=run.executor,
                    forced=_dumps(list(run.forced)),
                    resumes=run.resumes,
                    firing_id=run.firing_id,
                    created_by=run.created_by,
                    started_at=run.started_at,
                    ended_at=run.ended_at,
                    error=run.error,
                )
            )
            if steps:
                conn.execute(sa.insert(_S), [self._step_values(s) for s in steps])

    @staticmethod
    def _step_values(s: StepRun) -> dict[str, Any]:
        return {
            "id": s.id,
            "pipeline_run_id": s.pipeline_run_id,
            "step": s.step,
            "run_id": s.run_id,
            "status": s.status.value,
            "cache_key": s.cache_key,
            "cached_from": s.cached_from,
            "reason": s.reason,
            "outputs": None if s.outputs is None else _dumps(dict(s.outputs)),
            "started_at": s.started_at,
            "ended_at": s.ended_at,
            "error": s.error,
        }

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        ended_at: int | None = None,
        error: str | None = None,
        tracked_run_id: str | None = None,
    ) -> None:
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = status
        if ended_at is not None:
            values["ended_at"] = ended_at
        if error is not None:
            values["error"] = error
        if tracked_run_id is not None:
            values["run_id"] = tracked_run_id
        if values:
            with transaction(self._engine) as conn:
                conn.execute(sa.update(_R).where(_R.c.id == run_id).values(**values))

    def _run_select(self) -> sa.Select[Any]:
        return sa.select(_R, _P.c.name).join(_P, _P.c.id == _R.c.pipeline_id)

    def get_run(self, ref: str) -> PipelineRun:
        ref = ref.strip().lower()
        if is_id(ref):
            where = _R.c.id == ref
        elif is_id_prefix(ref):
            where = sa.and_(_R.c.id >= ref, _R.c.id < ref + "g")
        else:
            raise NotFoundError(
                f"pipeline run {ref!r} not found (ids are hex; give at least {MIN_PREFIX} "
                "characters)"
            )
        with transaction(self._engine, readonly=True) as conn:
            rows = conn.execute(self._run_select().where(where).limit(2)).all()
        if not rows:
            raise NotFoundError(
                f"pipeline run {ref!r} not found; `syllabus pipeline runs NAME` lists them"
            )
        if len(rows) > 1:
            raise InvalidArgumentError(f"pipeline run prefix {ref!r} is ambiguous")
        return _run(rows[0])

    def list_runs(self, pipeline: str | None = None, *, limit: int = 100) -> list[PipelineRun]:
        stmt = self._run_select().order_by(_R.c.started_at.desc(), _R.c.id.desc()).limit(limit)
        if pipeline is not None:
            stmt = stmt.where(_P.c.name == pipeline)
        with transaction(self._engine, readonly=True) as conn:
            return [_run(r) for r in conn.execute(stmt)]

    def save_step(self, step: StepRun) -> None:
        values = self._step_values(step)
        del values["id"], values["pipeline_run_id"], values["step"]
        with transaction(self._engine) as conn:
            conn.execute(sa.update(_S).where(_S.c.id == step.id).values(**values))

    def list_steps(self, pipeline_run_id: str) -> list[StepRun]:
        with transaction(self._engine, readonly=True) as conn:
            rows = conn.execute(
                sa.select(_S).where(_S.c.pipeline_run_id == pipeline_run_id).order_by(_S.c.id)
            ).all()
        return [_step(r) for r in rows]

    # -- cache -----------------------------------------------------------------------------

    def get_cache(self, key: str) -> CacheEntry | None:
        with transaction(self._engine, readonly=True) as conn:
            row = conn.execute(sa.select(_C).where(_C.c.key == key)).first()
        if row is None:
            return None
        return CacheEntry(
            key=row.key,
            step=row.step,
            digest=row.digest,
            format=row.format,
            outputs=json.loads(row.outputs),
            step_run_id=row.step_run_id,
            created_at=int(row.created_at),
        )

    def put_cache(self, entry: CacheEntry) -> None:
        values = {
            "step": entry.step,
            "digest": entry.digest,
            "format": entry.format,
            "outputs": _dumps(dict(entry.outputs)),
            "step_run_id": entry.step_run_id,
            "created_at": entry.created_at,
        }
        with transaction(self._engine) as conn:
            updated = conn.execute(sa.update(_C).where(_C.c.key == entry.key).values(**values))
            if updated.rowcount == 0:
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(_C).values(key=entry.key, **values))
                except IntegrityError:  # a concurrent run cached it first: keep theirs
                    return
            self._refs.remove_owner("step_cache", entry.key, conn)  # a replaced result
            self._refs.add([BlobRef(entry.digest, "pipeline", "step_cache", entry.key)], conn)
