"""Prepares ``syllabus maturity`` examples: one tracked run (the workspace is at level 0)."""

from __future__ import annotations

from pathlib import Path

PREFIXES = ("syllabus maturity",)


def prepare(workdir: Path, example: str) -> None:
    from syllabus import Client

    with Client(cwd=workdir) as client:
        run = client.create_run("examples")
        client.log_metric(run.id, "acc", 0.9)
        client.end_run(run.id)
