from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


Runner = Callable[..., Result]


@pytest.fixture
def syllabus(workdir: Path) -> Runner:
    """Run the real ``syllabus`` console script in a subprocess, in ``workdir``."""

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("SYLLABUS_")}
        full_env.update(env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "syllabus", *args],
            cwd=cwd or workdir,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run
