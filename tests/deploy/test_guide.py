"""docs/deploy.md runs: its spec parses, its console commands run in order (the CLI in this
process) against real server processes, then its Python snippet."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from syllabus import Client
from syllabus.deploy.spec import parse_spec
from tests.deploy.conftest import register_linear
from tests.fixtures.cli import Runner, init_here

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


@pytest.mark.slow
def test_guide_runs(syllabus_here: Runner, workdir: Path) -> None:
    text = GUIDE.read_text()
    (spec,) = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    parsed = parse_spec(spec)
    assert parsed.overrides("production") == {"target", "workers", "traffic", "kubernetes"}
    (workdir / "deploy.yaml").write_text(spec)
    init_here(workdir)
    with Client(cwd=workdir) as client:
        register_linear(client, "churn", 2.0)
        register_linear(client, "churn", 3.0)
        # two rows: one chunk of `--chunk-rows 2`, scored in this process; the process
        # pool (several chunks) is tests/deploy/test_batch.py's
        (workdir / "new.csv").write_text("x\n1.0\n2.0\n")
        client.add_dataset("new", workdir / "new.csv")
    commands = [
        line.removeprefix("$ ")
        for block in re.findall(r"```console\n(.*?)```", text, flags=re.S)
        for line in block.splitlines()
        if line.startswith("$ syllabus ")
    ]
    assert len(commands) >= 9
    outputs = {}
    try:
        for command in commands:
            result = syllabus_here(*shlex.split(command)[1:])
            assert result.code == 0, f"{command!r} failed: {result.stderr}"
            outputs[command] = result.stdout
    finally:
        with Client(cwd=workdir) as client:
            for d in client.list_deployments():
                if d.live is not None:
                    client.stop_deployment(d.name, d.env)
    history = json.loads(outputs["syllabus deploy history churn --json"])
    assert [(h["revision"], h["status"], h["action"]) for h in history] == [
        (3, "stopped", "rollback of 1"),
        (2, "rolled-back", "promote-canary of 1"),
        (1, "superseded", "apply"),
    ]
    assert (workdir / "rendered" / "manifests.yaml").is_file()
    (block,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    exec(compile(block, str(GUIDE), "exec"), {"__name__": "guide"})
    with Client(cwd=workdir) as client:
        assert client.get_dataset("scored@2").message.startswith("scored by churn@2")
