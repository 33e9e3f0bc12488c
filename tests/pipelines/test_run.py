"""Running pipelines: caching, re-running what changed, failure and resume, lineage."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from syllabus import Client
from syllabus.errors import InvalidArgumentError, NotFoundError
from syllabus.pipelines import StepStatus


def statuses(result: object) -> dict[str, str]:
    return {s.step: s.status.value for s in result.steps}  # type: ignore[attr-defined]


def test_rerun_skips_unchanged_steps_and_says_so(
    client: Client, steps_module: Callable[..., str]
) -> None:
    mod = steps_module()
    first = client.run_pipeline(f"{mod}:numbers", executor="inline")
    assert first.ok
    assert statuses(first) == dict.fromkeys(["load", "square", "side", "total"], "succeeded")
    assert first.value("total") == {"sum": 0 + 1 + 4 + 9}
    assert first.step("load").reason == "no cached result"

    again = client.run_pipeline(mod, executor="inline")  # by name, once registered
    assert again.ok
    assert again.cached == ["load", "square", "side", "total"]
    assert again.ran == []
    assert all(s.reason.startswith("unchanged") for s in again.steps)
    assert again.value("total") == {"sum": 14}
    # the cached step points at the run that produced the result
    assert again.step("total").cache_key == first.step("total").cache_key


def test_changed_param_reruns_exactly_the_affected_steps(
    client: Client, steps_module: Callable[..., str]
) -> None:
    mod = steps_module()
    client.run_pipeline(f"{mod}:numbers", executor="inline")
    result = client.run_pipeline(mod, params={"power": "3"}, executor="inline")
    assert statuses(result) == {
        "load": "cached",
        "side": "cached",
        "square": "succeeded",
        "total": "succeeded",
    }
    assert result.step("square").reason == "param power changed (2 -> 3)"
    assert result.step("total").reason == "input ys changed (output of square)"
    assert result.value("total") == {"sum": 0 + 1 + 8 + 27}
    assert result.run.params == {"n": 4, "power": 3}


def test_changed_step_code_reruns_the_step_and_downstream(
    client: Client, steps_module: Callable[..., str], workdir: Path
) -> None:
    mod = steps_module()
    client.run_pipeline(f"{mod}:numbers", executor="inline")
    path = workdir / f"{mod}.py"
    # a helper the step calls is part of its code
    path.write_text(path.read_text().replace("return x * SCALE", "return x * SCALE * 2"))
    importlib.reload(sys.modules[mod])
    result = client.run_pipeline(mod, executor="inline")
    assert statuses(result) == {
        "load": "cached",
        "side": "cached",
        "square": "succeeded",
        "total": "succeeded",
    }
    assert result.step("square").reason == "code changed"
    assert result.value("total") == {"sum": 4 * 14}
    # a module constant the step reads is too
    path.write_text(path.read_text().replace("SCALE = 1", "SCALE = 3"))
    importlib.reload(sys.modules[mod])
    assert client.run_pipeline(mod, executor="inline").ran == ["square", "total"]


def test_same_output_keeps_downstream_cached(
    client: Client, steps_module: Callable[..., str], workdir: Path
) -> None:
    mod = steps_module()
    client.run_pipeline(f"{mod}:numbers", executor="inline")
    path = workdir / f"{mod}.py"
    path.write_text(path.read_text().replace("return list(range(n))", "return [*range(n)]"))
    importlib.reload(sys.modules[mod])
    result = client.run_pipeline(mod, executor="inline")
    # load's code changed but produced the same content: what it feeds is reused
    assert result.ran == ["load"]
    assert set(result.cached) == {"square", "side", "total"}


def test_force_reruns_one_step(client: Client, steps_module: Callable[..., str]) -> None:
    mod = steps_module()
    client.run_pipeline(f"{mod}:numbers", executor="inline")
    result = client.run_pipeline(mod, force=["side"], executor="inline")
    assert result.ran == ["side"]
    assert result.step("side").reason == "forced (--force)"
    with pytest.raises(InvalidArgumentError, match="has no step 'nope'"):
        client.run_pipeline(mod, force=["nope"], executor="inline")


def test_unknown_param_and_pipeline_are_refused(
    client: Client, steps_module: Callable[..., str]
) -> None:
    mod = steps_module()
    with pytest.raises(InvalidArgumentError, match="has no param 'colour'"):
        client.run_pipeline(f"{mod}:numbers", params={"colour": 1}, executor="inline")
    assert client.list_pipeline_runs(mod) == []  # nothing ran
    with pytest.raises(NotFoundError, match="pipeline 'ghost' not found"):
        client.run_pipeline("ghost")


FLAKY = """
from pathlib import Path

from syllabus.pipelines import pipeline, step


@step
def prepare():
    return [1, 2, 3]


@step
def flaky(xs):
    if not Path("go").exists():
        raise RuntimeError("not ready")
    return sum(xs)


@step
def report(total):
    return f"total={total}"


@step
def independent():
    return "fine"


@pipeline(name="NAME")
def chain():
    report(flaky(prepare()))
    independent()
"""


def test_failure_stops_downstream_keeps_upstream_and_resumes(
    client: Client, steps_module: Callable[..., str], workdir: Path
) -> None:
    mod = steps_module(FLAKY)
    failed = client.run_pipeline(f"{mod}:chain", executor="inline")
    assert not failed.ok
    assert statuses(failed) == {
        "prepare": "succeeded",
        "flaky": "failed",
        "report": "skipped",
        "independent": "succeeded",
    }
    assert failed.step("flaky").error == "RuntimeError: not ready"
    assert failed.step("report").reason == "upstream step flaky failed"
    assert failed.run.error is not None
    assert "flaky" in failed.run.error
    tracked = client.get_run(failed.step("flaky").run_id or "")
    assert tracked.status.value == "failed"
    assert "not ready" in client.read_artifact(tracked.id, "traceback.txt").decode()

    (workdir / "go").touch()
    resumed = client.run_pipeline(mod, resume="last", executor="inline")
    assert resumed.ok
    assert resumed.run.resumes == failed.run.id
    assert resumed.step("prepare").status is StepStatus.CACHED
    assert resumed.step("prepare").reason.startswith("kept from run")
    assert resumed.ran == ["flaky", "report"]
    assert resumed.value("report") == "total=6"
    with pytest.raises(InvalidArgumentError, match="nothing to resume"):
        client.run_pipeline(mod, resume=resumed.run.id, executor="inline")


def test_runs_are_tracked_with_lineage(client: Client, steps_module: Callable[..., str]) -> None:
    mod = steps_module()
    result = client.run_pipeline(f"{mod}:numbers", executor="inline")
    parent = client.get_run(result.run.run_id or "")
    assert parent.tags["syllabus.pipeline"] == mod
    assert parent.params == {"n": "4", "power": "2"}
    children = client.search_runs(parent=parent.id)
    assert {r.name for r in children} == {"load", "square", "side", "total"}
    square = client.get_run(result.step("square").run_id or "")
    assert square.parent_id == parent.id
    assert square.params == {"power": "2"}
    assert square.metrics["count"].value == 4  # logged through ctx
    assert client.read_artifact(square.id, "output.json") == b"[0,1,4,9]"
    # a cached step is a tracked run too, pointing at where its result came from
    again = client.run_pipeline(mod, executor="inline")
    cached = client.get_run(again.step("square").run_id or "")
    assert cached.parent_id == again.run.run_id
    assert cached.tags["syllabus.step.cached_from"]
    # and the run reads back
    back = client.get_pipeline_run(again.run.id[:24])  # a prefix (ids of one ms share 12)
    assert [s.step for s in back.steps] == [s.step for s in again.steps]
    assert back.value("total") == {"sum": 14}


DATA_STEPS = """
from syllabus.pipelines import dataset, pipeline, step


@step
def count_rows(data):
    return len(data.to_pandas())


@step
def constant():
    return 42


@pipeline(name="NAME")
def rows():
    count_rows(dataset("numbers@latest"))
    constant()
"""


def test_new_data_version_reruns_the_steps_that_read_it(
    client: Client, steps_module: Callable[..., str], workdir: Path
) -> None:
    (workdir / "numbers.csv").write_text("a,b\n1,2\n3,4\n")
    client.add_dataset("numbers", workdir / "numbers.csv")
    mod = steps_module(DATA_STEPS)
    first = client.run_pipeline(f"{mod}:rows", executor="inline")
    assert first.value("count_rows") == 2
    assert first.run.inputs == {"dataset:numbers@latest": "numbers@1"}
    inputs = client.list_inputs(first.step("count_rows").run_id or "")
    assert [(i.kind, i.name, i.role) for i in inputs] == [("dataset", "numbers@1", "data")]

    (workdir / "numbers.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    client.add_dataset("numbers", workdir / "numbers.csv")
    second = client.run_pipeline(mod, executor="inline")
    assert second.ran == ["count_rows"]
    assert second.cached == ["constant"]
    assert second.step("count_rows").reason == "data data changed (numbers@1 -> numbers@2)"
    assert second.value("count_rows") == 3


YAML = """
name: NAME
params: {power: 2}
steps:
  load:
    uses: MOD:load
    with: {n: 3}
  square:
    uses: MOD:square
    with: {xs: "${load}", power: "${params.power}"}
  total:
    uses: MOD:total
    with: {ys: "${square}"}
"""


def test_yaml_pipeline(client: Client, steps_module: Callable[..., str], workdir: Path) -> None:
    mod = steps_module()
    (workdir / "flow.yaml").write_text(YAML.replace("NAME", f"{mod}-yaml").replace("MOD", mod))
    result = client.run_pipeline("flow.yaml", executor="inline")
    assert result.ok
    assert result.value("total") == {"sum": 5}
    assert client.pipeline_definition(f"{mod}-yaml").step_names == ["load", "square", "total"]
    again = client.run_pipeline(f"{mod}-yaml", params={"power": 3}, executor="inline")
    assert again.ran == ["square", "total"]


def test_bad_definitions_are_refused(client: Client, workdir: Path) -> None:
    (workdir / "cycle.yaml").write_text(
        "name: cyc\nsteps:\n"
        "  a: {uses: 'x:y', with: {v: '${b}'}}\n"
        "  b: {uses: 'x:y', with: {v: '${a}'}}\n"
    )
    with pytest.raises(InvalidArgumentError, match="cycle"):
        client.run_pipeline("cycle.yaml")
    (workdir / "missing.yaml").write_text("name: m\nsteps:\n  a: {uses: 'nosuchmodule_x:f'}\n")
    with pytest.raises(InvalidArgumentError, match="cannot import 'nosuchmodule_x'"):
        client.run_pipeline("missing.yaml")
    assert client.list_pipelines() == []


USES_HELPERS = """
import HELPERS
from syllabus.pipelines import pipeline, step


@step
def cleaned():
    return HELPERS.clean([3, 1, 2])


@step
def untouched():
    return "same"


@pipeline(name="NAME")
def tidy():
    cleaned()
    untouched()
"""


def test_a_project_module_a_step_uses_is_part_of_its_code(
    client: Client, steps_module: Callable[..., str], workdir: Path
) -> None:
    helpers = steps_module("def clean(xs):\n    return sorted(xs)\n")
    mod = steps_module(USES_HELPERS.replace("HELPERS", helpers))
    assert client.run_pipeline(f"{mod}:tidy", executor="inline").value("cleaned") == [1, 2, 3]
    (workdir / f"{helpers}.py").write_text("def clean(xs):\n    return sorted(xs, reverse=True)\n")
    importlib.reload(sys.modules[helpers])
    result = client.run_pipeline(mod, executor="inline")
    assert result.ran == ["cleaned"]
    assert result.step("cleaned").reason == "code changed"
    assert result.value("cleaned") == [3, 2, 1]


SCRIPT = """
from syllabus import Client, pipeline, step


@step
def one():
    return 1


@step
def plus(x, y: int = 2):
    return x + y


@pipeline(name="NAME")
def flow(y: int = 2):
    plus(one(), y=y)


if __name__ == "__main__":
    with Client() as client:
        assert client.run_pipeline(flow, executor="local", max_workers=1).value("plus") == 3
"""


def test_steps_of_a_script_run_later_by_name(
    client: Client, steps_module: Callable[..., str], workdir: Path
) -> None:
    script = steps_module(SCRIPT)
    subprocess.run(
        [sys.executable, f"{script}.py"], cwd=workdir, check=True, capture_output=True, timeout=120
    )
    info = client.get_pipeline(script)
    assert info.source == f"{script}:flow"  # the script by its file, not __main__
    again = client.run_pipeline(script, executor="inline")
    assert again.cached == ["one", "plus"]
