"""The evaluation store Protocol: what the service needs from metadata storage."""

from __future__ import annotations

from typing import Protocol

from syllabus.evaluation.models import Evaluation, EvaluationSpec

__all__ = ["EvaluationStore"]


class EvaluationStore(Protocol):
    """Evaluation records; the results blob is referenced in the same transaction."""

    def add(self, spec: EvaluationSpec, actor: str) -> Evaluation:
        """Store a new evaluation and declare its results blob (kind ``evaluation``)."""
        ...

    def get(self, ref: str) -> Evaluation:
        """An evaluation by id or unique id prefix; NotFoundError otherwise."""
        ...

    def list_evaluations(
        self,
        *,
        model_version_ids: tuple[str, ...] | None = None,
        limit: int = 100,
    ) -> list[Evaluation]:
        """Evaluations, newest first (of these model versions, as candidate or champion)."""
        ...

    def find(
        self,
        model_version_id: str,
        champion_version_id: str | None,
        dataset_version_id: str | None = None,
        target: str | None = None,
    ) -> Evaluation | None:
        """The newest evaluation of a candidate against a champion (on a dataset version
        and target, when given)."""
        ...
