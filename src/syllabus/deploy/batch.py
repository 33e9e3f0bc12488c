"""Batch scoring: a model version over a dataset version, in chunks, into a new dataset
version.

The input table is cut into chunks of ``chunk_rows`` rows (Arrow slices, no copies);
each chunk is scored on a local process pool (``executor="local"``) or as Ray tasks
(``executor="ray"``, the ``ray`` extra), in a worker that loads the model once and keeps
it. Results come back in order and are appended to one Parquet file: the input columns,
``prediction`` and, for classifiers, ``score`` (the probability of the predicted class;
of the positive class for two classes), the same outputs the server logs. The file becomes
a new version of the output dataset.

Lineage: the scoring is a tracked run (experiment ``batch-scoring``) whose inputs are the
model version (role ``model``) and the input dataset version (role ``input``) and which
records the new version as role ``output``, so ``Client.dataset_lineage`` of the output
finds the run, and the run names both sources.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

from syllabus.errors import InvalidArgumentError, TargetUnavailableError
from syllabus.types import ProgressCallback, null_progress

__all__ = ["EXECUTORS", "BatchData", "BatchJob", "BatchResult", "run_batch", "score_chunk"]

log = logging.getLogger(__name__)

EXECUTORS: Final = ("local", "ray")
OUTPUT_FILE: Final = "scored.parquet"


@dataclass(frozen=True, slots=True)
class BatchJob:
    """What to score with: the model version's folder and how to run."""

    model_ref: str
    model_version_id: str
    model_folder: Path
    model_path: str
    model_digest: str
    signature: Mapping[str, Any] | None
    chunk_rows: int = 100_000
    executor: str = "local"
    workers: int | None = None
    trust: bool = False


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The new dataset version and how the scoring went."""

    output: Any  # DatasetVersion
    model_ref: str
    data_ref: str
    rows: int
    chunks: int
    run_id: str
    seconds: float
    executor: str


class BatchData(Protocol):
    """Datasets and runs, supplied by the client."""

    def read_table(self, version: Any) -> Any:
        """The dataset version as one pyarrow Table."""
        ...

    def add_table(self, name: str, path: Path, message: str) -> Any:
        """A new version of dataset ``name`` from a Parquet file; the DatasetVersion."""
        ...

    def start_run(self, name: str, params: dict[str, Any]) -> str: ...

    def end_run(self, run_id: str, ok: bool, inputs: list[Any], error: str | None) -> None: ...


# -- in the worker ---------------------------------------------------------------------

_LOADED: dict[tuple[str, str], Any] = {}


def _load(folder: str, model_path: str, digest: str, trust: bool) -> Any:
    """The model, loaded once per worker process (the content id guard applies)."""
    key = (folder, digest)
    model = _LOADED.get(key)
    if model is None:
        from syllabus.registry.packaging.model import load_model_folder

        model = load_model_folder(
            folder, trust=trust, trusted=lambda rel, d: rel == model_path and d == digest
        )
        _LOADED[key] = model
    return model


def _features(model: Any, chunk: Any) -> Any:
    signature = model.signature
    names = chunk.column_names
    if signature is not None and signature.inputs.tensor is not None:
        return np.column_stack(
            [chunk.column(n).to_numpy(zero_copy_only=False).astype(np.float64) for n in names]
        )
    wanted = names
    if signature is not None and signature.inputs.columns:
        wanted = [c.name for c in signature.inputs.columns]
        missing = [n for n in wanted if n not in names]
        if missing:
            raise InvalidArgumentError(
                f"the data has no column {missing[0]!r} that the model takes "
                f"(it has {', '.join(names[:10])})"
            )
    return {n: chunk.column(n).to_numpy(zero_copy_only=False) for n in wanted}


def score_chunk(
    folder: str, model_path: str, digest: str, trust: bool, chunk: Any
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
    """Predictions (and classifier scores) for one Arrow table chunk."""
    model = _load(folder, model_path, digest, trust)
    features = _features(model, chunk)
    predicted = np.asarray(model.predict(features))
    if predicted.ndim > 1:
        predicted = predicted.reshape(len(predicted), -1)[:, 0]
    score = None
    classes = model.classes
    if classes is not None:
        proba = model.predict_proba(features)
        if proba is not None:
            proba = np.asarray(proba, dtype=np.float64)
            if len(classes) == 2:
                score = proba[:, 1]
            else:
                index = {c: i for i, c in enumerate(classes)}
                cols = np.array([index.get(p, 0) for p in predicted.tolist()])
                score = proba[np.arange(len(cols)), cols]
    return predicted, score


# -- in the caller ---------------------------------------------------------------------

Scorer = Callable[[Any], tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]]


def _chunks(table: Any, rows: int) -> Iterator[Any]:
    for start in range(0, table.num_rows, rows):
        yield table.slice(start, rows)


def _local(job: BatchJob, table: Any, workers: int) -> Iterator[Any]:
    """Results in chunk order from a pool of spawned processes (at most 2 per worker in
    flight, so memory stays bounded); in this process when there is one worker."""
    import multiprocessing
    from concurrent.futures import Future, ProcessPoolExecutor

    args = (str(job.model_folder), job.model_path, job.model_digest, job.trust)
    if workers == 1:
        for chunk in _chunks(table, job.chunk_rows):
            yield score_chunk(*args, chunk)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[Future[Any]] = deque()
        for chunk in _chunks(table, job.chunk_rows):
            pending.append(pool.submit(score_chunk, *args, chunk))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _ray(job: BatchJob, table: Any, workers: int) -> Iterator[Any]:
    """Results in chunk order from Ray tasks (on the cluster ``ray.init`` connects to;
    a local one when none is running)."""
    try:
        import ray
    except ImportError:
        raise TargetUnavailableError(
            "the ray executor needs Ray: pip install 'syllabus[ray]'"
        ) from None
    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    remote = ray.remote(score_chunk)
    args = (str(job.model_folder), job.model_path, job.model_digest, job.trust)
    pending: deque[Any] = deque()
    for chunk in _chunks(table, job.chunk_rows):
        pending.append(remote.remote(*args, chunk))
        if len(pending) >= 2 * workers:
            yield ray.get(pending.popleft())
    while pending:
        yield ray.get(pending.popleft())


def _output(chunk: Any, predicted: np.ndarray[Any, Any], score: Any) -> Any:
    import pyarrow as pa

    out = chunk
    for name in ("prediction", "score"):
        if name in out.column_names:
            raise InvalidArgumentError(
                f"the data has a column {name!r} already; the scores would overwrite it"
            )
    values = predicted.tolist() if predicted.dtype == object else predicted
    out = out.append_column("prediction", pa.array(values))
    if score is not None:
        out = out.append_column("score", pa.array(score, type=pa.float64()))
    return out


def _check_columns(job: BatchJob, table: Any, ref: str) -> None:
    """Fail before any work when the data lacks a column the model takes."""
    inputs = (job.signature or {}).get("inputs") or {}
    wanted = [c["name"] for c in inputs.get("columns", ())]
    missing = [n for n in wanted if n not in table.column_names]
    if missing:
        raise InvalidArgumentError(
            f"{job.model_ref} cannot score {ref}: the data has no column {missing[0]!r} "
            f"(it has {', '.join(table.column_names[:10])})"
        )
    for name in ("prediction", "score"):
        if name in table.column_names:
            raise InvalidArgumentError(
                f"{ref} has a column {name!r} already; the scores would overwrite it"
            )


def run_batch(
    job: BatchJob,
    source: Any,
    output: str,
    data: BatchData,
    *,
    progress: ProgressCallback = null_progress,
) -> BatchResult:
    """Score dataset version ``source`` into a new version of dataset ``output``."""
    import pyarrow.parquet as pq

    if job.executor not in EXECUTORS:
        raise InvalidArgumentError(f"unknown executor {job.executor!r} ({', '.join(EXECUTORS)})")
    if job.chunk_rows < 1:
        raise InvalidArgumentError("chunk_rows must be at least 1")
    table = data.read_table(source)
    _check_columns(job, table, source.ref)
    total = int(table.num_rows)
    chunks = max(1, -(-total // job.chunk_rows))
    workers = job.workers or min(os.cpu_count() or 1, chunks)
    run_id = data.start_run(
        f"score {source.ref} with {job.model_ref}",
        {
            "model": job.model_ref,
            "data": source.ref,
            "output": output,
            "chunk_rows": job.chunk_rows,
            "executor": job.executor,
        },
    )
    from syllabus.tracking.models import RunInput

    inputs = [
        RunInput("model", job.model_version_id, name=job.model_ref, digest=job.model_digest,
                 role="model"),
        RunInput("dataset", source.id, name=source.ref, digest=source.tree, role="input"),
    ]  # fmt: skip
    began = time.perf_counter()
    try:
        progress(0, total)
        with tempfile.TemporaryDirectory(prefix="syllabus-batch-") as tmp:
            path = Path(tmp) / OUTPUT_FILE
            results = (_ray if job.executor == "ray" else _local)(job, table, workers)
            writer = None
            try:
                for chunk, (predicted, score) in zip(
                    _chunks(table, job.chunk_rows), results, strict=False
                ):
                    scored = _output(chunk, predicted, score)
                    if writer is None:
                        writer = pq.ParquetWriter(path, scored.schema)
                    writer.write_table(scored)
                    progress(int(chunk.num_rows), total)
                if writer is None:  # no rows: an empty table with the output columns
                    empty = _output(table, np.empty(0), None)
                    pq.write_table(empty, path)
            finally:
                if writer is not None:
                    writer.close()
            version = data.add_table(
                output,
                path,
                f"scored by {job.model_ref} from {source.ref} (run {run_id[:8]})",
            )
    except BaseException as exc:
        data.end_run(run_id, False, inputs, str(exc) or type(exc).__name__)
        raise
    inputs.append(RunInput("dataset", version.id, name=version.ref, digest=version.tree,
                           role="output"))  # fmt: skip
    data.end_run(run_id, True, inputs, None)
    return BatchResult(
        output=version,
        model_ref=job.model_ref,
        data_ref=source.ref,
        rows=total,
        chunks=chunks if total else 0,
        run_id=run_id,
        seconds=time.perf_counter() - began,
        executor=job.executor,
    )
