"""docs/data.md runs: every console command in order, then the Python snippet."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.fixtures.cli import Runner

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "data.md"


def test_guide_runs(syllabus: Runner, workdir: Path) -> None:
    text = GUIDE.read_text()
    (workdir / "data").mkdir()
    people = workdir / "data" / "people.csv"
    people.write_text("id,age,region\n1,30,north\n2,40,south\n")
    assert syllabus("init").code == 0
    commands = [
        line.removeprefix("$ ")
        for block in re.findall(r"```console\n(.*?)```", text, flags=re.S)
        for line in block.splitlines()
        if line.startswith("$ syllabus ")
    ]
    assert len(commands) > 10
    for command in commands:
        if command.startswith("syllabus data diff"):
            people.write_text("id,age,region,score\n2,45,south,0.5\n3,50,east,0.1\n")
            assert syllabus("data", "add", "people", "data/").code == 0
        result = syllabus(*shlex.split(command)[1:])
        assert result.code == 0, f"{command!r} failed: {result.stderr}"
    (block,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    import syllabus.data
    from syllabus import Client
    from syllabus.fluent import set_client

    own = Client(cwd=workdir)
    set_client(own)
    exec(compile(block, str(GUIDE), "exec"), {"__name__": "guide"})
    assert own.get_dataset("people").version == 2  # same content as people@2
    set_client(None)
    own.close()


def test_lineage_lists_the_runs_that_used_a_version(workdir: Path) -> None:
    import syllabus.data
    from syllabus import Client
    from syllabus.fluent import set_client, start_run

    (workdir / "train.csv").write_text("a\n1\n")
    client = Client(cwd=workdir)
    set_client(client)
    try:
        v = syllabus.data.add("train", workdir / "train.csv")
        with start_run() as run:
            syllabus.data.log_input(v, role="train")
        (used,) = syllabus.data.lineage("train@1")
        assert (used.run_id, used.role, used.name) == (run.id, "train", "train@1")
        assert syllabus.data.lineage("train@1") == client.dataset_lineage("train")
    finally:
        set_client(None)
        client.close()


def test_active_run_log_input(workdir: Path) -> None:
    import syllabus.data
    from syllabus import Client
    from syllabus.errors import InvalidArgumentError
    from syllabus.fluent import set_client, start_run

    (workdir / "test.csv").write_text("a\n1\n2\n")
    client = Client(cwd=workdir)
    set_client(client)
    try:
        v = syllabus.data.add("holdout", workdir / "test.csv")
        with start_run() as run:
            run.log_input(v, role="test")
            run.log_input("holdout@1", role="reference")
            with pytest.raises(InvalidArgumentError, match="not int"):
                run.log_input(3)
        roles = sorted(i.role for i in syllabus.data.lineage("holdout@1"))
        assert roles == ["reference", "test"]
    finally:
        set_client(None)
        client.close()
