"""Docs that tests keep honest: the CLI reference, settings, error codes, and every example."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from syllabus.cli.reference import iter_commands, render_reference
from syllabus.config import SETTINGS
from syllabus.errors import SyllabusError, _all_subclasses
from tests import doc_examples
from tests.fixtures.cli import Runner
from tests.fixtures.demo import DemoRun
from tests.fixtures.webhooks import receiving

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_cli_reference_is_up_to_date() -> None:
    assert (DOCS / "cli.md").read_text() == render_reference(), (
        "docs/cli.md is stale: run `python -m syllabus.cli.reference > docs/cli.md`"
    )


def test_every_setting_is_documented() -> None:
    text = (DOCS / "settings.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.env}`" in text, setting.name
        assert f"`{setting.key}`" in text, setting.name


def test_every_error_code_is_documented() -> None:
    text = (DOCS / "errors.md").read_text()
    for cls in _all_subclasses(SyllabusError):
        assert f"`{cls.code}`" in text, cls.__name__


def _examples() -> list[tuple[str, str]]:
    out = []
    for path, command in iter_commands():
        if command.help is None or hasattr(command, "commands"):
            continue
        lines = command.help.split("Example", 1)
        assert len(lines) == 2, f"`{' '.join(path)}` has no example in its help"
        for raw in lines[1].splitlines():
            line = raw.strip()
            if line.startswith("syllabus "):
                out.append((" ".join(path), line))
    return out


EXAMPLES = _examples()


def _init(workdir: Path) -> None:
    """What `syllabus init` does (its own example runs the command), in this process: one
    console-script start less for each of the hundred examples."""
    from syllabus import Client
    from syllabus.client import init_workspace

    with Client(init_workspace(workdir)) as client:
        client.open()


def _prepare_datasets(workdir: Path) -> None:
    """Two versions of dataset ``churn`` from ``data/``, pushed to remote ``backup``."""
    from syllabus import Client

    data = workdir / "data"
    data.mkdir()
    (data / "train.csv").write_text("id,x\n1,0.5\n2,1.5\n")
    with Client(cwd=workdir) as client:
        client.add_dataset("churn", data, message="first")
        (data / "train.csv").write_text("id,x\n1,0.5\n2,2.5\n3,4.0\n")
        client.add_dataset("churn", data, message="second")
        client.add_remote("backup", str(workdir / "backup"))
        client.push_dataset("churn", "backup")


def _prepare_tracking(workdir: Path) -> None:
    """Two finished runs in ``Default`` (params, metrics, an artifact ``notes.txt``) and a
    deleted experiment ``old-baseline``."""
    from syllabus import Client

    with Client(cwd=workdir) as client:
        for n, acc in enumerate((0.7, 0.9)):
            run = client.create_run(params={"lr": 0.1 / (n + 1)}, tags={"team": "risk"})
            for step in range(5):
                client.log_metric(run.id, "acc", acc * (step + 1) / 5, step=step)
            client.log_text(run.id, "hello\n", "notes.txt")
            client.end_run(run.id)
        client.create_experiment("old-baseline")
        client.delete_experiment("old-baseline")


def _prepare_code(workdir: Path) -> None:
    """A git repository with two runs whose code was captured (``train.py`` edited in
    between), and a notebook ``analysis.ipynb`` with two checkpoints."""
    import json
    import os
    import subprocess

    from syllabus import Client
    from syllabus.code import EntryPoint

    who = {"GIT_AUTHOR_NAME": "docs", "GIT_AUTHOR_EMAIL": "docs@example.com"}
    env = {**os.environ, **who, "GIT_COMMITTER_NAME": "docs", "GIT_COMMITTER_EMAIL": "d@e.com"}
    (workdir / "train.py").write_text("print('v1')\n")
    for args in (["init", "-q"], ["add", "train.py"], ["commit", "-qm", "first"]):
        subprocess.run(["git", *args], cwd=workdir, env=env, check=True)

    def notebook(*sources: str) -> str:
        cells = [
            {"cell_type": "code", "id": f"c{n}", "metadata": {}, "source": source,
             "execution_count": None, "outputs": []}
            for n, source in enumerate(sources)
        ]  # fmt: skip
        return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})

    with Client(cwd=workdir) as client:
        for n in (1, 2):
            run = client.create_run(params={"lr": 0.1 * n})
            client.capture_code(run.id, entry=EntryPoint("train.py", ("--lr", str(0.1 * n))))
            client.end_run(run.id)
            (workdir / "train.py").write_text("print('v2')\n")
            (workdir / "analysis.ipynb").write_text(notebook("x = 1", f"print({n})"))
            client.checkpoint_notebook(workdir / "analysis.ipynb", message=f"version {n}")


def _prepare_models(workdir: Path) -> None:
    """Model ``churn`` versions 1-3 logged from runs (v2 in production, v1 archived by that
    promotion with a pending request to staging, v3 archived) and policy ``churn`` applied
    from ``policy.yaml``."""
    import numpy as np
    from sklearn.linear_model import LinearRegression

    from syllabus import Client

    x = np.array([[1.0], [2.0], [3.0]])
    (workdir / "policy.yaml").write_text(
        "policy: churn\nstages:\n  staging:\n    gates:\n      - signature: required\n"
    )
    with Client(cwd=workdir) as client:
        for n in range(3):
            run = client.create_run("churn")
            client.log_metric(run.id, "val_auc", 0.8 + n / 100)
            model = LinearRegression().fit(x, x[:, 0] * (n + 1))
            client.log_model(run.id, model, input_example=x, registered_name="churn")
            client.end_run(run.id)
        client.transition_stage("churn@1", "production")
        client.transition_stage("churn@2", "production")
        client.archive_model_version("churn@3")
        client.request_transition("churn@1", "staging")
        client.apply_policy(workdir / "policy.yaml")


def _prepare_evaluations(workdir: Path) -> None:
    """The models of :func:`_prepare_models`, dataset ``holdout`` (columns ``x``, ``label``)
    and one stored evaluation of ``churn@3`` against ``churn@2``."""
    from syllabus import Client

    _prepare_models(workdir)
    rows = "\n".join(f"{x},{2 * x + (x % 3) / 10}" for x in range(40))
    (workdir / "holdout.csv").write_text(f"x,label\n{rows}\n")
    with Client(cwd=workdir) as client:
        client.add_dataset("holdout", workdir / "holdout.csv")
        client.evaluate("churn@3", "holdout@1", "label", against="churn@2", resamples=50)


EXAMPLE_HOOK = "https://ci.example/hook"


@pytest.fixture
def hook_receiver() -> Iterator[str]:
    """A webhook receiver on an ephemeral port of 127.0.0.1 that accepts every delivery."""
    with receiving() as (_, url):
        yield url


@pytest.mark.parametrize(("command", "example"), EXAMPLES, ids=[e for _, e in EXAMPLES])
def test_every_example_runs(
    syllabus_here: Runner,
    workdir: Path,
    command: str,
    example: str,
    request: pytest.FixtureRequest,
) -> None:
    """Each example's command line through the console script's entry point in this
    process (the script itself starts in tests/cli): a hundred interpreter starts less."""
    syllabus = syllabus_here
    if command == "syllabus demo":
        # The whole loop takes a minute: the session runs it once, as this very command
        # line with its own folder (tests.fixtures.demo), and tests/test_demo.py checks it.
        assert shlex.split(example)[1:3] == ["demo", "--dir"]
        run: DemoRun = request.getfixturevalue("demo_run")
        assert run.code == 0, f"{example!r} failed: {run.stderr[-3000:]}"
        assert f"Syllabus demo in {run.folder}" in run.stderr
        return
    if command != "syllabus init":
        _init(workdir)
    if command.startswith(("syllabus data", "syllabus remote")):
        _prepare_datasets(workdir)
    if command.startswith(("syllabus runs", "syllabus experiments")):
        _prepare_tracking(workdir)
    if command.startswith(
        ("syllabus code", "syllabus env", "syllabus notebook", "syllabus reproduce")
    ):
        _prepare_code(workdir)
    if command.startswith(("syllabus models", "syllabus policy")):
        _prepare_models(workdir)
    if command.startswith("syllabus models webhooks"):
        # The examples' receiver is a local one: no delivery leaves this machine.
        receiver = request.getfixturevalue("hook_receiver")
        example = example.replace(EXAMPLE_HOOK, receiver)
    if command == "syllabus models webhooks remove":
        from syllabus import Client

        with Client(cwd=workdir) as client:
            client.add_webhook(receiver, "s3cret", model="churn")
    if command.startswith(("syllabus evaluate", "syllabus evaluations")):
        _prepare_evaluations(workdir)
    result = None
    for module in doc_examples.modules():  # components that prepare their own examples
        if command.startswith(module.PREFIXES):
            module.prepare(workdir, example)
            if hasattr(module, "run"):
                result = module.run(syllabus, workdir, example)
    if result is None:
        result = syllabus(*shlex.split(example)[1:])
    assert result.code == 0, f"{example!r} failed: {result.stderr}"


def _readme_blocks(lang: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_readme_quickstart_names_make_demo_and_test() -> None:
    quickstart = (ROOT / "README.md").read_text().split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    assert "make demo" in quickstart
    assert "make test" in quickstart


def test_readme_console_commands_run(syllabus: Runner, workdir: Path) -> None:
    commands = [
        line.removeprefix("$ ").split("  #", 1)[0].strip()
        for block in _readme_blocks("console")
        for line in block.splitlines()
        if line.startswith("$ syllabus ")
    ]
    assert commands, "the README shows no syllabus commands"
    for command in commands:
        result = syllabus(*shlex.split(command)[1:])
        assert result.code == 0, f"README command {command!r} failed: {result.stderr}"


def test_readme_python_snippets_run(workdir: Path) -> None:
    (workdir / "data" / "sub").mkdir(parents=True)
    (workdir / "data" / "a.txt").write_text("hello\n")
    (workdir / "data" / "sub" / "b.bin").write_bytes(bytes(range(256)) * 100)
    blocks = _readme_blocks("python")
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    assert (workdir / "checkout" / "sub" / "b.bin").read_bytes() == bytes(range(256)) * 100


def test_getting_started_python_runs(workdir: Path) -> None:
    (workdir / "data").mkdir()
    (workdir / "data" / "a.csv").write_text("x,y\n1,2\n")
    (workdir / "model.bin").write_bytes(bytes(range(256)) * 40_000)  # chunked: > 4 MiB
    text = (DOCS / "getting-started.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "getting-started.md", "exec"), {"__name__": "guide"})
    assert (workdir / "restored" / "a.csv").read_text() == "x,y\n1,2\n"
