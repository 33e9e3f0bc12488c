"""Prepares ``syllabus monitor`` examples: reference and current files, a monitor
``churn-local`` over a prediction log of service ``churn`` with one processed window."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PREFIXES = ("syllabus monitor",)


def prepare(workdir: Path, example: str) -> None:
    from syllabus import Client
    from tests.monitoring._log import write_predictions

    rng = np.random.default_rng(7)
    n = 2000
    ref = pa.table({"age": rng.normal(40, 10, n), "city": rng.choice(["a", "b", "c"], n)})
    pq.write_table(ref, workdir / "reference.parquet")
    cur = pa.table({"age": rng.normal(46, 10, n), "city": rng.choice(["a", "b", "c"], n)})
    pq.write_table(cur, workdir / "current.parquet")
    if example.startswith(
        ("syllabus monitor create", "syllabus monitor compare", "syllabus monitor list")
    ):
        return
    with Client(cwd=workdir) as client:
        client.create_monitor("churn-local", service="churn", reference=str(workdir /
                              "reference.parquet"), window="1000 rows",
                              rules=["drift_share > 0.3"])  # fmt: skip
        root = client._predictions_root()
        write_predictions(root, "churn", {"age": rng.normal(48, 10, 1000),
                                          "city": rng.choice(["a", "b", "c"], 1000)},
                          rng.integers(0, 2, 1000), ts_ms=time.time_ns() // 1_000_000)  # fmt: skip
        if not example.startswith("syllabus monitor run"):
            client.run_monitor("churn-local")
