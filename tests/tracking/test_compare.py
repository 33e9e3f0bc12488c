"""compare_runs: params that differ, metrics side by side."""

from __future__ import annotations

from pathlib import Path

from syllabus import Client, init_workspace


def test_compare_runs(workdir: Path) -> None:
    init_workspace(workdir)
    with Client() as client:
        a = client.create_run("exp", params={"lr": 0.1, "model": "rf"})
        b = client.create_run("exp", params={"lr": 0.2, "model": "rf", "depth": 3})
        client.log_metric(a.id, "auc", 0.8)
        client.log_metric(b.id, "auc", 0.9)
        client.log_metric(b.id, "loss", 0.3)
        for run in (a, b):
            client.end_run(run.id)
        result = client.compare_runs([a.id, b.id])
        everything = client.compare_runs([a.id, b.id], all_params=True)
    assert [r.id for r in result.runs] == [a.id, b.id]
    assert result.params == (("depth", (None, "3")), ("lr", ("0.1", "0.2")))
    assert result.metrics == (("auc", (0.8, 0.9)), ("loss", (None, 0.3)))
    assert [k for k, _ in everything.params] == ["depth", "lr", "model"]
