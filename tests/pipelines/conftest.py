from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syllabus import Client

STEPS = """
from syllabus.pipelines import dataset, pipeline, step

SCALE = 1


def helper(x):
    return x * SCALE


@step
def load(n: int = 4):
    return list(range(n))


@step
def square(xs, power: int = 2, ctx=None):
    if ctx is not None:
        ctx.log_metric("count", len(xs))
    return [helper(x) ** power for x in xs]


@step
def total(ys):
    return {"sum": sum(ys)}


@step
def side(n: int = 4):
    return n * 10


@pipeline(name="NAME")
def numbers(n: int = 4, power: int = 2):
    xs = load(n=n)
    ys = square(xs, power=power)
    side(n=n)
    return total(ys)
"""


@pytest.fixture
def client(workdir: Path) -> Iterator[Client]:
    c = Client(cwd=workdir)
    c.open()
    yield c
    c.close()


@pytest.fixture
def steps_module(workdir: Path) -> Iterator[Callable[[str], str]]:
    """Write a steps module in the project folder; returns its (unique) module name."""
    names: list[str] = []
    path_before = list(sys.path)

    def write(text: str = STEPS, name: str | None = None) -> str:
        module = name or f"steps_{uuid.uuid4().hex[:10]}"
        (workdir / f"{module}.py").write_text(textwrap.dedent(text).replace("NAME", module))
        names.append(module)
        return module

    yield write
    for module in names:
        sys.modules.pop(module, None)
    sys.path[:] = path_before
