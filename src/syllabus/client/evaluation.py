"""Evaluation on the :class:`~syllabus.client.Client` (a mixin): champion versus
challenger with intervals and paired tests, stored records and reports."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syllabus.client.datasets import DataVersion
    from syllabus.client.local import LocalBackend
    from syllabus.datasets import DatasetVersion
    from syllabus.evaluation.models import Evaluation
    from syllabus.evaluation.service import EvaluationService
    from syllabus.registry.service import RegistryService

__all__ = ["EvaluationAPI"]


class _Data:
    """Dataset versions and their tables, for the evaluation service."""

    def __init__(
        self, get: Callable[[str], DatasetVersion], handle: Callable[[str], DataVersion]
    ) -> None:
        self._get = get
        self._handle = handle

    def resolve_data(self, ref: str) -> DatasetVersion:
        return self._get(ref)

    def scan(self, ref: str, batch_rows: int) -> tuple[DatasetVersion, list[str], Iterator[Any]]:
        """The version, its column names and its rows in record batches, read lazily
        (a dataset larger than memory streams through)."""
        import pyarrow.dataset as ds

        version = self._handle(ref)
        paths, fmt = version._tabular(None)
        dataset = ds.dataset([str(p) for p in paths], format=fmt)
        return version.info, list(dataset.schema.names), iter(dataset.to_batches(
            batch_size=batch_rows, batch_readahead=2, fragment_readahead=1
        ))  # fmt: skip


def _no_progress(advance: int, total: int | None) -> None:
    """No progress reporting (the default)."""


class EvaluationAPI:
    """Evaluations of model versions on dataset versions (mixed into ``Client``)."""

    if TYPE_CHECKING:

        def _open(self, *, write: bool) -> LocalBackend: ...

        def _registry(self, *, write: bool = False) -> RegistryService: ...

        def get_dataset(self, ref: str) -> DatasetVersion: ...

        def dataset(self, ref: str) -> DataVersion: ...

    def _evaluations(
        self, *, write: bool = False, registry: RegistryService | None = None
    ) -> EvaluationService:
        from syllabus.evaluation.service import EvaluationService

        backend = self._open(write=write)
        models = registry if registry is not None else self._registry(write=write)
        return EvaluationService(
            backend.evaluation_store,
            backend.blobs,
            models=models,
            data=_Data(self.get_dataset, self.dataset),
            actor=models.actor,
        )

    def evaluate(
        self,
        model: str,
        data: str,
        target: str,
        *,
        against: str | None = None,
        slice_column: str | None = None,
        task: str | None = None,
        metrics: Mapping[str, Callable[[Any, Any], float]] | None = None,
        confidence: float = 0.95,
        resamples: int = 1000,
        seed: int | None = None,
        trust: bool = False,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> Evaluation:
        """Score model version ``model`` on dataset version ``data`` (labels in column
        ``target``), with a bootstrap interval for every metric; with ``against`` (e.g.
        ``churn@production``) compare both on the same rows with paired tests. The result
        is stored and returned. ``progress(rows, None)`` hears of the rows as they are
        read."""
        from syllabus.errors import InvalidArgumentError
        from syllabus.evaluation.stats import DEFAULT_SEED

        if task not in (None, "classification", "regression"):
            raise InvalidArgumentError(f"task must be classification or regression, not {task!r}")
        return self._evaluations(write=True).evaluate(
            model,
            data,
            target,
            against=against,
            slice_column=slice_column,
            task=task,  # type: ignore[arg-type]
            metrics=metrics,
            confidence=confidence,
            resamples=resamples,
            seed=DEFAULT_SEED if seed is None else seed,
            trust=trust,
            progress=progress if progress is not None else _no_progress,
        )

    def get_evaluation(self, ref: str) -> Evaluation:
        """An evaluation by id (or a unique prefix of at least 6 characters)."""
        return self._evaluations().get(ref)

    def list_evaluations(self, model: str | None = None, *, limit: int = 100) -> list[Evaluation]:
        """Evaluations, newest first; those of one model version (``churn@3``) when given."""
        return self._evaluations().list_evaluations(model, limit=limit)

    def evaluation_results(self, ref: str) -> dict[str, Any]:
        """The full results of an evaluation: per-class metrics, curves, slices."""
        service = self._evaluations()
        return service.results(service.get(ref))

    def evaluation_report(self, ref: str) -> str:
        """A self-contained HTML report of an evaluation."""
        service = self._evaluations()
        return service.report_html(service.get(ref))
