"""The deploy store on SQLite and PostgreSQL: the only module with deployment SQL."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from syllabus._utils.ids import new_id
from syllabus.deploy.models import STATUSES, Deployment, Revision, RevisionSpec
from syllabus.errors import InvalidArgumentError, NotFoundError
from syllabus.meta import transaction
from syllabus.meta.tables.deploy import deployment_revisions, deployments
from syllabus.meta.tables.registry import model_versions

__all__ = ["SqlDeployStore"]

_D = deployments
_R = deployment_revisions
_V = model_versions
_RETRIES = 5


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _json(value: Mapping[str, Any] | None) -> str | None:
    # default=str: YAML dates in a monitoring block are kept as their text
    return None if value is None else json.dumps(dict(value), sort_keys=True, default=str)


def _revision(row: Any, name: str, env: str) -> Revision:
    return Revision(
        id=row.id,
        name=name,
        env=env,
        revision=int(row.revision),
        status=row.status,
        action=row.action,
        target=row.target,
        model_version_id=row.model_version_id,
        model_ref=row.model_ref,
        spec=row.spec,
        config=json.loads(row.config),
        created_at=int(row.created_at),
        created_by=row.created_by,
        updated_at=int(row.updated_at),
        based_on=row.based_on,
        canary_version_id=row.canary_version_id,
        canary_ref=row.canary_ref,
        canary_percent=row.canary_percent,
        shadow_version_id=row.shadow_version_id,
        shadow_ref=row.shadow_ref,
        monitoring=None if row.monitoring is None else json.loads(row.monitoring),
        runtime={} if row.runtime is None else json.loads(row.runtime),
        reason=row.reason,
    )


def _joined() -> sa.Select[Any]:
    return sa.select(_R, _D.c.name, _D.c.env).join(_D, _D.c.id == _R.c.deployment_id)


class SqlDeployStore:
    """:class:`~syllabus.deploy.store.DeployStore` over an engine at schema head."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- writing -------------------------------------------------------------------------

    def create_revision(self, name: str, env: str, spec: RevisionSpec, actor: str) -> Revision:
        for attempt in range(_RETRIES):
            try:
                return self._create(name, env, spec, actor)
            except IntegrityError:  # another writer created the deployment first
                if attempt == _RETRIES - 1:
                    raise
                time.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    def _create(self, name: str, env: str, spec: RevisionSpec, actor: str) -> Revision:
        now = _now_ms()
        with transaction(self._engine) as conn:
            named = (spec.model_version_id, spec.canary_version_id, spec.shadow_version_id)
            wanted = sorted({v for v in named if v is not None})
            found = set(conn.execute(sa.select(_V.c.id).where(_V.c.id.in_(wanted))).scalars())
            missing = [v for v in wanted if v not in found]
            if missing:
                raise NotFoundError(
                    f"model version {missing[0]!r} not found (a deployment revision names the "
                    "model versions it serves)"
                )
            did = conn.execute(
                sa.select(_D.c.id).where(_D.c.name == name, _D.c.env == env)
            ).scalar()
            if did is None:
                did = new_id()
                conn.execute(
                    sa.insert(_D).values(
                        id=did,
                        name=name,
                        env=env,
                        live_revision=None,
                        latest_revision=1,
                        created_at=now,
                        created_by=actor,
                        updated_at=now,
                    )
                )
            else:
                # The update locks the deployment row: concurrent applies get 1, 2, 3 ...
                conn.execute(
                    sa.update(_D)
                    .where(_D.c.id == did)
                    .values(latest_revision=_D.c.latest_revision + 1, updated_at=now)
                )
            number = int(
                conn.execute(sa.select(_D.c.latest_revision).where(_D.c.id == did)).scalar_one()
            )
            rid = new_id()
            conn.execute(
                sa.insert(_R).values(
                    id=rid,
                    deployment_id=did,
                    revision=number,
                    status="pending",
                    action=spec.action,
                    based_on=spec.based_on,
                    target=spec.target,
                    model_version_id=spec.model_version_id,
                    model_ref=spec.model_ref,
                    canary_version_id=spec.canary_version_id,
                    canary_ref=spec.canary_ref,
                    canary_percent=spec.canary_percent,
                    shadow_version_id=spec.shadow_version_id,
                    shadow_ref=spec.shadow_ref,
                    spec=spec.spec,
                    config=_json(spec.config),
                    monitoring=_json(spec.monitoring),
                    runtime=None,
                    reason=None,
                    created_at=now,
                    created_by=actor,
                    updated_at=now,
                )
            )
            row = conn.execute(_joined().where(_R.c.id == rid)).one()
        return _revision(row, name, env)

    def update_revision(
        self,
        name: str,
        env: str,
        revision: int,
        status: str,
        *,
        reason: str | None = None,
        runtime: Mapping[str, Any] | None = None,
        live: bool | None = None,
    ) -> Revision:
        if status not in STATUSES:
            raise InvalidArgumentError(f"unknown status {status!r} ({', '.join(STATUSES)})")
        now = _now_ms()
        with transaction(self._engine) as conn:
            did = self._deployment_id(conn, name, env)
            values: dict[str, Any] = {"status": status, "updated_at": now}
            if reason is not None:
                values["reason"] = reason
            if runtime is not None:
                values["runtime"] = _json(runtime)
            done = conn.execute(
                sa.update(_R)
                .where(_R.c.deployment_id == did, _R.c.revision == revision)
                .values(**values)
            )
            if done.rowcount == 0:
                raise NotFoundError(f"deployment {name} ({env}) has no revision {revision}")
            if live is True:
                conn.execute(
                    sa.update(_D)
                    .where(_D.c.id == did)
                    .values(live_revision=revision, updated_at=now)
                )
            elif live is False:
                conn.execute(
                    sa.update(_D)
                    .where(_D.c.id == did, _D.c.live_revision == revision)
                    .values(live_revision=None, updated_at=now)
                )
            row = conn.execute(
                _joined().where(_R.c.deployment_id == did, _R.c.revision == revision)
            ).one()
        return _revision(row, name, env)

    # -- reading -------------------------------------------------------------------------

    def _deployment_id(self, conn: Connection, name: str, env: str) -> str:
        did = conn.execute(sa.select(_D.c.id).where(_D.c.name == name, _D.c.env == env)).scalar()
        if did is None:
            envs = conn.execute(sa.select(_D.c.env).where(_D.c.name == name)).scalars().all()
            if envs:
                raise NotFoundError(
                    f"deployment {name!r} has no environment {env!r} "
                    f"(it has {', '.join(sorted(envs))})"
                )
            raise NotFoundError(
                f"no deployment named {name!r}; `syllabus deploy status` lists them"
            )
        return str(did)

    def _deployments(self, conn: Connection, where: Any) -> list[Deployment]:
        heads = conn.execute(sa.select(_D).where(where).order_by(_D.c.name, _D.c.env)).all()
        if not heads:
            return []
        wanted = sa.or_(
            *(
                sa.and_(
                    _R.c.deployment_id == d.id,
                    _R.c.revision.in_(
                        [d.latest_revision]
                        + ([d.live_revision] if d.live_revision is not None else [])
                    ),
                )
                for d in heads
            )
        )
        revs = {
            (r.deployment_id, int(r.revision)): r for r in conn.execute(_joined().where(wanted))
        }
        out = []
        for d in heads:
            live = revs.get((d.id, d.live_revision)) if d.live_revision is not None else None
            out.append(
                Deployment(
                    id=d.id,
                    name=d.name,
                    env=d.env,
                    created_at=int(d.created_at),
                    created_by=d.created_by,
                    updated_at=int(d.updated_at),
                    latest=_revision(revs[(d.id, int(d.latest_revision))], d.name, d.env),
                    live=None if live is None else _revision(live, d.name, d.env),
                )
            )
        return out

    def get_deployment(self, name: str, env: str) -> Deployment:
        with transaction(self._engine, readonly=True) as conn:
            self._deployment_id(conn, name, env)
            return self._deployments(conn, sa.and_(_D.c.name == name, _D.c.env == env))[0]

    def list_deployments(self, name: str | None = None) -> list[Deployment]:
        with transaction(self._engine, readonly=True) as conn:
            return self._deployments(conn, sa.true() if name is None else _D.c.name == name)

    def get_revision(self, name: str, env: str, revision: int) -> Revision:
        with transaction(self._engine, readonly=True) as conn:
            did = self._deployment_id(conn, name, env)
            row = conn.execute(
                _joined().where(_R.c.deployment_id == did, _R.c.revision == revision)
            ).first()
            if row is None:
                latest = conn.execute(
                    sa.select(_D.c.latest_revision).where(_D.c.id == did)
                ).scalar_one()
                raise NotFoundError(
                    f"deployment {name} ({env}) has no revision {revision} "
                    f"(revisions are 1 to {latest})"
                )
        return _revision(row, name, env)

    def list_revisions(
        self, name: str, env: str | None = None, *, limit: int = 100
    ) -> list[Revision]:
        stmt = _joined().where(_D.c.name == name)
        if env is not None:
            stmt = stmt.where(_D.c.env == env)
        stmt = stmt.order_by(_R.c.created_at.desc(), _R.c.revision.desc()).limit(limit)
        with transaction(self._engine, readonly=True) as conn:
            if env is not None:
                self._deployment_id(conn, name, env)
            rows = conn.execute(stmt).all()
            if not rows and env is None:
                self._deployment_id(conn, name, "")
        return [_revision(r, r.name, r.env) for r in rows]

    def revisions_of_versions(self, version_ids: tuple[str, ...]) -> list[Revision]:
        ids = list(version_ids)
        stmt = (
            _joined()
            .where(
                sa.or_(
                    _R.c.model_version_id.in_(ids),
                    _R.c.canary_version_id.in_(ids),
                    _R.c.shadow_version_id.in_(ids),
                )
            )
            .order_by(_R.c.created_at.desc(), _R.c.revision.desc())
        )
        with transaction(self._engine, readonly=True) as conn:
            return [_revision(r, r.name, r.env) for r in conn.execute(stmt)]
