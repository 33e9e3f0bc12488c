"""The local process pool and Ray run the same pipeline code to the same results."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syllabus import Client
from syllabus.errors import InvalidArgumentError

PARALLEL = """
from syllabus.pipelines import dataset, pipeline, step


@step
def count_rows(data):
    return len(data.to_pandas())


@step
def power(n: int, p: int = 2, ctx=None):
    ctx.log_metric("n", n)
    return n ** p


@step
def combine(a, b, rows):
    return {"a": a, "b": b, "rows": rows, "pid_free": True}


@pipeline(name="NAME")
def fanout(p: int = 2):
    rows = count_rows(dataset("numbers@latest"))
    combine(power(3, p=p), power(4, p=p), rows)
"""


def _prepare(client: Client, workdir: Path) -> None:
    (workdir / "numbers.csv").write_text("a\n1\n2\n3\n")
    client.add_dataset("numbers", workdir / "numbers.csv")


def _summary(client: Client, result: object) -> tuple[object, ...]:
    steps = result.steps  # type: ignore[attr-defined]
    metrics = {
        s.step: {k: m.value for k, m in client.get_run(s.run_id).metrics.items()} for s in steps
    }
    return (
        result.value("combine"),  # type: ignore[attr-defined]
        {s.step: (s.status.value, s.cache_key) for s in steps},
        metrics,
    )


def test_local_process_pool(
    client: Client, steps_module: Callable[..., str], workdir: Path
) -> None:
    _prepare(client, workdir)
    mod = steps_module(PARALLEL)
    result = client.run_pipeline(f"{mod}:fanout", executor="local", max_workers=2)
    assert result.ok, [s.error for s in result.steps]
    assert result.value("combine") == {"a": 9, "b": 16, "rows": 3, "pid_free": True}
    assert result.steps[0].step == "count_rows"
    inline = client.run_pipeline(mod, executor="inline", force=["power", "power_2"])
    assert inline.step("power").cache_key == result.step("power").cache_key
    with pytest.raises(InvalidArgumentError, match="unknown executor 'dask'"):
        client.run_pipeline(mod, executor="dask")


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    try:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    except Exception as exc:
        pytest.skip(f"Ray cannot start here: {exc}")
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_gives_the_same_results_as_local(
    ray_instance: None, tmp_path: Path, steps_module: Callable[..., str], workdir: Path
) -> None:
    mod = steps_module(PARALLEL)
    summaries = []
    for executor in ("local", "ray"):
        folder = tmp_path / executor
        folder.mkdir()
        (folder / f"{mod}.py").write_text((workdir / f"{mod}.py").read_text())
        with Client(cwd=folder) as client:
            client.open()
            _prepare(client, folder)
            result = client.run_pipeline(f"{mod}:fanout", executor=executor, max_workers=2)
            assert result.ok, [s.error for s in result.steps]
            assert result.run.executor == executor
            summaries.append(_summary(client, result))
    assert summaries[0] == summaries[1]
