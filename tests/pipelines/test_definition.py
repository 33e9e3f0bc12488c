"""Defining pipelines (Python and YAML), what is refused, and the DAG drawings."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from syllabus import Client, pipeline, step
from syllabus.errors import InvalidArgumentError
from syllabus.pipelines import dataset
from syllabus.pipelines.dag import layers, render_svg, render_text
from syllabus.pipelines.definition import load_yaml
from tests.fixtures.cli import Runner, init_here


@step
def double(x: int) -> int:
    return 2 * x


@step
def add(a: int, b: int = 1) -> int:
    return a + b


@pipeline(name="arith")
def arith(x: int = 3):
    d = double(x)
    return add(d, b=add(d))


def test_a_step_outside_a_pipeline_is_a_plain_call() -> None:
    assert double(4) == 8
    assert add(1) == 2


def test_the_graph_of_a_pipeline_function() -> None:
    p = arith.build()
    assert p.step_names == ["double", "add", "add_2"]
    assert p.params == {"x": 3}
    assert p.node("add_2").upstream == ["add", "double"]
    assert p.order() == ["double", "add", "add_2"]
    assert layers(p) == [["double"], ["add"], ["add_2"]]
    assert p.downstream(["add"]) == {"add", "add_2"}
    assert p.node("double").uses == f"{__name__}:double"


def test_what_a_definition_refuses() -> None:
    def nested(x: int) -> int:
        return x

    with pytest.raises(InvalidArgumentError, match="must be a module-level function"):
        step(nested)

    @pipeline(name="bad")
    def missing_arg():
        add()

    with pytest.raises(InvalidArgumentError, match="step 'add' needs a"):
        missing_arg.build()

    @pipeline(name="bad")
    def no_default(x):  # type: ignore[no-untyped-def]
        double(x)

    with pytest.raises(InvalidArgumentError, match="param 'x' needs a default value"):
        no_default.build()

    @pipeline(name="bad")
    def not_json():
        double(object())

    with pytest.raises(InvalidArgumentError, match="object is not a JSON value"):
        not_json.build()

    @pipeline(name="bad name!")
    def bad_name():
        double(1)

    with pytest.raises(InvalidArgumentError, match="invalid pipeline name"):
        bad_name.build()
    with pytest.raises(InvalidArgumentError, match="invalid dataset reference"):
        dataset(" x")


def test_yaml_definitions() -> None:
    p = load_yaml(
        "name: y\nparams: {n: 2}\nsteps:\n"
        "  a: {uses: 'm:f', with: {data: 'dataset:d@1', n: '${params.n}', text: plain}}\n"
        "  b: {uses: 'm:g', with: {x: '${a.key}', m: 'model:c@production'}}\n"
    )
    a, b = p.steps
    assert {k: (v.kind, v.value) for k, v in a.args.items()} == {
        "data": ("dataset", "d@1"),
        "n": ("param", "n"),
        "text": ("value", "plain"),
    }
    assert (b.args["x"].kind, b.args["x"].value, b.args["x"].key) == ("step", "a", "key")
    assert b.args["m"].kind == "model"
    for text, message in [
        ("name: y\n", "needs `name` and `steps`"),
        ("name: y\nsteps:\n  a: {with: {}}\n", "needs `uses`"),
        ("name: y\nsteps:\n  a: {uses: 'm:f', with: {x: '${nope}'}}\n", "not a step"),
        ("name: y\nsteps:\n  a: {uses: 'm:f', with: {x: '${params.q}'}}\n", "does not declare"),
        ("name: y\nsteps: [\n", "invalid pipeline YAML"),
    ]:
        with pytest.raises(InvalidArgumentError, match=message):
            load_yaml(text)


def test_only_decorated_steps_run(client: Client, workdir: Path) -> None:
    (workdir / "evil.yaml").write_text(
        "name: evil\nsteps:\n  a: {uses: 'subprocess:run', with: {args: ['true']}}\n"
    )
    with pytest.raises(InvalidArgumentError, match="'subprocess:run' is not a @step function"):
        client.run_pipeline("evil.yaml", executor="inline")
    assert client.list_pipelines() == []


def test_dag_text_and_svg() -> None:
    p = arith.build()
    text = render_text(p, {"double": "cached", "add": "succeeded"})
    assert "1. double" in text
    assert "[cached]" in text
    assert "add_2" in text
    assert "double -> add, add_2" in text
    svg = render_svg(p, {"double": "failed"})
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag.endswith("svg")
    assert svg.count("<rect") == 1 + 3  # background and one box per step
    assert svg.count("marker-end=") == 3  # double->add, double->add_2, add->add_2
    assert "#f8d7da" in svg  # the failed step's colour


FAILING = """
from syllabus.pipelines import pipeline, step


@step
def ok():
    return 1


@step
def boom(x):
    raise ValueError("bad input")


@pipeline(name="NAME")
def failing():
    boom(ok())
"""


def test_cli_run_failure_resume_and_dag(
    syllabus_here: Runner, steps_module: Callable[..., str], workdir: Path
) -> None:
    init_here(workdir)
    mod = steps_module(FAILING)
    result = syllabus_here("pipeline", "run", f"{mod}:failing", "--executor", "inline")
    assert result.code == 1
    assert "ValueError: bad input" in result.stdout
    assert f"syllabus pipeline run {mod} --resume" in result.stderr
    again = syllabus_here("pipeline", "run", mod, "--resume", "--executor", "inline", "--json")
    assert again.code == 1
    bad = syllabus_here("pipeline", "run", mod, "-p", "oops")
    assert bad.code == 2
    assert "is not KEY=VALUE" in bad.stderr
    dag = syllabus_here("pipeline", "dag", mod, "-o", "dag.svg")
    assert dag.code == 0
    assert ET.parse(workdir / "dag.svg").getroot().tag.endswith("svg")
    wrong = syllabus_here("pipeline", "dag", mod, "-o", "dag.gif")
    assert wrong.code == 2
    runs = syllabus_here("pipeline", "runs", mod, "--json")
    assert runs.code == 0


def test_a_file_wins_over_a_module_of_the_same_name_imported_before(tmp_path: Path) -> None:
    from syllabus.pipelines.definition import import_object

    first, second = tmp_path / "a", tmp_path / "b"
    for folder, value in ((first, 1), (second, 2)):
        folder.mkdir()
        (folder / "samename_flows.py").write_text(f"VALUE = {value}\n")
    try:
        assert import_object("samename_flows.py:VALUE", root=first) == 1
        assert import_object("samename_flows.py:VALUE", root=second) == 2
        assert import_object(f"{first}/samename_flows.py:VALUE") == 1
    finally:
        sys.modules.pop("samename_flows", None)
        for folder in (first, second):
            if str(folder) in sys.path:
                sys.path.remove(str(folder))
