"""Prediction-log segments written by hand, following the contract (tests only)."""

from __future__ import annotations

import itertools
import os
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

_COUNTER = itertools.count()


def _name() -> str:
    """Names sort in write order, as the log's uuid7 names do."""
    return f"seg-{time.time_ns():020d}-{next(_COUNTER):06d}-{uuid.uuid4().hex[:8]}.parquet"


def write_predictions(
    root: Path,
    service: str,
    inputs: dict[str, Any],
    predictions: Any,
    *,
    ts_ms: Any,
    request_ids: list[str] | None = None,
    latency_ms: float | Any = 12.0,
    variant: str = "primary",
    score: Any = None,
) -> Path:
    n = len(predictions)
    folder = root / service / "predictions"
    folder.mkdir(parents=True, exist_ok=True)
    cols: dict[str, Any] = {
        "request_id": pa.array(request_ids or [uuid.uuid4().hex for _ in range(n)]),
        "row": pa.array(np.zeros(n, np.int32)),
        "ts": pa.array(np.broadcast_to(np.asarray(ts_ms, np.int64), (n,)), pa.int64()).cast(
            pa.timestamp("ms", tz="UTC")
        ),
        "model": pa.array([service] * n),
        "version": pa.array(np.ones(n, np.int32)),
        "variant": pa.array([variant] * n),
        "latency_ms": pa.array(np.broadcast_to(np.asarray(latency_ms, np.float64), (n,))),
    }
    for k, v in inputs.items():
        cols[f"in.{k}"] = pa.array(v)
    cols["out.prediction"] = pa.array(predictions)
    cols["out.score"] = pa.array(score if score is not None else [None] * n, pa.float64())
    path = folder / _name()
    tmp = folder / (".tmp-" + path.name)
    pq.write_table(pa.table(cols), tmp)
    os.replace(tmp, path)
    return path


def write_feedback(
    root: Path, service: str, request_ids: list[str], labels: Any, ts_ms: int
) -> Path:
    folder = root / service / "feedback"
    folder.mkdir(parents=True, exist_ok=True)
    n = len(request_ids)
    table = pa.table(
        {
            "request_id": pa.array(request_ids),
            "row": pa.array(np.zeros(n, np.int32)),
            "ts": pa.array(np.full(n, ts_ms, np.int64)).cast(pa.timestamp("ms", tz="UTC")),
            "label": pa.array(labels),
        }
    )
    path = folder / _name()
    pq.write_table(table, path)
    return path
