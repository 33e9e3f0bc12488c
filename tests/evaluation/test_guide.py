"""docs/evaluation.md runs: its console commands in order (the CLI in this process), then
its Python snippet."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from syllabus import Client
from tests.evaluation.conftest import populate
from tests.fixtures.cli import Runner, init_here

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "evaluation.md"


def test_guide_runs(syllabus_here: Runner, workdir: Path) -> None:
    text = GUIDE.read_text()
    init_here(workdir)
    with Client(cwd=workdir) as client:
        populate(client, workdir)
    commands = [
        line.removeprefix("$ ")
        for block in re.findall(r"```console\n(.*?)```", text, flags=re.S)
        for line in block.splitlines()
        if line.startswith("$ syllabus ")
    ]
    assert len(commands) >= 5
    outputs = {}
    for command in commands:
        result = syllabus_here(*shlex.split(command)[1:])
        assert result.code == 0, f"{command!r} failed: {result.stderr}"
        outputs[command] = result.stdout
    assert "better" in outputs[commands[1]]
    (listed,) = json.loads(outputs["syllabus evaluations list --model churn@2 --json"])[:1]
    assert listed["model"] == "churn@2"
    for report in ("report.html", "latest.html"):
        assert 'data-chart="roc"' in (workdir / report).read_text()
    (block,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    from syllabus.fluent import set_client

    own = Client(cwd=workdir)
    set_client(own)
    try:
        exec(compile(block, str(GUIDE), "exec"), {"__name__": "guide"})
    finally:
        set_client(None)
        own.close()
    policy = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)[0]
    with Client(cwd=workdir) as client:
        client.apply_policy(policy)
        result = client.transition_stage("churn@2", "production")
        assert any(g.gate == "evaluation" and g.passed for g in result.gates)
