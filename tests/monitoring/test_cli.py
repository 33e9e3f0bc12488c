"""``syllabus monitor`` (the CLI in this process): compare files (table, JSON, HTML), rules,
status, report, alerts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from tests.fixtures.cli import Runner
from tests.monitoring._log import write_predictions


def _files(workdir: Path) -> None:
    rng = np.random.default_rng(5)
    n = 3000
    pq.write_table(pa.table({"age": rng.normal(40, 10, n), "city": rng.choice(["a", "b"], n)}),
                   workdir / "ref.parquet")  # fmt: skip
    pcsv.write_csv(pa.table({"age": rng.normal(40, 10, n), "city": rng.choice(["a", "c"], n)}),
                   workdir / "cur.csv")  # fmt: skip


@pytest.mark.slow
def test_compare_files(syllabus_here: Runner, workdir: Path) -> None:
    _files(workdir)
    out = syllabus_here("monitor", "compare", "ref.parquet", "cur.csv", "--html", "r.html")
    assert out.code == 0, out.stderr
    assert "1 of 2 columns drifted (share 0.5): city" in out.stdout
    page = (workdir / "r.html").read_text()
    assert "Plotly.newPlot" in page
    assert "https://" not in page.split("<body>")[1]  # works offline
    doc = json.loads(syllabus_here("monitor", "compare", "ref.parquet", "cur.csv", "--json").stdout)
    city = next(f for f in doc["features"] if f["name"] == "city")
    assert city["new_categories"][0][0] == "c"
    assert city["vanished_categories"] == ["b"]
    missing = syllabus_here("monitor", "compare", "ref.parquet", "cur.csv", "--column", "height")
    assert missing.code == 1
    assert missing.stderr.strip() == "Error: the current data has no column 'height'"


@pytest.mark.slow
def test_monitor_commands(syllabus_here: Runner, workdir: Path) -> None:
    _files(workdir)
    created = syllabus_here("monitor", "create", "m", "--service", "svc", "--reference",
                       "ref.parquet", "--window", "500 rows", "--log-path", "log")  # fmt: skip
    assert created.code == 0, created.stderr
    assert syllabus_here("monitor", "rules", "add", "m", "psi(age) > 0.2").code == 0
    bad = syllabus_here("monitor", "rules", "add", "m", "psi(age) >> 0.2")
    assert bad.code == 1
    assert "alert rule" in bad.stderr
    rng = np.random.default_rng(6)
    write_predictions(workdir / "log", "svc", {"age": rng.normal(60, 10, 500),
                      "city": rng.choice(["a", "b"], 500)}, np.zeros(500), ts_ms=1)  # fmt: skip
    run = syllabus_here("monitor", "run", "m")
    assert run.code == 0, run.stderr
    assert "alert fired: psi(age) > 0.2" in run.stdout
    status = syllabus_here("monitor", "status", "m")
    assert "FIRING psi(age) > 0.2" in status.stdout
    alerts = json.loads(syllabus_here("monitor", "alerts", "m", "--json").stdout)
    assert [a["state"] for a in alerts] == ["firing"]
    assert syllabus_here("monitor", "report", "m", "--last", "3", "--html", "m.html").code == 0
    assert "drift score per feature" in (workdir / "m.html").read_text()
    removed = syllabus_here("monitor", "rules", "remove", "m", "psi(age)>0.2")
    assert removed.code == 0, removed.stderr
    resolved = json.loads(syllabus_here("monitor", "alerts", "--json").stdout)
    assert [a["state"] for a in resolved] == ["resolved"]
