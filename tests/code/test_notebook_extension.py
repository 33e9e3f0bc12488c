"""``%load_ext syllabus`` in a real IPython shell (in a subprocess, so IPython's
``__main__`` replacement stays out of the test process): runs started in the notebook
record it as their entry point and checkpoint it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from syllabus import Client
from tests.code.conftest import GIT_ENV, make_repo, notebook, write_nb

pytest.importorskip("IPython")

KERNEL = """\
import json, sys
from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()
out = {}
def cell(source):
    result = shell.run_cell(source)
    if not result.success:
        error = result.error_in_exec or result.error_before_exec
        raise SystemExit(f"cell failed: {source!r}: {error}")
    return result.result

cell("%load_ext syllabus")
if len(sys.argv) > 1:
    out["named"] = cell(f"%syllabus_notebook {sys.argv[1]}")
out["notebook"] = cell("%syllabus_notebook")
cell("import syllabus")
cell("with syllabus.start_run() as run:\\n    syllabus.log_metric('acc', 0.5)")
out["run"] = cell("run.id")
out["checkpoint"] = cell("%syllabus_checkpoint -m again")
cell("%unload_ext syllabus")
out["after_unload"] = cell("globals().get('__session__')")
print(json.dumps(out))
"""


def _kernel(workdir: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SYLLABUS_", "JPY_"))}
    proc = subprocess.run(
        [sys.executable, "-c", KERNEL, *args],
        cwd=workdir,
        env=base | GIT_ENV | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    value = json.loads(proc.stdout.strip().splitlines()[-1])
    assert isinstance(value, dict)
    return value


@pytest.fixture
def project(workdir: Path) -> Path:
    make_repo(workdir, {"README.md": "x\n", ".gitignore": ".syllabus/\n"})
    write_nb(workdir / "nb" / "eda.ipynb", notebook(("code", "x = 1"), ("markdown", "# EDA")))
    return workdir


def test_named_notebook_is_checkpointed_by_runs(project: Path) -> None:
    out = _kernel(project, "nb/eda.ipynb")
    nb = str((project / "nb" / "eda.ipynb").resolve())
    assert out["named"] == nb
    assert out["notebook"] == nb
    assert out["checkpoint"] == "nb/eda.ipynb@1 (unchanged)"  # the run's checkpoint
    assert out["after_unload"] is None
    with Client(cwd=project) as client:
        code = client.get_run_code(out["run"])
        assert code.entry_point == "nb/eda.ipynb"
        assert code.checkpoint_id is not None
        [checkpoint] = client.list_notebook_checkpoints("nb/eda.ipynb")
        assert checkpoint.run_id == out["run"]
        assert checkpoint.id == code.checkpoint_id


def test_notebook_found_from_the_kernel_environment(project: Path) -> None:
    nb = project / "nb" / "eda.ipynb"
    out = _kernel(project, env={"JPY_SESSION_NAME": str(nb)})
    assert out["notebook"] == str(nb.resolve())
    with Client(cwd=project) as client:
        assert client.get_run_code(out["run"]).entry_point == "nb/eda.ipynb"


def test_unknown_notebook_asks_for_it(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from syllabus.integrations.notebook import current_notebook, load_ipython_extension

    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])  # IPython swaps it
    shell = InteractiveShell.instance()
    try:
        shell.user_ns.pop("__session__", None)
        load_ipython_extension(shell)
        assert current_notebook(shell) is None
        result = shell.run_cell("%syllabus_checkpoint")
        assert not result.success
        assert "syllabus_notebook PATH" in str(result.error_in_exec)
        with pytest.raises(Exception, match="not a notebook"):
            shell.run_line_magic("syllabus_notebook", "notes.txt")
    finally:
        InteractiveShell.clear_instance()
