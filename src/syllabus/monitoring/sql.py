"""The monitoring store on SQLite and PostgreSQL: the only module with monitoring SQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from syllabus._utils.ids import new_id
from syllabus.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from syllabus.meta import BlobRef, BlobRefs, transaction
from syllabus.meta.tables.monitoring import (
    monitor_alerts,
    monitor_events,
    monitor_profiles,
    monitor_rules,
    monitor_segments,
    monitor_windows,
    monitors,
)
from syllabus.monitoring.models import (
    Alert,
    AlertEvent,
    AlertRule,
    Monitor,
    ProfileRecord,
    Window,
    WindowUpdate,
)

__all__ = ["SqlMonitoringStore"]

_M, _P, _S, _W = monitors, monitor_profiles, monitor_segments, monitor_windows
_R, _A, _E = monitor_rules, monitor_alerts, monitor_events
_KIND = "monitoring"
_SETTABLE = ("name", "service", "log_path", "deployment", "env", "model_ref", "reference",
             "profile_id", "window_kind", "window_size", "config")  # fmt: skip
_REQUIRED = ("name", "service", "window_kind", "window_size")


def _now() -> int:
    return time.time_ns() // 1_000_000


def _monitor(row: Any) -> Monitor:
    return Monitor(
        id=row.id,
        name=row.name,
        service=row.service,
        window_kind=row.window_kind,
        window_size=int(row.window_size),
        config=json.loads(row.config),
        rows_seen=int(row.rows_seen),
        created_at=int(row.created_at),
        created_by=row.created_by,
        updated_at=int(row.updated_at),
        log_path=row.log_path,
        deployment=row.deployment,
        env=row.env,
        model_ref=row.model_ref,
        reference=row.reference,
        profile_id=row.profile_id,
    )


def _window(row: Any) -> Window:
    return Window(
        id=row.id,
        monitor_id=row.monitor_id,
        start=int(row.start),
        end=int(row.end),
        rows=int(row.rows),
        closed=bool(row.closed),
        state=row.state,
        summary=json.loads(row.summary),
        labelled=int(row.labelled),
        updated_at=int(row.updated_at),
        labels=row.labels,
    )


def _alert(row: Any) -> Alert:
    return Alert(
        id=row.id,
        monitor_id=row.monitor_id,
        monitor=row.name,
        rule_id=row.rule_id,
        rule=row.rule,
        state=row.state,
        value=row.value,
        window_start=int(row.window_start),
        started_at=int(row.started_at),
        updated_at=int(row.updated_at),
        resolved_at=None if row.resolved_at is None else int(row.resolved_at),
    )


def _event(row: Any) -> AlertEvent:
    return AlertEvent(
        seq=int(row.seq),
        alert_id=row.alert_id,
        monitor_id=row.monitor_id,
        monitor=row.name,
        event=row.event,
        rule=row.rule,
        value=row.value,
        window_start=int(row.window_start),
        created_at=int(row.created_at),
    )


class SqlMonitoringStore:
    """:class:`~syllabus.monitoring.store.MonitoringStore` over an engine at schema head."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._refs = BlobRefs(engine)

    # -- profiles ---------------------------------------------------------------------

    def find_profile(self, key: str) -> ProfileRecord | None:
        with transaction(self._engine, readonly=True) as conn:
            row = conn.execute(sa.select(_P).where(_P.c.key == key)).first()
        return None if row is None else ProfileRecord(**row._asdict())

    def get_profile(self, profile_id: str) -> ProfileRecord:
        with transaction(self._engine, readonly=True) as conn:
            row = conn.execute(sa.select(_P).where(_P.c.id == profile_id)).first()
        if row is None:
            raise NotFoundError(f"reference profile {profile_id} not found")
        return ProfileRecord(**row._asdict())

    def add_profile(
        self, key: str, source: str, rows: int, columns: int, digest: str
    ) -> ProfileRecord:
        pid = new_id()
        with transaction(self._engine) as conn:
            existing = conn.execute(sa.select(_P).where(_P.c.key == key)).first()
            if existing is not None:
                return ProfileRecord(**existing._asdict())
            conn.execute(
                sa.insert(_P).values(id=pid, key=key, source=source[:10_000], rows=rows,
                                     columns=columns, digest=digest, created_at=_now())
            )  # fmt: skip
            self._refs.add([BlobRef(digest, _KIND, "monitor_profile", pid)], conn)
            row = conn.execute(sa.select(_P).where(_P.c.id == pid)).one()
        return ProfileRecord(**row._asdict())

    # -- monitors ---------------------------------------------------------------------

    def _check_values(self, conn: Connection, values: Mapping[str, Any], *, create: bool) -> None:
        """Refuse settings a monitor has no column for, missing ones, an unknown profile."""
        unknown = sorted(set(values) - set(_SETTABLE))
        if unknown:
            raise InvalidArgumentError(
                f"a monitor has no setting {unknown[0]!r}; settings: {', '.join(_SETTABLE)}"
            )
        missing = [k for k in _REQUIRED if values.get(k) is None] if create else []
        if missing:
            raise InvalidArgumentError(f"a monitor needs {', '.join(missing)}")
        profile = values.get("profile_id")
        if (
            profile is not None
            and not conn.execute(sa.select(_P.c.id).where(_P.c.id == str(profile))).first()
        ):
            raise NotFoundError(f"monitor profile {profile!r} not found")

    def _require(self, conn: Connection, monitor_id: str) -> None:
        if not conn.execute(sa.select(_M.c.id).where(_M.c.id == monitor_id)).first():
            raise NotFoundError(f"monitor id {monitor_id!r} not found")

    def create_monitor(self, values: Mapping[str, Any], actor: str) -> Monitor:
        mid = new_id()
        now = _now()
        row = {
            **values,
            "id": mid,
            "config": json.dumps(values.get("config", {}), sort_keys=True),
            "rows_seen": 0,
            "created_at": now,
            "created_by": actor,
            "updated_at": now,
        }
        with transaction(self._engine) as conn:
            self._check_values(conn, values, create=True)
            if conn.execute(sa.select(_M.c.id).where(_M.c.name == values["name"])).first():
                raise AlreadyExistsError(f"monitor {values['name']!r} already exists")
            conn.execute(sa.insert(_M).values(**row))
            return _monitor(conn.execute(sa.select(_M).where(_M.c.id == mid)).one())

    def update_monitor(self, monitor_id: str, values: Mapping[str, Any]) -> Monitor:
        row = dict(values)
        if "config" in row:
            row["config"] = json.dumps(row["config"], sort_keys=True)
        row["updated_at"] = _now()
        with transaction(self._engine) as conn:
            self._check_values(conn, values, create=False)
            if (
                "name" in values
                and conn.execute(
                    sa.select(_M.c.id).where(_M.c.name == values["name"], _M.c.id != monitor_id)
                ).first()
            ):
                raise AlreadyExistsError(f"monitor {values['name']!r} already exists")
            done = conn.execute(sa.update(_M).where(_M.c.id == monitor_id).values(**row))
            if not done.rowcount:
                raise NotFoundError(f"monitor id {monitor_id!r} not found")
            return _monitor(conn.execute(sa.select(_M).where(_M.c.id == monitor_id)).one())

    def get_monitor(self, name: str) -> Monitor:
        with transaction(self._engine, readonly=True) as conn:
            row = conn.execute(sa.select(_M).where(_M.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"monitor {name!r} not found; `syllabus monitor list` shows them")
        return _monitor(row)

    def list_monitors(self) -> list[Monitor]:
        with transaction(self._engine, readonly=True) as conn:
            return [_monitor(r) for r in conn.execute(sa.select(_M).order_by(_M.c.name))]

    def delete_monitor(self, monitor_id: str) -> None:
        with transaction(self._engine) as conn:
            owners = [
                r.id for r in conn.execute(sa.select(_W.c.id).where(_W.c.monitor_id == monitor_id))
            ]
            for wid in owners:
                self._refs.remove_owner("monitor_window", wid, conn)
            for table in (_E, _A, _R, _W, _S):
                conn.execute(sa.delete(table).where(table.c.monitor_id == monitor_id))
            conn.execute(sa.delete(_M).where(_M.c.id == monitor_id))

    # -- runs -------------------------------------------------------------------------

    def acquire(self, monitor_id: str, owner: str, ttl_ms: int) -> bool:
        """Take the monitor's run lock unless another owner holds an unexpired one."""
        now = _now()
        with transaction(self._engine) as conn:
            result = conn.execute(
                sa.update(_M)
                .where(
                    _M.c.id == monitor_id,
                    sa.or_(_M.c.lock_owner.is_(None), _M.c.lock_until < now,
                           _M.c.lock_owner == owner),
                )
                .values(lock_owner=owner, lock_until=now + ttl_ms)
            )  # fmt: skip
            return bool(result.rowcount == 1)

    def release(self, monitor_id: str, owner: str) -> None:
        with transaction(self._engine) as conn:
            conn.execute(
                sa.update(_M)
                .where(_M.c.id == monitor_id, _M.c.lock_owner == owner)
                .values(lock_owner=None, lock_until=None)
            )

    def processed(self, monitor_id: str, kind: str) -> dict[str, int]:
        """Processed segment names of a kind, with their rows."""
        with transaction(self._engine, readonly=True) as conn:
            rows = conn.execute(
                sa.select(_S.c.name, _S.c.rows).where(_S.c.monitor_id == monitor_id,
                                                      _S.c.kind == kind)
            )  # fmt: skip
            return {r.name: int(r.rows) for r in rows}

    def windows(
        self,
        monitor_id: str,
        *,
        starts: Sequence[int] | None = None,
        since: int | None = None,
        closed: bool | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[Window]:
        stmt = sa.select(_W).where(_W.c.monitor_id == monitor_id)
        if starts is not None:
            stmt = stmt.where(_W.c.start.in_(list(starts)))
        if since is not None:
            stmt = stmt.where(_W.c.end > since)
        if closed is not None:
            stmt = stmt.where(_W.c.closed == closed)
        stmt = stmt.order_by(_W.c.start.desc() if newest_first else _W.c.start)
        if limit is not None:
            stmt = stmt.limit(limit)
        with transaction(self._engine, readonly=True) as conn:
            return [_window(r) for r in conn.execute(stmt)]

    def commit_run(
        self,
        monitor_id: str,
        segments: Iterable[tuple[str, str, int]],
        windows: Sequence[WindowUpdate],
        rows_seen: int | None,
    ) -> list[Window]:
        """Record processed segments and write windows in one transaction. A segment
        already recorded (a concurrent run) rolls everything back with ConflictError."""
        from syllabus.errors import ConflictError

        now = _now()
        segs = list(segments)
        with transaction(self._engine) as conn:
            self._require(conn, monitor_id)
            if segs:
                names = [(k, n) for k, n, _ in segs]
                done = conn.execute(
                    sa.select(_S.c.kind, _S.c.name).where(
                        _S.c.monitor_id == monitor_id, _S.c.name.in_([n for _, n in names])
                    )
                ).all()
                if {(r.kind, r.name) for r in done} & set(names):
                    raise ConflictError("another run processed these segments first")
                conn.execute(
                    sa.insert(_S),
                    [{"monitor_id": monitor_id, "kind": k, "name": n, "rows": r,
                      "processed_at": now} for k, n, r in segs],
                )  # fmt: skip
            out = []
            for w in windows:
                existing = conn.execute(
                    sa.select(_W.c.id).where(_W.c.monitor_id == monitor_id, _W.c.start == w.start)
                ).first()
                values = {
                    "end": w.end, "rows": w.rows, "closed": w.closed, "state": w.state,
                    "summary": json.dumps(w.summary, sort_keys=True, allow_nan=False),
                    "labels": w.labels, "labelled": w.labelled, "updated_at": now,
                }  # fmt: skip
                if existing is None:
                    wid = new_id()
                    conn.execute(sa.insert(_W).values(id=wid, monitor_id=monitor_id,
                                                      start=w.start, **values))  # fmt: skip
                else:
                    wid = existing.id
                    conn.execute(sa.update(_W).where(_W.c.id == wid).values(**values))
                    self._refs.remove_owner("monitor_window", wid, conn)
                refs = [BlobRef(w.state, _KIND, "monitor_window", wid)]
                if w.labels:
                    refs.append(BlobRef(w.labels, _KIND, "monitor_window", wid))
                self._refs.add(refs, conn)
                out.append(_window(conn.execute(sa.select(_W).where(_W.c.id == wid)).one()))
            if rows_seen is not None:
                conn.execute(sa.update(_M).where(_M.c.id == monitor_id).values(rows_seen=rows_seen))
        return out

    # -- rules ------------------------------------------------------------------------

    def add_rule(self, monitor_id: str, expr: str, origin: str, actor: str) -> AlertRule:
        with transaction(self._engine) as conn:
            self._require(conn, monitor_id)
            found = conn.execute(
                sa.select(_R).where(_R.c.monitor_id == monitor_id, _R.c.expr == expr)
            ).first()
            if found is not None:
                return AlertRule(**found._asdict())
            rid = new_id()
            conn.execute(sa.insert(_R).values(id=rid, monitor_id=monitor_id, expr=expr,
                                              origin=origin, created_at=_now(),
                                              created_by=actor))  # fmt: skip
            return AlertRule(**conn.execute(sa.select(_R).where(_R.c.id == rid)).one()._asdict())

    def list_rules(self, monitor_id: str) -> list[AlertRule]:
        with transaction(self._engine, readonly=True) as conn:
            rows = conn.execute(
                sa.select(_R).where(_R.c.monitor_id == monitor_id).order_by(_R.c.id)
            )
            return [AlertRule(**r._asdict()) for r in rows]

    def remove_rule(self, rule_id: str) -> None:
        """Delete a rule and resolve its firing alert."""
        now = _now()
        with transaction(self._engine) as conn:
            conn.execute(sa.delete(_R).where(_R.c.id == rule_id))
            conn.execute(
                sa.update(_A)
                .where(_A.c.rule_id == rule_id, _A.c.state == "firing")
                .values(state="resolved", resolved_at=now, updated_at=now)
            )

    # -- alerts -----------------------------------------------------------------------

    def _alert_select(self) -> sa.Select[Any]:
        return sa.select(_A, _M.c.name).join(_M, _M.c.id == _A.c.monitor_id)

    def list_alerts(
        self,
        *,
        monitor_id: str | None = None,
        state: str | None = None,
        limit: int = 1000,
        after: str | None = None,
    ) -> list[Alert]:
        """Alerts newest first; with ``after``, those whose id sorts after it, oldest first."""
        order = _A.c.id.asc() if after is not None else _A.c.id.desc()
        stmt = self._alert_select().order_by(order).limit(limit)
        if after is not None:
            stmt = stmt.where(_A.c.id > after)
        if monitor_id is not None:
            stmt = stmt.where(_A.c.monitor_id == monitor_id)
        if state is not None:
            stmt = stmt.where(_A.c.state == state)
        with transaction(self._engine, readonly=True) as conn:
            return [_alert(r) for r in conn.execute(stmt)]

    def apply_alerts(
        self,
        monitor_id: str,
        fire: Sequence[tuple[AlertRule, float | None, int]],
        keep: Sequence[tuple[str, float | None, int]],
        resolve: Sequence[tuple[str, float | None, int]],
    ) -> list[AlertEvent]:
        """Fire alerts for rules (rule, value, window start) unless one is firing already,
        refresh firing ones (alert id, value, window) and resolve others; returns the
        events recorded."""
        now = _now()
        seqs: list[int] = []
        with transaction(self._engine) as conn:
            self._require(conn, monitor_id)
            for rule, value, start in fire:
                firing = conn.execute(
                    sa.select(_A.c.id).where(_A.c.rule_id == rule.id, _A.c.state == "firing")
                ).first()
                if firing is not None:
                    continue
                aid = new_id()
                conn.execute(sa.insert(_A).values(
                    id=aid, monitor_id=monitor_id, rule_id=rule.id, rule=rule.expr,
                    state="firing", value=value, window_start=start, started_at=now,
                    updated_at=now, resolved_at=None))  # fmt: skip
                seqs.append(self._event(conn, aid, monitor_id, "fired", rule.expr, value, start))
            for aid, value, start in keep:
                conn.execute(sa.update(_A).where(_A.c.id == aid, _A.c.state == "firing")
                             .values(value=value, window_start=start, updated_at=now))  # fmt: skip
            for aid, value, start in resolve:
                done = conn.execute(
                    sa.update(_A).where(_A.c.id == aid, _A.c.state == "firing")
                    .values(state="resolved", value=value, resolved_at=now, updated_at=now)
                )  # fmt: skip
                if done.rowcount:
                    expr = conn.execute(sa.select(_A.c.rule).where(_A.c.id == aid)).scalar_one()
                    seqs.append(self._event(conn, aid, monitor_id, "resolved", expr, value, start))
            if not seqs:
                return []
            rows = conn.execute(
                sa.select(_E, _M.c.name).join(_M, _M.c.id == _E.c.monitor_id)
                .where(_E.c.seq.in_(seqs)).order_by(_E.c.seq)
            )  # fmt: skip
            return [_event(r) for r in rows]

    def _event(  # noqa: PLR0917 - an event row's fields
        self, conn: Connection, aid: str, mid: str, event: str, rule: str, value: float | None,
        start: int,
    ) -> int:  # fmt: skip
        result = conn.execute(
            sa.insert(_E).values(alert_id=aid, monitor_id=mid, event=event, rule=rule,
                                 value=value, window_start=start, created_at=_now())
        )  # fmt: skip
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def events(
        self, *, after: int = 0, monitor_id: str | None = None, limit: int = 1000
    ) -> list[AlertEvent]:
        stmt = (
            sa.select(_E, _M.c.name)
            .join(_M, _M.c.id == _E.c.monitor_id)
            .where(_E.c.seq > after)
            .order_by(_E.c.seq)
            .limit(limit)
        )
        if monitor_id is not None:
            stmt = stmt.where(_E.c.monitor_id == monitor_id)
        with transaction(self._engine, readonly=True) as conn:
            return [_event(r) for r in conn.execute(stmt)]
