"""Evaluation behaviour: score a model version (and a champion) on a labelled dataset
version, with bootstrap intervals, paired tests and per-slice metrics; store the record
and its results; render reports.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np

from syllabus.blobs.digest import Digest
from syllabus.blobs.store import BlobStore
from syllabus.datasets.models import DatasetVersion
from syllabus.errors import InvalidArgumentError, NotFoundError
from syllabus.evaluation import stats
from syllabus.evaluation.metrics import (
    CustomMetric,
    MetricSamples,
    Scored,
    Task,
    bootstrap,
    infer_task,
    score_classification,
    score_regression,
)
from syllabus.evaluation.models import Comparison, Evaluation, EvaluationSpec, MetricValue
from syllabus.evaluation.store import EvaluationStore
from syllabus.registry.models import ModelVersion
from syllabus.registry.packaging.model import LoadedModel
from syllabus.types import ProgressCallback, null_progress

__all__ = ["DataSource", "EvaluationService", "ModelSource"]

log = logging.getLogger(__name__)
Array = np.ndarray[Any, Any]
_BATCH: Final = 100_000
_MAX_SLICES: Final = 50
RESULTS_FORMAT: Final = "syllabus-evaluation"


class ModelSource(Protocol):
    """What evaluation reads from the registry (``RegistryService`` has it)."""

    def get_version(self, ref: str) -> ModelVersion: ...

    def load(self, ref: str, *, trust: bool = False) -> LoadedModel: ...


class DataSource(Protocol):
    """Labelled data: a dataset version, its column names and its rows in batches
    (``pyarrow.RecordBatch`` objects, read as they are consumed)."""

    def resolve_data(self, ref: str) -> DatasetVersion: ...

    def scan(
        self, ref: str, batch_rows: int
    ) -> tuple[DatasetVersion, list[str], Iterator[Any]]: ...


@dataclass
class _Predicted:
    version: ModelVersion
    labels: Array
    proba: Array | None
    classes: list[Any] | None
    ms_per_row: float


def _f(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.ndim == 0:  # e.g. the interval of a metric undefined on every resample
            return _jsonable(value.item())
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, float | np.floating):
        return _f(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _numpy(column: Any) -> Array:
    return np.asarray(column.to_numpy(zero_copy_only=False))


@dataclass(frozen=True)
class _InputPlan:
    """Which columns a model takes and how: ``columns`` (a mapping of the named columns),
    ``tensor`` (a float matrix of the columns) or ``frame`` (a mapping of them all)."""

    kind: str
    columns: tuple[str, ...]


def _input_plan(
    version: ModelVersion,
    features: list[str],
    dataset: DatasetVersion,
    slice_column: str | None,
) -> _InputPlan:
    """Check the model's signature against the dataset's columns (before reading rows)."""
    inputs = (version.signature or {}).get("inputs") or {}
    if "columns" in inputs:
        wanted = [c["name"] for c in inputs["columns"]]
        missing = [c for c in wanted if c not in features]
        if missing:
            raise InvalidArgumentError(
                f"dataset {dataset.ref} lacks column(s) {', '.join(map(repr, missing))} "
                f"that {version.ref} takes (its inputs: {', '.join(wanted)})"
            )
        return _InputPlan("columns", tuple(wanted))
    usable = tuple(c for c in features if c != slice_column)
    if "tensor" in inputs:
        shape = inputs["tensor"].get("shape") or []
        width = shape[1] if len(shape) == 2 else None
        if width not in (None, -1) and width != len(usable):
            raise InvalidArgumentError(
                f"{version.ref} takes {width} features; dataset {dataset.ref} has "
                f"{len(usable)} columns besides the target ({', '.join(usable[:10])})"
            )
        return _InputPlan("tensor", usable)
    return _InputPlan("frame", usable)


class _Scorer:
    """One model predicting the batches of a stream; keeps its predictions only."""

    def __init__(self, version: ModelVersion, loaded: LoadedModel, plan: _InputPlan) -> None:
        self.version, self.loaded, self.plan = version, loaded, plan
        self.labels: list[Array] = []
        self.probas: list[Array] = []
        self.rows = 0
        self.elapsed = 0.0

    def predict(self, batch: Any, dataset: DatasetVersion) -> None:
        cols = {c: _numpy(batch.column(c)) for c in self.plan.columns}
        inputs: Any = (
            np.column_stack([np.asarray(v, dtype=np.float64) for v in cols.values()])
            if self.plan.kind == "tensor"
            else cols
        )
        began = time.perf_counter()
        try:
            out = self.loaded.predict(inputs)
            proba = self.loaded.predict_proba(inputs) if self.loaded.classes is not None else None
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(
                f"{self.version.ref} cannot score dataset {dataset.ref}: {exc}"
            ) from exc
        self.elapsed += time.perf_counter() - began
        self.rows += batch.num_rows
        out = np.asarray(out)
        self.labels.append(out.reshape(len(out), -1)[:, 0] if out.ndim > 1 else out)
        if proba is not None:
            self.probas.append(np.asarray(proba, dtype=np.float64))

    def result(self) -> _Predicted:
        labels = self.labels
        return _Predicted(
            self.version,
            np.concatenate(labels) if labels else np.empty(0),
            np.concatenate(self.probas) if self.probas and len(self.probas) == len(labels)
            else None,
            self.loaded.classes,
            self.elapsed * 1000 / max(self.rows, 1),
        )  # fmt: skip


class EvaluationService:
    """Evaluations for one client."""

    def __init__(
        self,
        store: EvaluationStore,
        blobs: BlobStore,
        *,
        models: ModelSource,
        data: DataSource,
        actor: str = "unknown",
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.models = models
        self.data = data
        self.actor = actor

    # -- reading -------------------------------------------------------------------------

    def get(self, ref: str) -> Evaluation:
        """An evaluation by id, unique id prefix, or ``latest`` (the newest)."""
        if ref.strip().lower() == "latest":
            newest = self.store.list_evaluations(limit=1)
            if not newest:
                raise NotFoundError("there are no evaluations yet; `syllabus evaluate` runs one")
            return newest[0]
        return self.store.get(ref)

    def list_evaluations(self, model: str | None = None, *, limit: int = 100) -> list[Evaluation]:
        """Evaluations, newest first; of one model version (``churn@3``) when given."""
        ids = None if model is None else (self.models.get_version(model).id,)
        return self.store.list_evaluations(model_version_ids=ids, limit=limit)

    def results(self, evaluation: Evaluation) -> dict[str, Any]:
        """The full results (curves, per class, slices) stored with an evaluation."""
        doc: dict[str, Any] = json.loads(self.blobs.read_bytes(Digest(evaluation.results)))
        return doc

    def report_html(self, evaluation: Evaluation) -> str:
        """A self-contained HTML report (inline SVG charts)."""
        from syllabus.evaluation.report import render_html

        return render_html(evaluation, self.results(evaluation))

    # -- evaluating ----------------------------------------------------------------------

    def evaluate(
        self,
        model: str,
        data: str,
        target: str,
        *,
        against: str | None = None,
        slice_column: str | None = None,
        task: Task | None = None,
        metrics: Mapping[str, CustomMetric] | None = None,
        confidence: float = 0.95,
        resamples: int = stats.DEFAULT_RESAMPLES,
        seed: int = stats.DEFAULT_SEED,
        min_slice_rows: int = 10,
        trust: bool = False,
        progress: ProgressCallback = null_progress,
    ) -> Evaluation:
        """Score ``model`` on dataset version ``data`` (label column ``target``), against
        ``against`` when given, store the evaluation and return it. ``progress`` hears of
        the rows as they are read and scored."""
        if not 0.5 <= confidence < 1:
            raise InvalidArgumentError(f"confidence must be in [0.5, 1), not {confidence}")
        if resamples < 0:
            raise InvalidArgumentError("resamples must be at least 0")
        candidate = self.models.get_version(model)
        champion = None if against is None else self.models.get_version(against)
        if champion is not None and champion.id == candidate.id:
            raise InvalidArgumentError(f"{candidate.ref} cannot be evaluated against itself")
        dataset, names, batches = self.data.scan(data, _BATCH)
        for column, what in ((target, "target"), (slice_column, "slice")):
            if column is not None and column not in names:
                raise InvalidArgumentError(
                    f"dataset {dataset.ref} has no {what} column {column!r} "
                    f"(columns: {', '.join(names[:20])})"
                )
        features = [c for c in names if c != target]
        versions = [candidate] + ([] if champion is None else [champion])
        scorers = [
            _Scorer(v, self.models.load(v.ref, trust=trust),
                    _input_plan(v, features, dataset, slice_column))
            for v in versions
        ]  # fmt: skip
        y, slice_values = self._stream(
            batches, target, slice_column, scorers, dataset=dataset, progress=progress
        )
        predicted = [sc.result() for sc in scorers]
        n = len(y)
        if n < 2:
            raise InvalidArgumentError(f"dataset {dataset.ref} has {n} labelled rows; need 2")
        output = self._output_type(candidate)
        kind: Task = task or infer_task(
            y, has_proba=predicted[0].proba is not None, output_type=output
        )
        scored = self._score(kind, y, predicted, metrics, curves=True)
        values = bootstrap(scored, n, count=resamples, seed=seed, confidence=confidence)
        comparisons = self._compare(scored, values, y, confidence) if champion is not None else []
        results: dict[str, Any] = {
            "format": RESULTS_FORMAT,
            "format_version": 1,
            "task": kind,
            "rows": n,
            "target": target,
            "dataset": dataset.ref,
            "confidence": confidence,
            "resamples": resamples,
            "seed": seed,
            "classes": scored[0].classes,
            "candidate": self._model_results(predicted[0], scored[0], values[0]),
            "champion": None
            if champion is None
            else self._model_results(predicted[1], scored[1], values[1]),
            "comparisons": [_cmp(c) for c in comparisons],
        }
        if slice_column is not None and slice_values is not None:
            results["slices"] = self._slices(
                kind,
                y=y,
                predicted=predicted,
                column=slice_values,
                name=slice_column,
                custom=metrics,
                resamples=resamples,
                seed=seed,
                confidence=confidence,
                min_rows=min_slice_rows,
            )
        blob = json.dumps(_jsonable(results), allow_nan=False).encode("utf-8")
        digest = self.blobs.put_bytes(blob)
        self.blobs.flush()
        spec = EvaluationSpec(
            model_version_id=candidate.id,
            model_ref=candidate.ref,
            dataset_version_id=dataset.id,
            dataset_ref=dataset.ref,
            target=target,
            task=kind,
            rows=n,
            confidence=confidence,
            resamples=resamples,
            results=str(digest),
            metrics=tuple(_metric_values(scored[0], values[0])),
            comparisons=tuple(comparisons),
            champion_version_id=None if champion is None else champion.id,
            champion_ref=None if champion is None else champion.ref,
            slice_column=slice_column,
            latency_ms_per_row=predicted[0].ms_per_row,
        )
        return self.store.add(spec, self.actor)

    # -- steps ---------------------------------------------------------------------------

    @staticmethod
    def _output_type(version: ModelVersion) -> str | None:
        sig = version.signature or {}
        outputs = sig.get("outputs") or {}
        if "tensor" in outputs:
            return str(outputs["tensor"].get("dtype"))
        cols = outputs.get("columns") or []
        return str(cols[0]["type"]) if len(cols) == 1 else None

    @staticmethod
    def _stream(
        batches: Iterator[Any],
        target: str,
        slice_column: str | None,
        scorers: list[_Scorer],
        *,
        dataset: DatasetVersion,
        progress: ProgressCallback,
    ) -> tuple[Array, Array | None]:
        """Read the rows batch by batch: keep the labels (and slice values), let every
        model predict the batch, drop the features. Rows without a label are left out."""
        import pyarrow.compute as pc

        ys: list[Array] = []
        slices: list[Array] = []
        dropped = 0
        for read in batches:
            batch, labels = read, read.column(target)
            if labels.null_count:
                dropped += labels.null_count
                batch = read.filter(pc.is_valid(labels))
                labels = batch.column(target)
            if batch.num_rows == 0:
                continue
            ys.append(_numpy(labels))
            if slice_column is not None:
                slices.append(_numpy(batch.column(slice_column)))
            for scorer in scorers:
                scorer.predict(batch, dataset)
            progress(read.num_rows, None)
        if dropped:
            log.warning("%s: %d rows without a %s were left out", dataset.ref, dropped, target)
        y = np.concatenate(ys) if ys else np.empty(0)
        sliced = None if slice_column is None else (
            np.concatenate(slices) if slices else np.empty(0, dtype=object)
        )  # fmt: skip
        return y, sliced

    @staticmethod
    def _score(
        kind: Task,
        y: Array,
        predicted: list[_Predicted],
        custom: Mapping[str, CustomMetric] | None,
        *,
        curves: bool,
    ) -> list[Scored]:
        if kind == "regression":
            return [score_regression(y, p.labels, custom=custom, curves=curves) for p in predicted]
        with_proba = all(p.proba is not None for p in predicted)
        classes = predicted[0].classes if with_proba else None
        if with_proba and any(p.classes != classes for p in predicted):
            raise InvalidArgumentError(
                f"{predicted[0].version.ref} and {predicted[1].version.ref} know different "
                f"classes ({predicted[0].classes} vs {predicted[1].classes})"
            )
        if classes is None:
            distinct: set[Any] = set()
            for values in (y, *(p.labels for p in predicted)):
                try:
                    distinct.update(np.unique(values).tolist())
                except TypeError:  # mixed Python objects
                    distinct.update(values.tolist())
            classes = sorted(distinct, key=lambda v: (str(type(v)), v))
        return [
            score_classification(
                y,
                p.labels,
                p.proba if with_proba else None,
                classes,
                custom=custom,
                curves=curves,
            )
            for p in predicted
        ]

    @staticmethod
    def _compare(
        scored: list[Scored],
        values: list[dict[str, MetricSamples]],
        y: Array,
        confidence: float,
    ) -> list[Comparison]:
        cand, champ = scored
        by_name = {m.name: m for m in champ.metrics}
        out: list[Comparison] = []
        for metric in cand.metrics:
            other = by_name.get(metric.name)
            if metric.per_class or other is None:
                continue
            a, b = values[0][metric.name], values[1][metric.name]
            delta = float(a.value) - float(b.value)
            diffs = a.samples - b.samples
            low, high = stats.interval(diffs[:, None], confidence) if len(diffs) else (None, None)
            test = _test(
                metric.test,
                rows_a=metric.rows,
                rows_b=other.rows,
                diffs=diffs,
                positive=metric.positive,
            )
            se = test.se if test.se is not None else (
                float(np.std(diffs[np.isfinite(diffs)], ddof=1))
                if np.isfinite(diffs).sum() > 1 else None
            )  # fmt: skip
            out.append(
                Comparison(
                    metric=metric.name,
                    candidate=_f(a.value),
                    champion=_f(b.value),
                    delta=_f(delta),
                    low=None if low is None else _f(low[0]),
                    high=None if high is None else _f(high[0]),
                    test=test.test,
                    statistic=_f(test.statistic),
                    p_value=_f(test.p_value),
                    verdict=stats.verdict(
                        delta,
                        test.p_value,
                        higher_is_better=metric.higher_is_better,
                        confidence=confidence,
                    ),
                    higher_is_better=metric.higher_is_better,
                    se=_f(se),
                )
            )
        return out

    @staticmethod
    def _model_results(
        predicted: _Predicted, scored: Scored, values: dict[str, MetricSamples]
    ) -> dict[str, Any]:
        per_class = {
            name.removeprefix("per_class."): {"value": v.value, "low": v.low, "high": v.high}
            for name, v in values.items()
            if name.startswith("per_class.")
        }
        return {
            "model": predicted.version.ref,
            "model_version_id": predicted.version.id,
            "latency_ms_per_row": predicted.ms_per_row,
            "metrics": {
                m.name: {
                    "value": values[m.name].value,
                    "low": values[m.name].low,
                    "high": values[m.name].high,
                    "higher_is_better": m.higher_is_better,
                }
                for m in scored.metrics
                if not m.per_class
            },
            "per_class": per_class,
            "confusion": scored.confusion,
            "curves": scored.curves,
        }

    def _slices(
        self,
        kind: Task,
        *,
        y: Array,
        predicted: list[_Predicted],
        column: Array,
        name: str,
        custom: Mapping[str, CustomMetric] | None,
        resamples: int,
        seed: int,
        confidence: float,
        min_rows: int,
    ) -> dict[str, Any]:
        keys = np.asarray(column)
        if keys.dtype.kind == "O":
            keys = np.array(["(missing)" if k is None else str(k) for k in keys.tolist()])
        uniques, inverse, counts = np.unique(
            keys.astype(str), return_inverse=True, return_counts=True
        )
        inverse = inverse.reshape(-1)
        order = np.argsort(-counts, kind="mergesort")
        groups: list[dict[str, Any]] = []
        for i in order[:_MAX_SLICES]:
            value, rows = str(uniques[i]), int(counts[i])
            entry: dict[str, Any] = {"value": value, "rows": rows}
            if rows < min_rows:
                entry["note"] = f"too few rows ({rows} < {min_rows}); not scored"
                groups.append(entry)
                continue
            mask = inverse == i
            sub = [
                _Predicted(
                    p.version,
                    p.labels[mask],
                    None if p.proba is None else p.proba[mask],
                    p.classes,
                    p.ms_per_row,
                )
                for p in predicted
            ]
            scored = self._score(kind, y[mask], sub, custom, curves=False)
            values = bootstrap(scored, rows, count=resamples, seed=seed, confidence=confidence)
            entry["metrics"] = {
                m.name: {"value": values[0][m.name].value, "low": values[0][m.name].low,
                         "high": values[0][m.name].high}
                for m in scored[0].metrics if not m.per_class
            }  # fmt: skip
            if len(values) > 1:
                entry["champion_metrics"] = {
                    m.name: {"value": values[1][m.name].value, "low": values[1][m.name].low,
                             "high": values[1][m.name].high}
                    for m in scored[1].metrics if not m.per_class
                }  # fmt: skip
            groups.append(entry)
        return {"column": name, "groups": groups, "omitted": max(0, len(uniques) - _MAX_SLICES)}


def _cmp(c: Comparison) -> dict[str, Any]:
    return {f: getattr(c, f) for f in Comparison.__slots__}


def _metric_values(scored: Scored, values: dict[str, MetricSamples]) -> list[MetricValue]:
    return [
        MetricValue(
            m.name,
            _f(values[m.name].value),
            _f(values[m.name].low),
            _f(values[m.name].high),
            m.higher_is_better,
        )
        for m in scored.metrics
        if not m.per_class
    ]


def _test(
    kind: str,
    *,
    rows_a: Array | None,
    rows_b: Array | None,
    diffs: Array,
    positive: Array | None,
) -> stats.TestResult:
    if kind == "mcnemar" and rows_a is not None and rows_b is not None:
        return stats.mcnemar(rows_a, rows_b)
    if kind == "delong" and rows_a is not None and rows_b is not None and positive is not None:
        return stats.delong_placements(positive, rows_a, rows_b)[2]
    if kind == "paired_t" and rows_a is not None and rows_b is not None:
        return stats.paired_t(rows_a, rows_b)
    return stats.bootstrap_p(diffs)
