"""The evaluation store on SQLite and PostgreSQL: the only module with evaluation SQL."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from syllabus._utils.ids import MIN_PREFIX, is_id, is_id_prefix, new_id
from syllabus.errors import InvalidArgumentError, NotFoundError
from syllabus.evaluation.models import Comparison, Evaluation, EvaluationSpec, MetricValue
from syllabus.meta import BlobRef, BlobRefs, transaction
from syllabus.meta.tables.evaluation import evaluations
from syllabus.meta.tables.registry import model_versions

__all__ = ["SqlEvaluationStore"]

_E = evaluations
_V = model_versions

_OWNER = "evaluation"


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _summary(spec: EvaluationSpec) -> str:
    return json.dumps(
        {
            "metrics": [
                {
                    "name": m.name,
                    "value": _num(m.value),
                    "low": _num(m.low),
                    "high": _num(m.high),
                    "higher_is_better": m.higher_is_better,
                }
                for m in spec.metrics
            ],
            "comparisons": [
                {
                    "metric": c.metric,
                    "candidate": _num(c.candidate),
                    "champion": _num(c.champion),
                    "delta": _num(c.delta),
                    "low": _num(c.low),
                    "high": _num(c.high),
                    "test": c.test,
                    "statistic": _num(c.statistic),
                    "p_value": _num(c.p_value),
                    "verdict": c.verdict,
                    "higher_is_better": c.higher_is_better,
                    "se": _num(c.se),
                }
                for c in spec.comparisons
            ],
        },
        allow_nan=False,
    )


def _row(row: Any) -> Evaluation:
    summary = json.loads(row.summary)
    return Evaluation(
        id=row.id,
        model_version_id=row.model_version_id,
        model_ref=row.model_ref,
        dataset_version_id=row.dataset_version_id,
        dataset_ref=row.dataset_ref,
        target=row.target,
        task=row.task,
        rows=int(row.rows),
        confidence=float(row.confidence),
        resamples=int(row.resamples),
        results=row.results,
        created_at=int(row.created_at),
        created_by=row.created_by,
        metrics=tuple(MetricValue(**m) for m in summary["metrics"]),
        comparisons=tuple(Comparison(**c) for c in summary["comparisons"]),
        champion_version_id=row.champion_version_id,
        champion_ref=row.champion_ref,
        slice_column=row.slice_column,
        latency_ms_per_row=row.latency_ms_per_row,
    )


class SqlEvaluationStore:
    """:class:`~syllabus.evaluation.store.EvaluationStore` over an engine at schema head."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._refs = BlobRefs(engine)

    def add(self, spec: EvaluationSpec, actor: str) -> Evaluation:
        eid = new_id()
        values = {
            "id": eid,
            "model_version_id": spec.model_version_id,
            "model_ref": spec.model_ref,
            "champion_version_id": spec.champion_version_id,
            "champion_ref": spec.champion_ref,
            "dataset_version_id": spec.dataset_version_id,
            "dataset_ref": spec.dataset_ref,
            "target": spec.target,
            "slice_column": spec.slice_column,
            "task": spec.task,
            "rows": spec.rows,
            "confidence": spec.confidence,
            "resamples": spec.resamples,
            "latency_ms_per_row": _num(spec.latency_ms_per_row),
            "summary": _summary(spec),
            "results": spec.results,
            "created_at": time.time_ns() // 1_000_000,
            "created_by": actor,
        }
        wanted = {spec.model_version_id, spec.champion_version_id or spec.model_version_id}
        with transaction(self._engine) as conn:
            found = set(
                conn.execute(sa.select(_V.c.id).where(_V.c.id.in_(sorted(wanted)))).scalars()
            )
            missing = sorted(wanted - found)
            if missing:
                raise NotFoundError(
                    f"model version {missing[0]!r} not found (an evaluation names the model "
                    "versions it compares)"
                )
            conn.execute(sa.insert(_E).values(**values))
            self._refs.add([BlobRef(spec.results, "evaluation", _OWNER, eid)], conn)
            row = conn.execute(sa.select(_E).where(_E.c.id == eid)).one()
        return _row(row)

    def get(self, ref: str) -> Evaluation:
        ref = ref.strip().lower()
        if is_id(ref):
            where = _E.c.id == ref
        elif is_id_prefix(ref):
            where = sa.and_(_E.c.id >= ref, _E.c.id < ref + "g")
        else:
            raise NotFoundError(
                f"evaluation {ref!r} not found (ids are hex; give at least {MIN_PREFIX} characters)"
            )
        with transaction(self._engine, readonly=True) as conn:
            rows = conn.execute(sa.select(_E).where(where).limit(2)).all()
        if not rows:
            raise NotFoundError(
                f"evaluation {ref!r} not found; `syllabus evaluations list` shows them"
            )
        if len(rows) > 1:
            raise InvalidArgumentError(
                f"evaluation id prefix {ref!r} is ambiguous; give more characters"
            )
        return _row(rows[0])

    def list_evaluations(
        self,
        *,
        model_version_ids: tuple[str, ...] | None = None,
        limit: int = 100,
    ) -> list[Evaluation]:
        stmt = sa.select(_E).order_by(_E.c.created_at.desc(), _E.c.id.desc()).limit(limit)
        if model_version_ids is not None:
            ids = list(model_version_ids)
            stmt = stmt.where(
                sa.or_(_E.c.model_version_id.in_(ids), _E.c.champion_version_id.in_(ids))
            )
        with transaction(self._engine, readonly=True) as conn:
            return [_row(r) for r in conn.execute(stmt)]

    def find(
        self,
        model_version_id: str,
        champion_version_id: str | None,
        dataset_version_id: str | None = None,
        target: str | None = None,
    ) -> Evaluation | None:
        stmt = (
            sa.select(_E)
            .where(
                _E.c.model_version_id == model_version_id,
                _E.c.champion_version_id.is_(None)
                if champion_version_id is None
                else _E.c.champion_version_id == champion_version_id,
            )
            .order_by(_E.c.created_at.desc(), _E.c.id.desc())
            .limit(1)
        )
        if dataset_version_id is not None:
            stmt = stmt.where(_E.c.dataset_version_id == dataset_version_id)
        if target is not None:
            stmt = stmt.where(_E.c.target == target)
        with transaction(self._engine, readonly=True) as conn:
            row = conn.execute(stmt).first()
        return None if row is None else _row(row)
