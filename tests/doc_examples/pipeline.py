"""Prepares ``syllabus pipeline`` and ``syllabus agent`` examples: ``flows.py`` defines
pipeline ``numbers`` (steps load -> square -> total, params n and power) with a trigger
on dataset ``numbers``; except for the example that runs ``flows.py:numbers`` itself, it
has run once, and the dataset has a version the trigger has not seen (the agent fires)."""

from __future__ import annotations

from pathlib import Path

PREFIXES = ("syllabus pipeline", "syllabus agent")

FLOWS = """
from syllabus import pipeline, step
from syllabus.pipelines import dataset, on_dataset


@step
def load(data, n: int = 4):
    return list(range(min(n, len(data.to_pandas()))))


@step
def square(xs, power: int = 2):
    return [x ** power for x in xs]


@step
def total(ys):
    return {"sum": sum(ys)}


@pipeline(name="numbers", triggers=[on_dataset("numbers", name="new-data")])
def numbers(n: int = 4, power: int = 2):
    return total(square(load(dataset("numbers@latest"), n=n), power=power))
"""


def prepare(workdir: Path, example: str) -> None:
    from syllabus import Client

    (workdir / "flows.py").write_text(FLOWS)
    (workdir / "numbers.csv").write_text("a\n1\n2\n3\n4\n5\n")
    with Client(cwd=workdir) as client:
        client.add_dataset("numbers", workdir / "numbers.csv")
        if "flows.py:numbers" in example:
            return
        client.run_pipeline("flows.py:numbers", executor="inline")
        (workdir / "numbers.csv").write_text("a\n1\n2\n3\n4\n5\n6\n")
        client.add_dataset("numbers", workdir / "numbers.csv")
