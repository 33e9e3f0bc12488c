"""docs/tracking.md runs: every Python block in order, then every console command (the CLI
in this process)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from syllabus import Client, fluent, init_workspace
from tests.fixtures.cli import Runner

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "tracking.md"


def test_guide_runs(syllabus_here: Runner, workdir: Path) -> None:
    text = GUIDE.read_text()
    init_workspace(workdir)
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 6
    with Client(cwd=workdir) as client:
        fluent.set_client(client)
        try:
            for n, block in enumerate(blocks):
                exec(compile(block, f"{GUIDE}:block{n}", "exec"), {"__name__": "guide"})
        finally:
            fluent.set_client(None)
    commands = [
        line.removeprefix("$ ").split("  #", 1)[0].strip()
        for block in re.findall(r"```console\n(.*?)```", text, flags=re.S)
        for line in block.splitlines()
        if line.startswith("$ syllabus ")
    ]
    assert len(commands) >= 6
    for command in commands:
        result = syllabus_here(*shlex.split(command)[1:])
        assert result.code == 0, f"{command!r} failed: {result.stderr}"
